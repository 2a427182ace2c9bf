"""Issue 18: every run-level input error is one line naming the file (and the zip member), exit 1."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from kodolly.cli import cli
from kodolly.errors import InputError
from kodolly.io.batches import iter_batches
from support import convert_to_parquet

RECORDS = [{"instruction": f"질문 {i}", "output": f"답변 {i}" * 50} for i in range(40)]
JSONL = b"".join(orjson.dumps(r) + b"\n" for r in RECORDS)


def _convert(tmp_path: Path, *sources: str | Path):
    return CliRunner().invoke(cli, ["convert", *map(str, sources), "--from", "alpaca", "-o", str(tmp_path / "out.parquet")])


def _one_line(result, start: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith(start), result.stderr
    assert not (result.stderr and "Traceback" in result.stderr)
    return lines[0]


def _zip(path: Path, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    with zipfile.ZipFile(path, "w", compression=method) as z:
        z.writestr("d/a.jsonl", JSONL)
    return path.read_bytes()


def test_corrupt_zip_data(tmp_path):
    src = tmp_path / "c.zip"
    data = bytearray(_zip(src))
    start = 30 + len("d/a.jsonl")
    data[start + 20 : start + 60] = b"\xff" * 40  # damage the deflate stream
    src.write_bytes(bytes(data))
    line = _one_line(_convert(tmp_path, src), f"kodolly: error: {src}!d/a.jsonl: corrupt compressed data")
    assert "Error -3" in line or "CRC" in line


def test_bad_crc(tmp_path):
    src = tmp_path / "crc.zip"
    data = bytearray(_zip(src, zipfile.ZIP_STORED))
    at = data.index("질문 5".encode())
    data[at : at + 1] = b"X"  # stored bytes changed: the CRC no longer matches
    src.write_bytes(bytes(data))
    line = _one_line(_convert(tmp_path, src), f"kodolly: error: {src}!d/a.jsonl: corrupt compressed data")
    assert "Bad CRC-32" in line


def test_encrypted_member(tmp_path):
    src = tmp_path / "enc.zip"
    data = bytearray(_zip(src))
    data[6] |= 1  # the encrypted flag, in the local header ...
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 1  # ... and in the central directory
    src.write_bytes(bytes(data))
    line = _one_line(_convert(tmp_path, src), f"kodolly: error: {src}!d/a.jsonl: cannot read this archive member")
    assert "encrypted" in line


def test_split_set_missing_its_first_part(tmp_path):
    whole = _zip(tmp_path / "whole.zip")
    (tmp_path / "set.zip.part1").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "set.zip.part2").write_bytes(whole[len(whole) // 2 :])
    line = _one_line(_convert(tmp_path, tmp_path / "set.zip.part1"), f"kodolly: error: {tmp_path / 'set.zip.part0'}: the first part of this split archive is missing")
    assert "set.zip.part1, set.zip.part2" in line


def test_truncated_gzip(tmp_path):
    src = tmp_path / "t.jsonl.gz"
    src.write_bytes(gzip.compress(JSONL)[:-30])
    _one_line(_convert(tmp_path, src), f"kodolly: error: {src}: truncated compressed data (Compressed file ended before the end-of-stream marker was reached)")


@pytest.mark.parametrize("damage", ["truncated", "not parquet"])
def test_bad_parquet_for_build_dpo_and_iter_batches(tmp_path, damage):
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"instruction": ["a"] * 100, "response": ["b"] * 100}), good)
    src = tmp_path / "bad.parquet"
    src.write_bytes(good.read_bytes()[:-100] if damage == "truncated" else b"PAR1 not really")
    with pytest.raises(InputError, match=r"bad\.parquet: not a readable parquet file"):
        list(iter_batches(src))
    result = CliRunner().invoke(cli, ["build-dpo", str(src), "--dry-run"])
    _one_line(result, f"kodolly: error: {src}: not a readable parquet file")


def test_utf16_without_bom_korean_is_read_as_utf16(tmp_path):
    for encoding in ("utf-16-le", "utf-16-be"):
        src = tmp_path / f"ko-{encoding}.json"
        src.write_bytes(json.dumps(RECORDS[:3], ensure_ascii=False).encode(encoding))
        rows, rejects, _ = convert_to_parquet(tmp_path, src, "alpaca")
        assert [r["instruction"] for r in rows] == ["질문 0", "질문 1", "질문 2"] and rejects == []
        src = tmp_path / f"ko-{encoding}.jsonl"
        src.write_bytes("".join(json.dumps({"instruction": "한국어 질문입니다", "output": "네 맞습니다"}, ensure_ascii=False) + "\n" for _ in range(3)).encode(encoding))
        rows, rejects, _ = convert_to_parquet(tmp_path, src, "alpaca")
        assert [r["response"] for r in rows] == ["네 맞습니다"] * 3 and rejects == []
