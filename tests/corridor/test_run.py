"""End to end: outputs read back with pyarrow and datasets, the manifest, atomic writes, the tally check."""

from __future__ import annotations

import json

import jsonschema
import orjson
import pyarrow.parquet as pq
import pytest

import kodolly
from kodolly.manifest import load_schema
from support import FIXTURES

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine

A = FIXTURES / "alpaca"


def test_parquet_is_zstd_with_the_row_schema(tmp_path):
    result = kodolly.convert(A, "alpaca", tmp_path / "out.parquet")
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.equals(kodolly.ARROW_SCHEMA)
    assert table.num_rows == result.tally.written == 13


def test_every_written_row_validates_against_the_row_schema(tmp_path):
    kodolly.convert([A, FIXTURES / "encodings", FIXTURES / "archives"], "alpaca", tmp_path / "out.jsonl")
    schema = load_schema("dolly-row")
    rows = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert rows
    for row in rows:
        jsonschema.validate(row, schema)
        assert isinstance(json.loads(row["meta"]), dict)


def test_jsonl_parquet_and_datasets_outputs_hold_the_same_rows(tmp_path):
    import datasets

    kodolly.convert(A, "alpaca", tmp_path / "out.parquet")
    kodolly.convert(A, "alpaca", tmp_path / "out.jsonl")
    kodolly.convert(A, "alpaca", tmp_path / "ds", output_format="datasets")
    from_parquet = pq.read_table(tmp_path / "out.parquet").to_pylist()
    from_jsonl = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    from_datasets = datasets.load_from_disk(str(tmp_path / "ds")).to_list()
    assert from_parquet == from_jsonl == from_datasets
    loaded = datasets.load_dataset("parquet", data_files=str(tmp_path / "out.parquet"), split="train")
    assert loaded.to_list() == from_parquet


def test_dolly_only_writes_the_four_fields(tmp_path):
    kodolly.convert(A, "alpaca", tmp_path / "out.parquet", dolly_only=True)
    assert pq.read_table(tmp_path / "out.parquet").column_names == ["instruction", "context", "response", "category"]


def test_manifest_records_inputs_settings_counts_and_output_hashes(tmp_path):
    import xxhash

    result = kodolly.convert(FIXTURES / "bad" / "bad_line.jsonl", "alpaca", tmp_path / "out.parquet")
    manifest = json.loads((tmp_path / "out.manifest.json").read_text())
    jsonschema.validate(manifest, load_schema("manifest"))
    assert manifest["kodolly_version"] == kodolly.__version__
    assert manifest["converter"]["name"] == "alpaca"
    assert manifest["counts"]["read"] == 3
    assert manifest["counts"]["written"] == 2
    assert manifest["counts"]["by_reason"] == {"bad_json": 1}
    (out,) = manifest["output"]["files"]
    assert out["xxh3_128"] == xxhash.xxh3_128((tmp_path / "out.parquet").read_bytes()).hexdigest()
    assert out["rows"] == 2
    assert manifest["rejects"]["rows"] == 1
    assert result.manifest == tmp_path / "out.manifest.json"


def test_rejects_file_has_reason_location_and_raw_record(tmp_path):
    kodolly.convert(FIXTURES / "alpaca" / "kullm-v2.jsonl", "alpaca", tmp_path / "o.parquet")
    (reject,) = [orjson.loads(l) for l in (tmp_path / "o.rejects.jsonl").read_bytes().splitlines()]
    assert reject == {
        "reason": "empty_field:response", "source": "alpaca",
        "file": str(FIXTURES / "alpaca" / "kullm-v2.jsonl"), "index": 2, "line": 3, "part": "",
        "id": "vicuna_{2}", "detail": "",
        "raw": {"id": "vicuna_{2}", "instruction": "안녕이라고 말해 보세요.", "output": " "},
    }


