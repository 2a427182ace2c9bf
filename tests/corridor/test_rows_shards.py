"""Parquet and Arrow inputs are cut into ``rows`` shards of whole row groups / record batches; the
output is byte-identical to reading the file as one shard, on every engine; a zip member stays one shard."""

from __future__ import annotations

import json
import zipfile

import pytest

import kodolly
from columnar_support import write_columnar

RECORDS = [
    {"instruction": f"질문 {i}", "input": "", "output": f"답변 {i}"} for i in range(9)
] + [
    {"instruction": "질문 2", "input": "", "output": "답변 2"},  # a duplicate of row 2, in a later row group
    {"instruction": "빈 답", "input": "", "output": ""},  # empty_field:response
    {"instruction": "질문 끝", "input": "", "output": "답변 끝"},
]


def _run(src, out, **kw):
    result = kodolly.convert(src, "alpaca", out, **kw)
    manifest = json.loads(result.manifest.read_text("utf-8"))
    files = {name: (out.parent / name).read_bytes() for name in (out.name, out.stem + ".rejects.jsonl", out.stem + ".report.json")}
    return result, manifest, files


@pytest.mark.parametrize("kind", ["parquet", "arrow-file", "arrow-stream", "feather"])
def test_row_group_shards_give_the_bytes_of_one_shard(tmp_path, engine, kind):
    (tmp_path / "in").mkdir()
    src = write_columnar(RECORDS, tmp_path / "in" / "data", kind, rows_per_group=2)
    one, one_manifest, one_files = _run(src, tmp_path / "one" / "o.parquet")
    many, many_manifest, many_files = _run(src, tmp_path / "many" / "o.parquet", batch_size=3)
    assert [s["kind"] for s in one_manifest["shards"]] == ["rows"]
    assert [(s["kind"], s["first_record"], s["records"]) for s in many_manifest["shards"]] == [
        ("rows", 0, 2), ("rows", 2, 2), ("rows", 4, 2), ("rows", 6, 2), ("rows", 8, 2), ("rows", 10, 2)]
    assert many.tally.written == 10 and dict(many.tally.by_reason) == {"duplicate_of": 1, "empty_field:response": 1}
    assert many_files == one_files
    assert many_manifest["inputs"] == one_manifest["inputs"] and many_manifest["inputs"][0]["bytes"] == src.stat().st_size
    rejects = [json.loads(line) for line in many_files["o.rejects.jsonl"].splitlines()]
    assert [(r["reason"].split(":")[0], r["index"]) for r in rejects] == [("duplicate_of", 9), ("empty_field", 10)]


def test_a_columnar_zip_member_is_one_shard(tmp_path, engine):
    src = write_columnar(RECORDS, tmp_path / "data", "parquet", rows_per_group=2)
    with zipfile.ZipFile(tmp_path / "in.zip", "w") as zf:
        zf.write(src, "data.parquet")
    result, manifest, _files = _run(tmp_path / "in.zip", tmp_path / "out" / "o.parquet", batch_size=3)
    assert [s["kind"] for s in manifest["shards"]] == ["input"]
    assert result.tally.written == 10
