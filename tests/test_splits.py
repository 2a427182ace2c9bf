import json

import pyarrow.parquet as pq
import pytest
import xxhash

from kodolly import api
from kodolly.errors import ConfigError
from kodolly.filters import build_filters
from kodolly.rows import make_row, rows_to_table
from kodolly.splits import Splitter, parse_ratios

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine


def _rows(n):
    return [make_row(instruction=f"질문 {i}", response="답", source="t", id=f"id-{i}") for i in range(n)]


def test_split_is_a_function_of_the_id_alone():
    splitter = Splitter("train=0.8,validation=0.1,test=0.1")
    ids = [f"id-{i}" for i in range(2000)]
    first = {i: splitter.assign(i) for i in ids}
    # the documented rule: xxh3_64(id) / 2**64 against the cumulative ratios train, validation, test
    for i in ids:
        x = xxhash.xxh3_64_intdigest(i.encode()) / 2**64
        assert first[i] == ("train" if x < 0.8 else "validation" if x < 0.9 else "test")
    counts = {name: list(first.values()).count(name) for name in ("train", "validation", "test")}
    assert 1500 < counts["train"] < 1700 and 120 < counts["validation"] < 280 and 120 < counts["test"] < 280


def test_adding_rows_does_not_move_existing_rows():
    splitter = Splitter({"train": 0.9, "validation": 0.1})
    small = _rows(100)
    splitter.apply(small)
    before = {r["id"]: r["split"] for r in small}
    grown = _rows(1000)[::-1]  # more rows, another order
    assert Splitter({"train": 0.9, "validation": 0.1}).apply(grown) == [None] * 1000
    after = {r["id"]: r["split"] for r in grown}
    assert all(after[i] == s for i, s in before.items())


def test_no_split_settings_means_train():
    rows = _rows(5)
    Splitter().apply(rows)
    assert {r["split"] for r in rows} == {"train"}
    # a row that never met the split step is written as train too
    assert rows_to_table(_rows(2)).column("split").to_pylist() == ["train", "train"]


@pytest.mark.parametrize(
    "value, ratios",
    [
        ("train=0.9,val=0.1", {"train": 0.9, "validation": 0.1}),
        ({"train": 0.8, "validation": 0.1, "test": 0.1}, {"train": 0.8, "validation": 0.1, "test": 0.1}),
        ("test=0.2,train=0.8", {"train": 0.8, "test": 0.2}),
    ],
)
def test_parse_ratios(value, ratios):
    assert parse_ratios(value) == ratios


@pytest.mark.parametrize("value, message", [("train=0.9", "add up to 0.9"), ("holdout=1", "unknown split"), ("train", "NAME=RATIO")])
def test_bad_ratios(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_ratios(value)


def test_split_column_in_parquet_and_jsonl_outputs(fixtures, tmp_path):
    src = fixtures / "filters" / "near_dup_pairs.jsonl"
    filters = build_filters({"split": {"train": 0.5, "test": 0.5}})
    api.convert(src, "alpaca", tmp_path / "o.parquet", filters=filters)
    table = pq.read_table(tmp_path / "o.parquet")
    splitter = Splitter({"train": 0.5, "test": 0.5})
    expected = [splitter.assign(i) for i in table.column("id").to_pylist()]
    assert table.column("split").to_pylist() == expected
    assert set(expected) == {"train", "test"}
    api.convert(src, "alpaca", tmp_path / "o.jsonl")  # no split step at all
    lines = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text("utf-8").splitlines()]
    assert {line["split"] for line in lines} == {"train"}
