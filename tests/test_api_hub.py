"""The public API's publishing functions are the hub/export functions."""

from __future__ import annotations

import json
from pathlib import Path

import kodolly

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hub"


def test_publish_and_export_through_the_package(tmp_path):
    out = tmp_path / "ko.parquet"
    kodolly.convert(FIXTURES / "ko_alpaca.json", "alpaca", out, options={"license": "Apache-2.0"})
    result = kodolly.publish(out, tmp_path / "hub", max_shard_rows=5)
    assert [s.rows for s in result.splits.values()] == [6]
    assert sorted(p.name for p in (tmp_path / "hub" / "data").iterdir()) == [
        "train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    exported = kodolly.export_dataset(out, tmp_path / "lf" / "ko.jsonl", target="llamafactory")
    assert exported.rows == 6
    assert json.loads((tmp_path / "lf" / "dataset_info.json").read_text("utf-8"))["ko"]["file_name"] == "ko.jsonl"
    assert callable(kodolly.push)
