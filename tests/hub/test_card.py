"""The dataset card: YAML the Hub and ``datasets`` read, a body generated from the manifest."""

from __future__ import annotations

import json

from hubtools import read_card

from kodolly.hub import build_folder


def test_card_yaml_declares_configs_splits_and_features(mixed_output, tmp_path, offline):
    import datasets

    folder = tmp_path / "hub"
    build_folder(mixed_output, folder, title="Korean mixed", repo_id="me/ko-mixed")
    meta, body = read_card(folder)
    manifest = json.loads(mixed_output.with_name("mixed_rows.manifest.json").read_text("utf-8"))

    assert meta["pretty_name"] == "Korean mixed"
    assert meta["language"] == ["ko"]
    # sorted licence strings: AI Hub terms, Apache-2.0, CC BY-NC 4.0, CC BY-ND 2.0 KR (no Hub id for KR ports)
    assert meta["license"] == ["other", "apache-2.0", "cc-by-nc-4.0"]
    assert meta["license_name"] == "ai-hub-terms-cc-by-nd-2.0-kr"
    assert meta["size_categories"] == ["n<1K"]
    assert meta["configs"] == [{
        "config_name": "default",
        "data_files": [
            {"split": "train", "path": "data/train-*"},
            {"split": "validation", "path": "data/validation-*"},
            {"split": "test", "path": "data/test-*"},
        ],
    }]
    splits = {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]}
    assert splits == {"train": 6, "validation": 2, "test": 1}
    assert sum(splits.values()) == manifest["counts"]["written"]
    assert meta["dataset_info"]["download_size"] == sum(p.stat().st_size for p in (folder / "data").iterdir())
    assert [f["name"] for f in meta["dataset_info"]["features"]] == [
        "instruction", "context", "response", "category", "source", "id", "domain", "score", "license", "meta"]

    # datasets reads the same YAML: its builder's info is the card's
    builder = datasets.load_dataset_builder(str(folder), cache_dir=str(offline))
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == splits
    assert list(builder.info.features) == [f["name"] for f in meta["dataset_info"]["features"]]


def test_card_body_lists_sources_licences_filters_and_rejects(mixed_output, tmp_path):
    folder = tmp_path / "hub"
    build_folder(mixed_output, folder, repo_id="me/ko-mixed")
    _, body = read_card(folder)

    assert "| aihub | AI Hub terms | 2 | 3 | 1 | no-redistribution |" in body
    assert "| koalpaca | CC BY-NC 4.0 | 1 | 1 | 0 | non-commercial |" in body
    assert "| korquad1 | CC BY-ND 2.0 KR | 3 | 5 | 2 | no-derivatives |" in body
    assert "| kullm | Apache-2.0 | 3 | 4 | 1 | - |" in body
    assert "- `korquad1` (CC BY-ND 2.0 KR): forbids sharing derivatives" in body
    assert '- Converter: `korquad1` with options `{"first_answer_only": true}`' in body
    assert '  - `score`: `{"keep_unscored": true, "threshold": 30}`' in body
    assert '  - `exact_dedup`: `{"fields": ["instruction", "context", "response"], "hash": "xxh3_64"}`' in body
    assert "Read 13 items from 12 input records; wrote 9; rejected 4." in body
    assert "Duplicates removed: 2." in body
    assert "| duplicate_of | 2 |" in body and "| answer_not_in_context | 1 |" in body
    assert "| validation | 2 | 1 |" in body
    assert 'ds = load_dataset("me/ko-mixed")' in body
    assert "## Preference pairs" not in body


def test_dpo_card_has_model_batches_and_cost(dpo_output, tmp_path, monkeypatch):
    from kodolly import registry
    from kodolly.converters import Converter

    # DPO rows carry no licence column: a source's licence is its registered converter's
    registry._load()
    fake = Converter(name="korquad1", description="test stand-in", convert=lambda r, l, c: [], license="CC BY-ND 2.0 KR")
    monkeypatch.setitem(registry._registry, "korquad1", fake)
    monkeypatch.delitem(registry._aliases, "kullm", raising=False)
    monkeypatch.delitem(registry._registry, "kullm", raising=False)
    folder = tmp_path / "hub"
    build_folder(dpo_output, folder)
    meta, body = read_card(folder)
    assert "dpo" in meta["tags"] and meta["task_categories"] == ["text-generation"]
    assert "Korean preference pairs (DPO): 3 rows" in body
    assert "- Mode: `batch`; layout: `dolly`" in body
    assert "- Translation model: `gpt-4o-mini` via `api.openai.com`" in body
    assert "- Batch ids: `batch_6740a1b2c3`, `batch_6740a1b2c4`" in body
    assert "- Requests: 3 (cache hits 1, retries 0); tokens: 312 prompt + 57 completion" in body
    assert "- Cost: $0.0001 (USD" in body
    assert "| korquad1 | CC BY-ND 2.0 KR | 1 | 1 | 0 | no-derivatives |" in body
    assert "| kullm | unknown | 2 | 3 | 1 | - |" in body


