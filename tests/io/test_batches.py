"""Reading kodolly outputs back in bounded batches."""

from __future__ import annotations

import pyarrow as pa
import pytest

from kodolly.errors import InputError
from kodolly.io.batches import iter_batches


def test_jsonl_batches_keep_kodolly_types_when_a_batch_is_all_null(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"instruction": "a", "score": null, "meta": {"line": 1}}\n'
        '{"instruction": "b", "score": null, "meta": "{}"}\n'
        "\n"
        '{"instruction": "c", "score": 3.5, "meta": "{}"}\n',
        "utf-8",
    )
    tables = list(iter_batches(path, batch_rows=2))
    assert [t.num_rows for t in tables] == [2, 1]
    assert all(t.schema.field("score").type == pa.float64() for t in tables)
    assert tables[0].column("meta").to_pylist() == ['{"line":1}', "{}"]
    assert tables[1].column("score").to_pylist() == [3.5]


def test_jsonl_rows_with_different_fields_are_an_error(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"instruction": "a"}\n{"instruction": "b", "extra": 1}\n', "utf-8")
    with pytest.raises(InputError, match=r"differ in \['extra'\]"):
        list(iter_batches(path, batch_rows=1))


def test_bad_json_line_names_the_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"instruction": "a"}\n{not json\n', "utf-8")
    with pytest.raises(InputError, match=r"rows.jsonl:2: not JSON"):
        list(iter_batches(path))


def test_parquet_is_read_in_slices(tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"instruction": [str(i) for i in range(7)]}), path)
    assert [t.num_rows for t in iter_batches(path, batch_rows=3)] == [3, 3, 1]


def test_datasets_folder_is_read_in_slices_in_its_order(tmp_path):
    datasets = pytest.importorskip("datasets")

    table = pa.table({"instruction": [f"q{i}" for i in range(7)], "response": [f"a{i}" for i in range(7)]})
    # a shuffled dataset is saved in the order it shows
    datasets.Dataset(table).shuffle(seed=3).save_to_disk(str(tmp_path / "ds"), num_shards=2)
    shown = datasets.Dataset(table).shuffle(seed=3)["instruction"]
    tables = list(iter_batches(tmp_path / "ds", batch_rows=3))
    assert [t.num_rows for t in tables] == [3, 3, 1]
    assert [v for t in tables for v in t.column("instruction").to_pylist()] == shown
    assert sorted(shown) == [f"q{i}" for i in range(7)] and shown != sorted(shown)


@pytest.mark.parametrize("view", ["select", "shuffle", "sort", "filter"])
def test_dataset_with_an_indices_mapping_gives_the_rows_it_shows(view):
    datasets = pytest.importorskip("datasets")
    from kodolly.io.batches import dataset_batches

    ds = datasets.Dataset(pa.table({"instruction": [f"q{i}" for i in range(6)], "n": list(range(6))}))
    ds = {
        "select": lambda: ds.select([4, 0, 5, 2]),
        "shuffle": lambda: ds.shuffle(seed=1),
        "sort": lambda: ds.sort("n", reverse=True),
        "filter": lambda: ds.filter(lambda row: row["n"] % 2 == 1),
    }[view]()
    expected = {
        "select": [4, 0, 5, 2], "shuffle": datasets.Dataset.from_dict({"n": list(range(6))}).shuffle(seed=1)["n"],
        "sort": [5, 4, 3, 2, 1, 0], "filter": [1, 3, 5],
    }[view]
    assert expected != list(range(6))  # the view is not the table's own order
    tables = list(dataset_batches(ds, 2))
    assert all(isinstance(t, pa.Table) and t.num_rows <= 2 for t in tables)
    assert [n for t in tables for n in t.column("n").to_pylist()] == expected
    assert [q for t in tables for q in t.column("instruction").to_pylist()] == [f"q{n}" for n in expected]


def test_unknown_kind_of_output(tmp_path):
    from kodolly.errors import ConfigError

    path = tmp_path / "rows.csv"
    path.write_text("a\n")
    with pytest.raises(ConfigError, match="not a kodolly output"):
        list(iter_batches(path))


def test_jsonl_unknown_column_null_then_text_needs_same_types_false(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": "a", "rejected": null}\n{"id": "b", "rejected": "no"}\n')
    with pytest.raises(InputError, match="changes type"):
        list(iter_batches(path, 1))
    tables = list(iter_batches(path, 1, same_types=False))
    assert [t.to_pylist() for t in tables] == [[{"id": "a", "rejected": None}], [{"id": "b", "rejected": "no"}]]
    assert tables[1].schema.field("rejected").type == pa.string()


def test_jsonl_messages_keep_their_type_when_a_batch_has_only_single_turn_rows(tmp_path):
    import orjson

    from kodolly.rows import MESSAGES_TYPE

    turns = [{"role": "system", "content": "짧게"}, {"role": "user", "content": "안녕"}, {"role": "assistant", "content": "네"}]
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"".join(orjson.dumps({"id": str(i), "messages": m}) + b"\n" for i, m in enumerate([[], [], turns])))
    batches = list(iter_batches(path, batch_rows=2))
    assert [b.schema.field("messages").type for b in batches] == [MESSAGES_TYPE, MESSAGES_TYPE]
    assert [m for b in batches for m in b.column("messages").to_pylist()] == [[], [], turns]
