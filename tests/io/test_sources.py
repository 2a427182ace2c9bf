from __future__ import annotations

import shutil
import zipfile

import pytest

import kodolly
from kodolly.io.sources import expand_inputs
from support import FIXTURES, convert_to_parquet

pytestmark = pytest.mark.usefixtures("engine")  # every conversion here runs under each engine


def test_zip_member_names_in_cp949_are_decoded_and_macos_junk_skipped():
    names = [i.name for i in expand_inputs([FIXTURES / "archives" / "cp949_names.zip"])]
    assert names == [f"{FIXTURES / 'archives' / 'cp949_names.zip'}!한국어_데이터/알파카.json"]


def test_zip_members_are_converted_in_place(tmp_path):
    rows, rejects, result = convert_to_parquet(tmp_path, FIXTURES / "archives" / "cp949_names.zip", "alpaca")
    assert [r["instruction"] for r in rows] == ["한국의 수도는 어디인가요?", "김치찌개 끓이는 법"]
    assert rows[0]["id"] == "알파카.json:0"
    assert result.manifest_data["inputs"][0]["name"].endswith("!한국어_데이터/알파카.json")


def test_gzip_jsonl(tmp_path):
    rows, _, _ = convert_to_parquet(tmp_path, FIXTURES / "archives" / "kullm.jsonl.gz", "alpaca")
    assert len(rows) == 2


def test_split_zip_parts_are_joined(tmp_path):
    data = (FIXTURES / "archives" / "cp949_names.zip").read_bytes()
    cut = len(data) // 3
    for n, chunk in enumerate([data[:cut], data[cut : 2 * cut], data[2 * cut :]]):
        (tmp_path / f"TL.zip.part{n}").write_bytes(chunk)
    inputs = expand_inputs([tmp_path])
    assert [i.name for i in inputs] == [f"{tmp_path / 'TL.zip'}!한국어_데이터/알파카.json"]
    rows = list(kodolly.iter_rows(tmp_path, "alpaca"))
    assert len(rows) == 2


def test_split_zip_with_a_missing_part_is_a_clear_error(tmp_path):
    data = (FIXTURES / "archives" / "cp949_names.zip").read_bytes()
    (tmp_path / "TL.zip.part0").write_bytes(data[:100])
    (tmp_path / "TL.zip.part2").write_bytes(data[100:])
    with pytest.raises(kodolly.InputError, match="not contiguous"):
        expand_inputs([tmp_path])


def test_directories_and_globs_in_stable_order(tmp_path):
    for name in ["b.jsonl", "a.jsonl", "sub/c.jsonl", "notes.txt"]:
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text('{"instruction": "질문", "output": "답"}\n', encoding="utf-8")
    assert [i.name for i in expand_inputs([tmp_path])] == [
        str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), str(tmp_path / "sub" / "c.jsonl")
    ]
    assert [i.name for i in expand_inputs([str(tmp_path / "**" / "*.jsonl")])] == [
        str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), str(tmp_path / "sub" / "c.jsonl")
    ]


def test_missing_input_and_unreadable_archive(tmp_path):
    with pytest.raises(kodolly.InputError, match="no such file"):
        expand_inputs([tmp_path / "nope.json"])
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK not really a zip")
    with pytest.raises(kodolly.InputError, match="not a readable zip"):
        expand_inputs([bad])
    with pytest.raises(kodolly.InputError, match="matches no data files"):
        expand_inputs([str(tmp_path / "*.parquet")])


def test_lfs_pointer_inside_a_zip(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as z:
        z.writestr("data.jsonl", (FIXTURES / "bad" / "lfs_pointer.json").read_bytes())
    with pytest.raises(kodolly.LfsPointerError, match="x.zip!data.jsonl"):
        list(kodolly.iter_rows(tmp_path / "x.zip", "alpaca"))


def test_input_hash_is_of_the_bytes_read(tmp_path):
    import xxhash

    src = FIXTURES / "alpaca" / "kullm-v2.jsonl"
    shutil.copy(src, tmp_path / "k.jsonl")
    _, _, result = convert_to_parquet(tmp_path, tmp_path / "k.jsonl", "alpaca")
    assert result.manifest_data["inputs"] == [
        {"name": str(tmp_path / "k.jsonl"), "bytes": src.stat().st_size, "xxh3_128": xxhash.xxh3_128(src.read_bytes()).hexdigest()}
    ]


def test_a_split_set_is_read_once_whichever_parts_are_named(tmp_path):
    data = (FIXTURES / "archives" / "cp949_names.zip").read_bytes()
    cut = len(data) // 2
    (tmp_path / "TL.zip.part0").write_bytes(data[:cut])
    (tmp_path / "TL.zip.part1").write_bytes(data[cut:])
    expected = [f"{tmp_path / 'TL.zip'}!한국어_데이터/알파카.json"]
    assert [i.name for i in expand_inputs([tmp_path / "TL.zip.part1"])] == expected
    assert [i.name for i in expand_inputs([tmp_path / "TL.zip.part0", tmp_path / "TL.zip.part1"])] == expected
    assert [i.name for i in expand_inputs([str(tmp_path / "TL.zip.part*")])] == expected
