"""build-dpo's files are one output set (kodolly.io.commit): pairs, rejects and manifest committed together."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

import kodolly
from kodolly.io.writers import file_hash

from .conftest import FIXTURES


def test_a_rerun_replaces_the_whole_set_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "o" / "pairs.parquet"
    kodolly.build_dpo([FIXTURES / "pairs.jsonl"], out, mode="existing")
    first = (tmp_path / "o" / "pairs.manifest.json").read_text()
    result = kodolly.build_dpo([FIXTURES / "pairs.jsonl"], out, mode="ranked", layout="trl")
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["pairs.manifest.json", "pairs.parquet", "pairs.rejects.jsonl"]
    manifest = json.loads((tmp_path / "o" / "pairs.manifest.json").read_text())
    assert manifest != json.loads(first) and manifest["dpo"]["mode"] == "ranked"
    entry = manifest["output"]["files"][0]
    assert entry["path"] == str(out) and entry["xxh3_128"] == file_hash(out)
    assert pq.read_metadata(out).num_rows == entry["rows"] == result.tally.written == 1
    assert manifest["rejects"]["xxh3_128"] == file_hash(tmp_path / "o" / "pairs.rejects.jsonl")
    assert len((tmp_path / "o" / "pairs.rejects.jsonl").read_bytes().splitlines()) == manifest["counts"]["rejected"] == 4
