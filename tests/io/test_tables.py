"""Columnar inputs (io/tables.py): parquet, Arrow IPC file and stream, Feather and ``datasets`` folders,
read row by row in several row groups, through every converter that reads such rows, giving the same
rows as the same data in JSON / JSONL / CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import kodolly
from columnar_support import KINDS, records_table, write_columnar
from kodolly.errors import InputError
from kodolly.io import tables
from kodolly.io.readers import BadRecord, read_records
from kodolly.io.sources import expand_inputs
from support import FIXTURES

ALPACA = [
    {"instruction": "첫째 질문", "input": "", "output": "첫째 답"},
    {"instruction": "둘째 질문", "output": "둘째 답", "url": "https://example.org/2"},
    {"instruction": "셋째 질문", "input": "맥락", "output": "셋째 답"},
    {"instruction": "넷째 질문", "input": "", "output": "넷째 답"},
    {"instruction": "다섯째 질문", "input": "", "output": "다섯째 답"},
]


def _one(path) -> object:
    inputs = expand_inputs([path])
    assert len(inputs) == 1
    return inputs[0]


def _records(path, record_paths=()):
    return [(r, loc) for inp in expand_inputs([path]) for r, loc in read_records(inp, record_paths)]


@pytest.mark.parametrize("kind", KINDS)
def test_rows_come_back_as_mappings_with_their_row_index(tmp_path, kind):
    path = write_columnar(ALPACA, tmp_path / "alpaca", kind)
    got = _records(path)
    # a null column (the absent "input" / "url" keys) is left out, as in the JSON records
    assert [r for r, _ in got] == ALPACA
    assert all(loc.line is None for _, loc in got)
    if kind == "datasets":  # save_to_disk wrote two shard files; an index counts rows of its file
        assert [(Path(loc.file).name, loc.index) for _, loc in got] == [
            ("data-00000-of-00002.arrow", 0), ("data-00000-of-00002.arrow", 1), ("data-00000-of-00002.arrow", 2),
            ("data-00001-of-00002.arrow", 0), ("data-00001-of-00002.arrow", 1)]
    else:
        assert [(loc.file, loc.index) for _, loc in got] == [(str(path), i) for i in range(5)]


@pytest.mark.parametrize("kind", ["parquet", "arrow-file", "arrow-stream", "feather"])
def test_row_groups_and_row_ranges(tmp_path, kind):
    path = write_columnar(ALPACA, tmp_path / "alpaca", kind, rows_per_group=2)
    inp = _one(path)
    assert tables.row_groups(inp) == [(0, 2), (2, 4), (4, 5)]
    middle = list(tables.read_rows(inp, 1, 4))
    assert [r["instruction"] for r, _ in middle] == ["둘째 질문", "셋째 질문", "넷째 질문"]
    assert [loc.index for _, loc in middle] == [1, 2, 3]
    assert [loc.index for _, loc in tables.read_rows(inp, 4)] == [4]
    assert list(tables.read_rows(inp, 2, 2)) == []


def test_nested_columns_are_lists_and_dicts(tmp_path):
    record = {"id": "c1", "conversations": [{"from": "human", "value": "안녕"}, {"from": "gpt", "value": "네"}]}
    path = write_columnar([record], tmp_path / "conv", "parquet")
    assert [r for r, _ in _records(path)] == [record]


def test_the_content_hash_and_size_are_recorded(tmp_path):
    path = write_columnar(ALPACA, tmp_path / "alpaca", "parquet")
    inp = _one(path)
    list(read_records(inp))
    import xxhash

    assert inp.bytes_read == path.stat().st_size
    assert inp.content_hash() == xxhash.xxh3_128(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ every converter: same rows as JSON

CASES = [
    ("alpaca", "alpaca/kullm-v2.jsonl", ()),
    ("alpaca", "alpaca/ko_alpaca_data.json", ()),
    ("alpaca", "alpaca/KoAlpaca_v1.1.jsonl", ()),
    ("dolly", "dolly/dolly_ko.jsonl", ()),
    ("sharegpt", "sharegpt/ko_dataset.jsonl", ()),
    ("korquad1", "korquad1/KorQuAD_v1.0_dev_sample.json", ("data.item",)),
    ("qa", "filters/user_scored.csv", ()),
]


def _comparable(rows):
    """Rows without what tells files apart: meta's file and line/index, the file name in derived ids."""
    out = []
    for row in rows:
        row = dict(row)
        meta = dict(row["meta"])
        name = Path(meta.pop("file")).name
        meta.pop("line", None)
        index = meta.pop("index", None)
        row["meta"] = meta
        row["id"] = row["id"].replace(name + ":", "<file>:")
        out.append((row, index))
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("converter,fixture,record_paths", CASES, ids=[c[1] for c in CASES])
def test_columnar_input_gives_the_same_rows_as_json(tmp_path, kind, converter, fixture, record_paths):
    source = FIXTURES / fixture
    records = [r for r, _ in _records(source, record_paths) if not isinstance(r, BadRecord)]
    path = write_columnar(records, tmp_path / "data", kind, rows_per_group=1 if len(records) < 4 else 2)
    rejects_json: list = []
    rejects_table: list = []
    from_json = _comparable(kodolly.iter_rows(source, converter, rejects=rejects_json))
    from_table = _comparable(kodolly.iter_rows(path, converter, rejects=rejects_table))
    assert from_json, "the fixture gives rows"
    if kind == "datasets":
        # two shard files, each counting its own rows: derived ids differ in the second one
        for (a, _), (b, _) in zip(from_table, from_json):
            if b["id"].startswith("<file>:"):
                a["id"] = b["id"] = "<derived>"
        assert [r for r, _ in from_table] == [r for r, _ in from_json]
    else:
        assert [r for r, _ in from_table] == [r for r, _ in from_json]
        assert all(isinstance(i, int) for _, i in from_table)  # the row index is the location (meta.index)
    assert [r["reason"] for r in rejects_table] == [r["reason"] for r in rejects_json if r["reason"] != "bad_json"]


