"""Published folders name files, never local paths (card, manifest copy, rows' meta.file)."""

from __future__ import annotations

import json
import shutil
import zipfile

import pyarrow.parquet as pq
from hubtools import FIXTURES, folder_bytes, load_folder, read_card

import kodolly
from kodolly.hub import build_folder
from kodolly.hub.public import public_manifest, public_name


def test_public_name():
    assert public_name("/home/user/secret/KorQuAD_v1.0_train.json") == "KorQuAD_v1.0_train.json"
    assert public_name("/home/user/secret/aihub.zip!Training/라벨링/a.json") == "aihub.zip!Training/라벨링/a.json"
    assert public_name("/data/x.zip.part0!m.jsonl") == "x.zip.part0!m.jsonl"
    assert public_name("C:\\Users\\kim\\data.csv") == "data.csv"
    assert public_name("relative/dir/data.jsonl") == "data.jsonl"
    assert public_name("data.jsonl") == "data.jsonl"


def test_public_manifest_keeps_hashes_sizes_counts_and_scrubs_other_absolute_paths():
    local = {
        "inputs": [{"name": "/home/u/s/a.json", "bytes": 10, "xxh3_128": "ab"}],
        "groups": [{"converter": "layout", "inputs": ["/home/u/s/a.json"], "options": {"layout": "/home/u/s/my.layout.toml", "n": 3}}],
        "converter": {"name": "layout", "options": {"layout": "/home/u/s/my.layout.toml", "note": "not/a/path"}},
        "output": {"format": "jsonl", "files": [{"path": "/home/u/out/o.jsonl", "rows": 2, "bytes": 5, "xxh3_128": "cd"}]},
        "rejects": {"path": "/home/u/out/o.rejects.jsonl", "rows": 0, "bytes": 0, "xxh3_128": "ef"},
        "counts": {"written": 2, "sources": {"layout": {"read": 2}}},
    }
    before = json.dumps(local)
    assert public_manifest(local) == {
        "inputs": [{"name": "a.json", "bytes": 10, "xxh3_128": "ab"}],
        "groups": [{"converter": "layout", "inputs": ["a.json"], "options": {"layout": "my.layout.toml", "n": 3}}],
        "converter": {"name": "layout", "options": {"layout": "my.layout.toml", "note": "not/a/path"}},
        "output": {"format": "jsonl", "files": [{"path": "o.jsonl", "rows": 2, "bytes": 5, "xxh3_128": "cd"}]},
        "rejects": {"path": "o.rejects.jsonl", "rows": 0, "bytes": 0, "xxh3_128": "ef"},
        "counts": {"written": 2, "sources": {"layout": {"read": 2}}},
    }
    assert json.dumps(local) == before  # the caller's manifest is not changed


def test_no_local_path_anywhere_in_the_published_folder(tmp_path, offline):
    secret = tmp_path / "home" / "user" / "secret"
    secret.mkdir(parents=True)
    plain = secret / "ko_alpaca.json"
    shutil.copy(FIXTURES / "ko_alpaca.json", plain)
    records = json.loads(plain.read_text("utf-8"))
    for r in records:  # different rows in the archive, so nothing is a duplicate
        if isinstance(r, dict) and isinstance(r.get("instruction"), str):
            r["instruction"] += " (압축본)"
    archive = secret / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("part/ko_alpaca_2.json", json.dumps(records, ensure_ascii=False))
    out = tmp_path / "run" / "ko.parquet"
    result = kodolly.convert([plain, archive], "alpaca", out)
    local_manifest = out.with_name("ko.manifest.json")
    local_bytes = local_manifest.read_bytes()
    assert str(secret).encode() in local_bytes  # the local manifest does record paths

    folder = tmp_path / "hub"
    built = build_folder(out, folder)
    assert local_manifest.read_bytes() == local_bytes  # ... and is left untouched

    files = folder_bytes(folder)
    for name, data in files.items():
        text = data.decode("utf-8") if not name.endswith(".parquet") else json.dumps(
            pq.read_table(folder / name).to_pylist(), ensure_ascii=False)
        assert str(tmp_path) not in text, name
        assert "/home/user/secret" not in text, name

    public = json.loads(files["kodolly.manifest.json"])
    assert [i["name"] for i in public["inputs"]] == ["ko_alpaca.json", "bundle.zip!part/ko_alpaca_2.json"]
    local = json.loads(local_bytes)
    assert [(i["bytes"], i["xxh3_128"]) for i in public["inputs"]] == [(i["bytes"], i["xxh3_128"]) for i in local["inputs"]]
    assert public["counts"] == local["counts"]
    assert [f["path"] for f in public["output"]["files"]] == ["ko.parquet"]

    front, body = read_card(folder)
    assert "| ko_alpaca.json |" in body and "| bundle.zip!part/ko_alpaca_2.json |" in body
    assert sum(s["num_examples"] for s in front["dataset_info"]["splits"]) == result.tally.written == built.rows
    assert f"wrote {result.tally.written:,}; rejected {result.tally.rejected:,}" in body

    ds = load_folder(folder, offline)
    files_in_meta = {json.loads(m)["file"] for m in ds["train"]["meta"]}
    assert files_in_meta == {"ko_alpaca.json", "bundle.zip!part/ko_alpaca_2.json"}
    assert ds["train"].num_rows == result.tally.written


def test_scrub_meta_files_reduces_every_path_in_a_batch():
    import orjson
    import pyarrow as pa

    from kodolly.hub.public import scrub_meta_files

    metas = [
        {"title": "a", "file": "/home/u/s/a.json", "index": 0},
        {"file": "/home/u/s/bundle.zip!part/b.json", "index": 1},
        {"file": "C:\\Users\\kim\\c.csv", "line": 2},
        {"file": "d.jsonl", "line": 3, "note": "/home/u/s/a.json"},  # only the file value is a path to reduce
        {},
    ]
    table = pa.table({"id": ["1", "2", "3", "4", "5"], "meta": [orjson.dumps(m).decode() for m in metas]})
    out = scrub_meta_files(table)
    assert [json.loads(m) for m in out.column("meta").to_pylist()] == [
        {"title": "a", "file": "a.json", "index": 0},
        {"file": "bundle.zip!part/b.json", "index": 1},
        {"file": "c.csv", "line": 2},
        {"file": "d.jsonl", "line": 3, "note": "/home/u/s/a.json"},
        {},
    ]
    assert out.column("id").to_pylist() == ["1", "2", "3", "4", "5"]
    no_meta = pa.table({"instruction": ["x"]})
    assert scrub_meta_files(no_meta) is no_meta
