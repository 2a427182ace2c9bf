"""The item ranges of a JSON array take the columnar path (the commas the planner found between the items
made newlines, pyarrow.json reading the items, one a line or indented over several) and give the bytes the
record-by-record path gives."""

from __future__ import annotations

import unicodedata

import orjson
import pytest

import kodolly
from kodolly.corridor import columnar, execute, make_spec
from support import output_files, record_fast_path

RECORDS = [
    {"instruction": "김치찌개 끓이는 법을 알려 주세요.", "input": "", "output": "돼지고기와 김치를 볶은 뒤 물을 붓고 끓입니다."},
    {"instruction": "다음 문장을 요약하세요.", "input": "서울은  한국의 수도이다.  \n인구가 많다.", "output": "서울은 수도이다."},
    {"instruction": "빈 답", "input": "", "output": "   "},  # empty once normalised: empty_field:response
    {"instruction": "김치찌개 끓이는 법을 알려 주세요.", "input": "", "output": "돼지고기와 김치를 볶은 뒤 물을 붓고 끓입니다."},  # a duplicate
    {"instruction": unicodedata.normalize("NFD", "한글 자모"), "input": "", "output": "NFD로 쓴 질문입니다.\r\n끝."},
    {"instruction": "", "input": "", "output": "질문이 없습니다."},  # empty_field:instruction
    {"instruction": "Python으로 1부터 10까지 더하세요.", "input": "", "output": "sum(range(1, 11)) = 55"},
]


def _write(path, indent: bool = False) -> None:
    if indent:  # as KoAlpaca ships: json.dump(..., indent=2)
        path.write_bytes(orjson.dumps(RECORDS * 3, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        path.write_bytes(b"[\n" + b",\n".join(orjson.dumps(r) for r in RECORDS * 3) + b"\n]\n")


def _run(src, out, engine: str) -> dict[str, bytes]:
    out.parent.mkdir()
    spec = make_spec([src], "alpaca", out, engine=engine, engine_options={"shard_bytes": 300})
    result = execute(spec)
    assert [s["kind"] for s in result.manifest_data["shards"]].count("items") > 2
    return output_files(out)


@pytest.mark.parametrize("indent", [False, True], ids=["one_a_line", "indented"])
def test_item_ranges_on_the_columnar_path_give_the_record_paths_bytes(tmp_path, monkeypatch, indent):
    src = tmp_path / "data.json"
    _write(src, indent)
    made = record_fast_path(monkeypatch, columnar, "convert_columnar_spans")
    files = _run(src, tmp_path / "fast" / "out.parquet", "inline")
    assert made and all(made)  # every range took the fast path

    monkeypatch.setattr(columnar, "convert_columnar_spans", lambda *args, **kwargs: None)
    assert _run(src, tmp_path / "records" / "out.parquet", "inline") == files
    rejects = [orjson.loads(line) for line in files["out.rejects.jsonl"].splitlines()]
    assert [(r["reason"], r["index"], r["line"]) for r in rejects][:3] == [
        ("empty_field:response", 2, None), ("duplicate_of:data.json:0", 3, None), ("empty_field:instruction", 5, None)]