def test_secret_values_never_reach_the_card_and_setting_names_are_no_secret(mixed_output, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "live-openai-secret-0001")
    monkeypatch.setenv("HF_TOKEN", "live-hub-secret-0002")
    mpath = mixed_output.with_name("mixed_rows.manifest.json")
    manifest = json.loads(mpath.read_text("utf-8"))
    manifest["converter"]["options"]["api_key"] = "live-openai-secret-0001"  # the environment's value
    manifest["converter"]["options"]["note"] = "token live-hub-secret-0002 inside a text"
    manifest["filters"][0]["settings"]["other"] = "sk-proj-AbCdEfGhIjKlMnOpQrSt"  # shaped like an OpenAI key
    manifest["filters"].append({"name": "dedup", "settings": {"key": ["instruction", "response"], "hash": "xxh3_64"}})
    mpath.write_text(json.dumps(manifest), "utf-8")
    folder = tmp_path / "hub"
    build_folder(mixed_output, folder)
    card = (folder / "README.md").read_text("utf-8")
    for secret in ("live-openai-secret-0001", "live-hub-secret-0002", "sk-proj-AbCdEfGhIjKlMnOpQrSt"):
        assert secret not in card
    assert '"api_key": "<redacted>"' in card and '"note": "token <redacted> inside a text"' in card
    assert '"other": "<redacted>"' in card
    assert '`dedup`: `{"hash": "xxh3_64", "key": ["instruction", "response"]}`' in card


def test_card_features_yaml_of_every_column_kind():
    import pyarrow as pa
    import pytest

    from kodolly.hub.card import card_features
    from kodolly.rows import MESSAGES_TYPE

    schema = pa.schema([
        ("instruction", pa.string()), ("score", pa.float64()), ("messages", MESSAGES_TYPE),
        ("history", pa.list_(pa.list_(pa.string()))), ("chosen", MESSAGES_TYPE.value_type),
        ("ids", pa.large_list(pa.int32())), ("pair", pa.list_(pa.int8(), 2)),
    ])
    assert card_features(schema) == [
        {"name": "instruction", "dtype": "string"},
        {"name": "score", "dtype": "float64"},
        {"name": "messages", "list": [{"name": "role", "dtype": "string"}, {"name": "content", "dtype": "string"}]},
        {"name": "history", "list": {"list": "string"}},
        {"name": "chosen", "struct": [{"name": "role", "dtype": "string"}, {"name": "content", "dtype": "string"}]},
        {"name": "ids", "large_list": "int32"},
        {"name": "pair", "list": "int8", "length": 2},
    ]
    import datasets

    # a schema whose ``datasets`` metadata makes a column a class label: a kind kodolly never writes
    labelled = datasets.Features({"label": datasets.ClassLabel(names=["a", "b"])}).arrow_schema
    with pytest.raises(ValueError, match="^column 'label': no dataset card YAML for a ClassLabel feature$"):
        card_features(labelled)


def test_card_features_are_what_datasets_reads_back(tmp_path, offline):
    """``datasets`` builds the folder's features from the card's YAML: they must be the shards' own."""
    import datasets
    import pyarrow.parquet as pq
    from hubtools import conversation_folder

    _, folder = conversation_folder(tmp_path)
    meta, _ = read_card(folder)
    assert {"name": "score", "dtype": "float64"} in meta["dataset_info"]["features"]
    assert {"name": "messages", "list": [{"name": "role", "dtype": "string"}, {"name": "content", "dtype": "string"}]} \
        in meta["dataset_info"]["features"]
    shard = sorted((folder / "data").glob("train-*.parquet"))[0]
    expected = datasets.Features.from_arrow_schema(pq.read_schema(shard))
    builder = datasets.load_dataset_builder(str(folder), cache_dir=str(offline))
    assert builder.info.features == expected
    assert datasets.load_dataset(str(folder), cache_dir=str(offline))["train"].features == expected