def test_a_column_of_the_wrong_type_is_a_bad_type_reject(tmp_path):
    path = tmp_path / "typed.parquet"
    table = pa.table({"instruction": [["리스트"], ["또"]], "output": ["답", "답2"]})
    pq.write_table(table, path)
    result = kodolly.convert(path, "alpaca", tmp_path / "out.parquet")
    assert result.tally.written == 0 and result.tally.rejected == 2
    lines = [json.loads(line) for line in result.rejects.read_text("utf-8").splitlines()]
    assert [(r["reason"], r["index"]) for r in lines] == [("bad_type:instruction", 0), ("bad_type:instruction", 1)]
    assert result.tally.balanced


# ------------------------------------------------------------------ kodolly's own outputs read back


def test_a_kodolly_parquet_reads_back_with_its_provenance(tmp_path):
    first = kodolly.convert(FIXTURES / "filters/user_scored.csv", "qa", tmp_path / "first.parquet",
                            options={"license": "CC BY 4.0"})
    written = pq.read_table(first.output).to_pylist()
    again = kodolly.convert(first.output, "dolly", tmp_path / "again.parquet")
    assert again.tally.written == len(written) and again.tally.rejected == 0
    back = pq.read_table(again.output).to_pylist()
    for before, after in zip(written, back):
        for key in ("instruction", "context", "response", "category", "id", "domain", "score", "license", "source"):
            assert after[key] == before[key], key
        before_meta, after_meta = json.loads(before["meta"]), json.loads(after["meta"])
        assert after_meta["origin"] == {k: before_meta[k] for k in ("file", "line", "index") if k in before_meta}
        assert after_meta["file"] == str(first.output)
    assert {r["license"] for r in back} == {"CC BY 4.0"} and {r["source"] for r in back} == {"qa"}
    assert any(r["score"] is not None for r in back) and any(r["domain"] for r in back)


def test_a_kodolly_output_is_detected_as_dolly(tmp_path):
    first = kodolly.convert(FIXTURES / "alpaca/kullm-v2.jsonl", "alpaca", tmp_path / "first.parquet")
    found = kodolly.api.inspect_file(first.output)
    assert found.converter == "dolly"
    assert found.row["id"] == pq.read_table(first.output).column("id")[0].as_py()


def test_a_licence_given_by_the_user_wins_over_the_rows(tmp_path):
    first = kodolly.convert(FIXTURES / "filters/user_scored.csv", "qa", tmp_path / "first.parquet", options={"license": "CC BY 4.0"})
    rows = kodolly.convert(first.output, "dolly", options={"license": "Apache-2.0"}).rows
    assert {r["license"] for r in rows} == {"Apache-2.0"}


# ------------------------------------------------------------------ datasets folders


def test_a_datasets_folder_is_read_through_its_state_file(tmp_path):
    path = write_columnar(ALPACA, tmp_path / "ds", "datasets")
    inputs = expand_inputs([path])
    assert [Path(i.name).name for i in inputs] == ["data-00000-of-00002.arrow", "data-00001-of-00002.arrow"]
    # the metadata JSON is never taken as data, also when the folder is found by walking its parent
    assert [i.name for i in expand_inputs([tmp_path])] == [i.name for i in inputs]


def test_a_dataset_dict_folder_gives_each_split(tmp_path):
    import datasets

    table = records_table(ALPACA)
    datasets.DatasetDict({"train": datasets.Dataset(table.slice(0, 3)), "test": datasets.Dataset(table.slice(3))}).save_to_disk(str(tmp_path / "dd"))
    rows = kodolly.convert(tmp_path / "dd", "alpaca").rows
    assert sorted(r["instruction"] for r in rows) == sorted(r["instruction"] for r in ALPACA)


