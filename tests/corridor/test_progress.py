"""The progress bar counts input bytes done out of the bytes planned (a total, so an ETA), items beside it."""

from __future__ import annotations

import json

from tqdm import tqdm

from kodolly.corridor import make_spec
from kodolly.corridor.run import execute


def test_bar_counts_input_bytes_towards_the_total(tmp_path, capsys):
    src = tmp_path / "a.jsonl"
    src.write_text("".join(json.dumps({"instruction": f"질문 {i}", "output": f"답 {i}"}, ensure_ascii=False) + "\n" for i in range(300)))
    size = src.stat().st_size
    spec = make_spec([str(src)], "alpaca", str(tmp_path / "out.parquet"), engine="inline", engine_options={"shard_bytes": 2048})
    result = execute(spec, progress=True)
    assert result.tally.records == 300
    final = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    total = tqdm.format_sizeof(size, divisor=1024)
    assert "100%" in final and f"{total}/{total}" in final, final
    assert "300 items" in final, final