class LosesRows:
    """A broken filter that answers for fewer rows than it was given: rows vanish unless the tally catches it."""

    name = "loses_rows"

    def settings(self):
        return {}

    def apply(self, rows):
        return [None] * (len(rows) - 1)


def test_a_run_whose_tally_does_not_add_up_fails_and_leaves_no_output(tmp_path):
    with pytest.raises(kodolly.TallyMismatchError, match=r"read 14 != written \d+ \+ rejected 1"):
        kodolly.convert(A, "alpaca", tmp_path / "out.parquet", filters=[LosesRows()])
    assert list(tmp_path.iterdir()) == []


class Crashes:
    name = "crashes"

    def __init__(self):
        self.calls = 0

    def settings(self):
        return {}

    def apply(self, rows):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("died mid-run")
        return [None] * len(rows)


def test_a_run_that_dies_leaves_no_half_written_file(tmp_path):
    (tmp_path / "in").mkdir()
    lines = "".join(json.dumps({"instruction": f"질문 {i}", "output": f"답 {i}"}, ensure_ascii=False) + "\n" for i in range(50))
    (tmp_path / "in" / "x.jsonl").write_text(lines, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RuntimeError, match="died mid-run"):
        kodolly.convert([tmp_path / "in"], "alpaca", out / "x.parquet", filters=[Crashes()], batch_size=10)
    assert list(out.iterdir()) == []


def test_iter_rows_streams_and_collects_rejects():
    rejects: list = []
    tally = kodolly.Tally()
    rows = kodolly.iter_rows(FIXTURES / "bad" / "bad_line.jsonl", "alpaca", rejects=rejects, tally=tally)
    assert next(rows)["instruction"] == "좋은 줄 하나"
    rest = list(rows)
    assert [r["instruction"] for r in rest] == ["좋은 줄 둘"]
    assert [r["reason"] for r in rejects] == ["bad_json"]
    assert tally.balanced and tally.read == 3


def test_to_dataset_and_in_memory_convert():
    ds = kodolly.to_dataset(A / "kullm_eval.json", "alpaca")
    assert ds.num_rows == 3
    assert ds.column_names == list(kodolly.ROW_FIELDS) + ["split"]
    result = kodolly.convert(A / "kullm_eval.json", "alpaca")
    assert [r["id"] for r in result.rows] == ["1", "2:0", "2:1"]
    assert result.output is None and result.manifest is None


def test_unknown_converter_lists_the_known_ones():
    with pytest.raises(kodolly.UnknownConverterError, match="known converters: .*alpaca.*dolly"):
        kodolly.get_converter("koalpacca")


def test_converter_registered_at_run_time_and_unknown_option(tmp_path):
    from kodolly.converters import Converter

    def convert(record, loc, ctx):
        yield kodolly.make_row(
            instruction=record["q"], response=record["a"] * ctx.options["repeat"], source=ctx.source, id=ctx.derived_id(loc)
        )

    kodolly.register(Converter(name="qa-test", description="test", convert=convert, options={"repeat": 1}))
    path = tmp_path / "x.jsonl"
    path.write_text('{"q": "질문", "a": "답"}\n', encoding="utf-8")
    rows = list(kodolly.iter_rows(path, "qa-test", options={"repeat": 2}))
    assert rows[0]["response"] == "답답"
    with pytest.raises(kodolly.ConfigError, match="has no option colour"):
        list(kodolly.iter_rows(path, "qa-test", options={"colour": 1}))


def test_a_converter_that_yields_nothing_gets_its_record_rejected(tmp_path):
    from kodolly.converters import Converter

    kodolly.register(Converter(name="silent-test", description="test", convert=lambda record, loc, ctx: iter(())))
    path = tmp_path / "x.jsonl"
    path.write_text('{"q": 1}\n', encoding="utf-8")
    result = kodolly.convert(path, "silent-test", tmp_path / "o.parquet")
    assert result.tally.as_dict()["by_reason"] == {"no_rows": 1}
