"""The progress bar counts input bytes done out of the bytes planned (a total, so an ETA), items beside it."""

from __future__ import annotations

import gzip
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


def _planned_bytes(spec) -> tuple[int, int, list[dict]]:
    """Bytes the planned shards count, the bar's total, and the shards as the manifest records them."""
    from kodolly.corridor.run import limits_of, prepare

    with limits_of(spec):
        run = prepare(spec)
        shards = [shard.describe() for shard in run.shards()]
    return sum(run.pending_bytes.values()), run.total_bytes(), shards


def test_a_csv_tail_shard_counts_only_the_rest_of_the_file(tmp_path, monkeypatch):
    # a lone \r in a record: the file is cut up to some way before it, the rest is read sequentially
    from kodolly.corridor import csv_ranges

    monkeypatch.setattr(csv_ranges, "LOOKAHEAD", 16 << 10)
    rows = "".join(f"질문 {i},답 {i}\n" for i in range(4000))
    src = tmp_path / "train.csv"
    src.write_text("question,answer\n" + rows + "lone\rcarriage,답\n" + rows, encoding="utf-8", newline="")
    spec = make_spec([str(src)], "qa", str(tmp_path / "out.parquet"), engine="inline", engine_options={"shard_bytes": 4096})
    planned, total, shards = _planned_bytes(spec)
    kinds = [s["kind"] for s in shards]
    assert kinds.count("csv") > 1 and kinds[-1] == "input" and shards[-1]["first_record"] > 0, kinds
    assert planned == total == src.stat().st_size


def test_the_ranges_of_a_gzip_array_count_its_compressed_bytes(tmp_path, capsys):
    # a .json.gz is cut as a stream (inflated offsets); the bar's total is the file's size: the ranges count
    # how far into the compressed file the planner had read, and an item over the record limit stops the cut,
    # the rest of the file one shard
    items = [{"instruction": f"질문 {i}", "output": f"답 {i} " + "가나다" * (i % 50)} for i in range(3000)]
    items[2500]["output"] = "가" * 1_100_000  # 3.3 MB: more than a range holds
    src = tmp_path / "ko.json.gz"
    src.write_bytes(gzip.compress(json.dumps(items, ensure_ascii=False).encode("utf-8")))
    spec = make_spec([str(src)], "alpaca", str(tmp_path / "out.parquet"), engine="inline",
                     engine_options={"shard_bytes": 16 << 10}, limits={"max_record_bytes": 3000})
    planned, total, shards = _planned_bytes(spec)
    assert len(shards) > 5 and shards[-1].get("rest") is True, shards
    assert 0 < planned <= total == src.stat().st_size
    result = execute(spec, progress=True)
    assert result.tally.records == 3000
    final = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    size = tqdm.format_sizeof(total, divisor=1024)
    assert "100%" in final and f"{size}/{size}" in final, final
