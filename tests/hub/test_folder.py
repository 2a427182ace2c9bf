"""Hub folders: shards, splits, round trip through ``datasets.load_dataset``."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from hubtools import folder_bytes, load_folder

from kodolly.errors import ConfigError
from kodolly.hub import build_folder
from kodolly.io.writers import read_rows


def _rows(table):
    """Rows as the Hub folder holds them: the split is in the shard names, not in a column, and
    ``meta.file`` is the input's file name, not its local path."""
    rows = []
    for row in table.to_pylist():
        row = {k: v for k, v in row.items() if k != "split"}
        if isinstance(row.get("meta"), str):
            meta = json.loads(row["meta"])
            if "file" in meta:
                meta["file"] = meta["file"].rsplit("/", 1)[-1]
                row["meta"] = json.dumps(meta, ensure_ascii=False, separators=(",", ":"))
        rows.append(row)
    return rows


def test_parquet_output_round_trips_through_load_dataset(alpaca_output, tmp_path, offline):
    folder = tmp_path / "hub"
    result = build_folder(alpaca_output, folder, max_shard_rows=4)

    assert sorted(folder_bytes(folder)) == [
        "README.md",
        "data/train-00000-of-00002.parquet",
        "data/train-00001-of-00002.parquet",
        "kodolly.manifest.json",
    ]
    assert [pq.read_metadata(folder / p).num_rows for p in result.splits["train"].shards] == [4, 2]
    meta = pq.read_metadata(folder / "data/train-00000-of-00002.parquet")
    assert meta.row_group(0).column(0).compression == "ZSTD"
    manifest_path = alpaca_output.with_name("ko.manifest.json")
    local = json.loads(manifest_path.read_text("utf-8"))
    public = json.loads((folder / "kodolly.manifest.json").read_text("utf-8"))
    # the copy names files, not paths; everything else (hashes, sizes, counts, settings) is the same
    assert [i["name"] for i in public["inputs"]] == ["ko_alpaca.json"]
    assert [f["path"] for f in public["output"]["files"]] == ["ko.parquet"]
    assert public["rejects"]["path"] == "ko.rejects.jsonl"
    assert public["report"]["path"] == "ko.report.json"
    assert public["groups"][0]["inputs"] == ["ko_alpaca.json"]
    assert [s["input"] for s in public["shards"]] == ["ko_alpaca.json"]
    assert public["run_spec"]["groups"][0]["sources"] == ["ko_alpaca.json"]  # the replayable spec, without local paths
    for m in (local, public):
        m["inputs"][0].pop("name"), m["output"]["files"][0].pop("path"), m["rejects"].pop("path"), m["groups"][0].pop("inputs")
        m.pop("shards"), m.pop("run_spec")
        m["report"].pop("path")
    assert public == local
    assert result.manifest["inputs"][0]["name"] == "ko_alpaca.json"

    ds = load_folder(folder, offline)
    assert list(ds) == ["train"]
    written = read_rows(alpaca_output)
    assert ds["train"].to_list() == _rows(written)
    assert ds["train"].features.arrow_schema.names == [n for n in written.schema.names if n != "split"]
    assert ds["train"].features["score"].dtype == "float64"


def test_split_column_routes_rows_and_is_not_written(mixed_output, tmp_path, offline):
    folder = tmp_path / "hub"
    result = build_folder(mixed_output, folder)
    assert {k: v.rows for k, v in result.splits.items()} == {"train": 6, "validation": 2, "test": 1}
    assert list(result.splits) == ["train", "validation", "test"]

    ds = load_folder(folder, offline)
    source = [json.loads(line) for line in mixed_output.read_text("utf-8").splitlines()]
    for split in ("train", "validation", "test"):
        expected = [{k: v for k, v in r.items() if k != "split"} for r in source if r["split"] == split]
        assert ds[split].to_list() == expected
    assert "split" not in ds["train"].column_names