def test_a_datasets_cache_build_is_read(tmp_path):
    build = tmp_path / "cache" / "owner___name" / "default" / "0.0.0" / "abc123"
    build.mkdir(parents=True)
    (build / "dataset_info.json").write_text("{}", "utf-8")
    write_columnar(ALPACA[:3], build / "name-train-00000-of-00002", "arrow-stream")
    write_columnar(ALPACA[3:], build / "name-train-00001-of-00002", "arrow-stream")
    rows = kodolly.convert(tmp_path / "cache", "alpaca").rows
    assert [r["instruction"] for r in rows] == [r["instruction"] for r in ALPACA]


# ------------------------------------------------------------------ bad files: one line naming the file


def test_a_truncated_parquet_is_one_input_error(tmp_path):
    path = write_columnar(ALPACA, tmp_path / "cut", "parquet")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.parquet: not a readable parquet file"):
        kodolly.convert(path, "alpaca")


def test_a_file_that_is_not_parquet_is_one_input_error(tmp_path):
    path = tmp_path / "fake.parquet"
    path.write_text('{"instruction": "x", "output": "y"}', "utf-8")
    with pytest.raises(InputError, match=r"fake\.parquet: not a readable parquet file"):
        kodolly.convert(path, "alpaca")


def test_an_arrow_file_without_a_schema_is_one_input_error(tmp_path):
    path = tmp_path / "empty.arrow"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.arrow: not a readable Arrow IPC / Feather file: no schema"):
        kodolly.convert(path, "alpaca")


def test_a_datasets_folder_without_its_info_file_is_one_input_error(tmp_path):
    path = write_columnar(ALPACA, tmp_path / "ds", "datasets")
    (path / "dataset_info.json").unlink()
    with pytest.raises(InputError, match=r"ds: a datasets folder without dataset_info\.json"):
        expand_inputs([path])


def test_a_datasets_folder_whose_state_names_a_missing_file_is_one_input_error(tmp_path):
    path = write_columnar(ALPACA, tmp_path / "ds", "datasets")
    (path / "data-00001-of-00002.arrow").unlink()
    with pytest.raises(InputError, match=r"state\.json: names data files that are not there: data-00001-of-00002\.arrow"):
        expand_inputs([path])


def test_a_parquet_in_a_zip_is_read_in_place(tmp_path):
    import zipfile

    path = write_columnar(ALPACA, tmp_path / "alpaca", "parquet")
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(path, "inner/alpaca.parquet")
    got = _records(archive)
    assert [r for r, _ in got] == ALPACA
    assert got[0][1].file == f"{archive}!inner/alpaca.parquet"


def test_a_parquet_file_is_read_a_row_group_at_a_time(tmp_path):
    """Arrow memory while reading stays near one row group, far below the whole table."""
    text = "가" * 2000  # ~6 KB of UTF-8 a row
    table = pa.table({"instruction": [f"{i} {text}" for i in range(1200)], "output": ["답"] * 1200})
    whole = table.nbytes
    path = tmp_path / "big.parquet"
    pq.write_table(table, path, row_group_size=100, compression="none")
    del table
    base = pa.total_allocated_bytes()
    peak = 0
    count = 0
    for _row, _loc in read_records(_one(path)):
        count += 1
        if count % 50 == 0:
            peak = max(peak, pa.total_allocated_bytes() - base)
    assert count == 1200
    assert peak < whole / 4, (peak, whole)


def test_bad_columnar_files_stop_the_cli_with_one_line(tmp_path):
    from click.testing import CliRunner

    from kodolly.cli import cli

    cut = write_columnar(ALPACA, tmp_path / "cut", "parquet")
    cut.write_bytes(cut.read_bytes()[:100])
    nothing = tmp_path / "nothing.feather"
    nothing.write_bytes(b"\x00" * 16)
    ds = write_columnar(ALPACA, tmp_path / "ds", "datasets")
    (ds / "dataset_info.json").unlink()
    for path, message in (
        (cut, f"{cut}: not a readable parquet file ("),
        (nothing, f"{nothing}: not a readable Arrow IPC / Feather file: no schema ("),
        (ds, f"{ds}: a datasets folder without dataset_info.json; save it again with Dataset.save_to_disk"),
    ):
        res = CliRunner().invoke(cli, ["convert", str(path), "--from", "alpaca", "-o", str(tmp_path / "o.parquet")])
        assert res.exit_code == 1, res.output
        (line,) = res.stderr.strip().splitlines()
        assert line.startswith("kodolly: error: " + message), line
    assert not (tmp_path / "o.parquet").exists()