def test_datasets_folder_output_and_byte_bound(tmp_path, offline):
    import kodolly
    from hubtools import FIXTURES

    out = tmp_path / "ds_out"
    kodolly.convert(FIXTURES / "ko_alpaca.json", "alpaca", out, output_format="datasets")
    folder = tmp_path / "hub"
    result = build_folder(out, folder, max_shard_bytes=1, batch_rows=2)
    # a 1-byte bound closes a shard after every write; writes are batches of 2 rows
    assert [pq.read_metadata(folder / p).num_rows for p in result.splits["train"].shards] == [2, 2, 2]
    assert result.splits["train"].shards[-1] == "data/train-00002-of-00003.parquet"
    assert load_folder(folder, offline)["train"].to_list() == _rows(read_rows(out))


def test_no_split_column_means_all_train(dpo_output, tmp_path):
    rows = [json.loads(line) for line in dpo_output.read_text("utf-8").splitlines()]
    for r in rows:
        del r["split"]
    dpo_output.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    result = build_folder(dpo_output, tmp_path / "hub")
    assert {k: v.rows for k, v in result.splits.items()} == {"train": 3}


def test_manifest_of_another_output_is_refused_and_nothing_is_left(alpaca_output, mixed_output, tmp_path):
    folder = tmp_path / "hub"
    other = mixed_output.with_name("mixed_rows.manifest.json")
    with pytest.raises(ConfigError, match=r"holds 6 rows but its manifest .* says 9 were written"):
        build_folder(alpaca_output, folder, manifest_path=other)
    assert not folder.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".hub")] == []


def test_missing_manifest_names_the_flag(alpaca_output, tmp_path):
    alpaca_output.with_name("ko.manifest.json").unlink()
    with pytest.raises(ConfigError, match="manifest not found; pass --manifest"):
        build_folder(alpaca_output, tmp_path / "hub")


def test_existing_folder_needs_overwrite(alpaca_output, tmp_path):
    folder = tmp_path / "hub"
    build_folder(alpaca_output, folder, max_shard_rows=2)
    assert len(list((folder / "data").iterdir())) == 3
    with pytest.raises(ConfigError, match=r"replace it with overwrite=True \(kodolly publish --overwrite\)"):
        build_folder(alpaca_output, folder)
    build_folder(alpaca_output, folder, overwrite=True)
    assert sorted(p.name for p in (folder / "data").iterdir()) == ["train-00000-of-00001.parquet"]


def test_bad_split_name_is_refused(mixed_output, tmp_path):
    text = mixed_output.read_text("utf-8").replace('"split": "test"', '"split": "test set"')
    mixed_output.write_text(text, "utf-8")
    with pytest.raises(ConfigError, match="split name 'test set' is not a word"):
        build_folder(mixed_output, tmp_path / "hub")


def test_conversational_dpo_rows_round_trip(tmp_path, offline):
    from hubtools import FIXTURES

    out = tmp_path / "conv.jsonl"
    out.write_bytes((FIXTURES / "dpo_conversational.jsonl").read_bytes())
    manifest = json.loads((FIXTURES / "dpo_pairs.manifest.json").read_text("utf-8"))
    manifest["counts"]["written"] = 2
    manifest["dpo"]["layout"] = "trl-conversational"
    out.with_name("conv.manifest.json").write_text(json.dumps(manifest), "utf-8")
    folder = tmp_path / "hub"
    build_folder(out, folder)
    ds = load_folder(folder, offline)
    assert ds["train"].to_list() == [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert ds["train"].features["prompt"].feature["role"].dtype == "string"


def test_conversation_rows_keep_their_typed_turns_in_the_hub_folder(tmp_path, offline):
    from hubtools import conversation_folder

    from kodolly.rows import MESSAGES_TYPE

    out, folder = conversation_folder(tmp_path)
    ds = load_folder(folder, offline)["train"]
    assert ds.features.arrow_schema.field("messages").type == MESSAGES_TYPE
    assert ds.to_list() == _rows(read_rows(out))
    assert [len(m) for m in ds["messages"]] == [1, 3, 5, 7]
    assert "- name: messages" in (folder / "README.md").read_text("utf-8")
