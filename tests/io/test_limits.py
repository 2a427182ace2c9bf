"""Issue 18, input side: every record accounted for, and bounded by design.

Each case builds its bad input in ``tmp_path`` and asserts the exact rows, the exact rejects and
reasons, the exit code and the tally line. The runaway cases run ``kodolly convert`` in a child
process under a 1.5 GiB address-space limit (a regression fails instead of exhausting the machine)
and check its peak RSS.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

import kodolly
from kodolly.cli import cli
from kodolly.io.limits import Limits
from limits_support import convert_limited
from support import convert_to_parquet


def _rec(i: int) -> dict:
    return {"instruction": f"질문 {i}", "output": f"답변 {i}"}


def _jsonl(records) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


# ------------------------------------------------------------------------- every record accounted for

BLANK_PREFIX = b"\n" * 30000 + b" \t" * 10000 + b"\x00" * 20000  # 70 KB: more than the 64 KiB sniffed


@pytest.mark.parametrize("workers", [1, 2])
def test_jsonl_after_64k_of_blank_lines_spaces_and_nuls_reads_every_record(tmp_path, workers):
    src = tmp_path / "padded.jsonl"
    src.write_bytes(BLANK_PREFIX + b"\n" + _jsonl(_rec(i) for i in range(3)))
    rows, rejects, result = convert_to_parquet(tmp_path, src, "alpaca", workers=workers)
    assert [r["instruction"] for r in rows] == ["질문 0", "질문 1", "질문 2"]
    assert rejects == [] and (result.tally.read, result.tally.written) == (3, 3)
    assert [r["meta"]["line"] if isinstance(r["meta"], dict) else json.loads(r["meta"])["line"] for r in rows] == [30002, 30003, 30004]


def test_nul_padding_on_the_first_record_line_is_not_a_reject(tmp_path):
    src = tmp_path / "nul.jsonl"
    src.write_bytes(b"\x00" * 70000 + _jsonl([_rec(0), _rec(1)]))
    rows, rejects, _ = convert_to_parquet(tmp_path, src, "alpaca", workers=1)
    assert [r["instruction"] for r in rows] == ["질문 0", "질문 1"] and rejects == []


def test_json_array_after_64k_of_blanks_reads_every_record(tmp_path):
    src = tmp_path / "padded.json"
    src.write_bytes(BLANK_PREFIX + json.dumps([_rec(i) for i in range(4)], ensure_ascii=False).encode())
    rows, rejects, _ = convert_to_parquet(tmp_path, src, "alpaca")
    assert [r["instruction"] for r in rows] == ["질문 0", "질문 1", "질문 2", "질문 3"] and rejects == []


def test_only_blanks_is_one_empty_file_reject(tmp_path):
    src = tmp_path / "blank.jsonl"
    src.write_bytes(BLANK_PREFIX * 2)
    rows, rejects, _ = convert_to_parquet(tmp_path, src, "alpaca")
    assert rows == [] and [(r["reason"], r["index"]) for r in rejects] == [("empty_file", 0)]


def test_bad_items_in_a_json_array_are_one_reject_each_and_the_rest_is_read(tmp_path):
    items = [json.dumps(_rec(i), ensure_ascii=False) for i in range(10)]
    items[3] = '{"instruction": "질문 3", "output": }'  # a syntax error
    items[6] = '{"instruction": "질문 6", "output": NaN}'  # a bare NaN
    src = tmp_path / "bad_items.json"
    src.write_text("[\n" + ",\n".join(items) + "\n]", encoding="utf-8")
    result = CliRunner().invoke(cli, ["convert", str(src), "--from", "alpaca", "-o", str(tmp_path / "out.parquet")])
    assert result.exit_code == 0, result.output
    assert "tally OK: read 10 = written 8 + rejected 2" in result.output
    rows, rejects, _ = convert_to_parquet(tmp_path, src, "alpaca")
    assert [r["instruction"] for r in rows] == [f"질문 {i}" for i in range(10) if i not in (3, 6)]
    assert [(r["reason"], r["index"], r["raw"]) for r in rejects] == [("bad_json", 3, items[3]), ("bad_json", 6, items[6])]


def test_bad_item_in_an_envelope_is_one_reject(tmp_path):
    src = tmp_path / "aihub.json"
    good = {"instruction": "질문", "output": "답변"}
    src.write_text('{"info": {"v": 1}, "data": [' + json.dumps(good) + ', {"instruction": "x",, }, ' + json.dumps(good) + "]}", encoding="utf-8")
    from kodolly.io.readers import BadRecord, read_records
    from kodolly.io.sources import expand_inputs

    records = list(read_records(expand_inputs([src])[0], ("data.item",)))
    assert [r if not isinstance(r, BadRecord) else (r.reason, r.raw) for r, _ in records] == [good, ("bad_json", '{"instruction": "x",, }'), good]
    assert [loc.index for _, loc in records] == [0, 1, 2]


# ------------------------------------------------------------------------- bounded by design


def test_record_too_large_in_jsonl_and_json_is_one_reject_with_the_head_as_raw(tmp_path):
    big = {"instruction": "긴 질문", "output": "가" * (700 << 10)}  # ~2.1 MB of UTF-8
    for name, data in (("big.jsonl", _jsonl([_rec(0), big, _rec(2)])), ("big.json", json.dumps([_rec(0), big, _rec(2)], ensure_ascii=False).encode())):
        src = tmp_path / name
        src.write_bytes(data)
        out = tmp_path / (name + ".parquet")
        result = kodolly.convert(src, "alpaca", out, workers=1, limits=Limits(max_record_bytes=1 << 20))
        rejects = [orjson.loads(x) for x in result.rejects.read_bytes().splitlines()]
        assert (result.tally.read, result.tally.written, result.tally.rejected) == (3, 2, 1)
        assert [(r["reason"], r["index"]) for r in rejects] == [("record_too_large", 1)]
        assert rejects[0]["raw"].startswith('{"instruction":') and len(rejects[0]["raw"].encode()) <= 4096 + 8
        assert "over the limit of 1,048,576" in rejects[0]["detail"]


def test_max_record_mb_option_on_the_command_line(tmp_path):
    src = tmp_path / "big.jsonl"
    src.write_bytes(_jsonl([_rec(0), {"instruction": "q", "output": "x" * (3 << 20)}, _rec(2)]))
    result = CliRunner().invoke(cli, ["convert", str(src), "--from", "alpaca", "-o", str(tmp_path / "o.parquet"), "--max-record-mb", "2"])
    assert result.exit_code == 0, result.output
    assert "tally OK: read 3 = written 2 + rejected 1" in result.output
    assert [orjson.loads(x)["reason"] for x in (tmp_path / "o.rejects.jsonl").read_bytes().splitlines()] == ["record_too_large"]


def _nested(depth: int) -> str:
    return '{"instruction": "깊다", "output": ' + "[" * depth + "1" + "]" * depth + "}"


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_too_deep_is_one_reject_with_the_text_as_raw_even_past_orjsons_255(tmp_path, suffix):
    deep = _nested(300)  # orjson could not even write this back as an object
    texts = [json.dumps(_rec(0), ensure_ascii=False), deep, json.dumps(_rec(2), ensure_ascii=False)]
    src = tmp_path / ("deep" + suffix)
    src.write_text("[" + ",".join(texts) + "]" if suffix == ".json" else "\n".join(texts) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["convert", str(src), "--from", "alpaca", "-o", str(tmp_path / "o.parquet")])
    assert result.exit_code == 0, result.output
    assert "tally OK: read 3 = written 2 + rejected 1" in result.output
    rejects = [orjson.loads(x) for x in (tmp_path / "o.rejects.jsonl").read_bytes().splitlines()]
    assert [(r["reason"], r["index"], r["raw"]) for r in rejects] == [("too_deep", 1, deep)]
    assert "deeper than 128 levels" in rejects[0]["detail"]


def test_max_depth_option_and_its_bound(tmp_path):
    src = tmp_path / "d.jsonl"
    src.write_text(json.dumps(_rec(0)) + "\n" + _nested(5) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["convert", str(src), "--from", "alpaca", "-o", str(tmp_path / "o.parquet"), "--max-depth", "4"])
    assert "tally OK: read 2 = written 1 + rejected 1" in result.output
    result = CliRunner().invoke(cli, ["convert", str(src), "--from", "alpaca", "-o", str(tmp_path / "o.parquet"), "--max-depth", "300"])
    assert result.exit_code == 2 and "300 is not in the range 1<=x<=255" in result.output


def test_long_string_in_an_array_reads_in_linear_time(tmp_path):
    import time

    src = tmp_path / "long.json"
    long = {"instruction": "긴", "output": "x" * (20 << 20)}
    src.write_bytes(json.dumps([_rec(0), long, _rec(2)]).encode())
    start = time.process_time()
    rows, rejects, _ = convert_to_parquet(tmp_path, src, "alpaca", workers=1)
    assert [len(r["response"]) for r in rows] == [4, 20 << 20, 4] and rejects == []
    assert time.process_time() - start < 10  # 20 MB took 24 s through ijson (quadratic); ~1 s now


def test_array_nested_100000_deep_stays_small(tmp_path):
    src = tmp_path / "deep.json"
    src.write_bytes(b"[" + json.dumps(_rec(0)).encode() + b"," + b"[" * 100_000 + b"]" * 100_000 + b"," + json.dumps(_rec(2)).encode() + b"]")
    run = convert_limited(tmp_path, src)
    assert run.code == 0, run.stderr
    assert "tally OK: read 3 = written 2 + rejected 1" in run.stdout
    assert [r["instruction"] for r in run.rows] == ["질문 0", "질문 2"]
    assert [(r["reason"], r["index"], len(r["raw"])) for r in run.rejects] == [("too_deep", 1, 4096)]
    print(f"peak RSS {run.peak_rss_mb:.0f} MB")
    assert run.peak_rss_mb < 400, run.peak_rss_mb  # 22.5 GB before


def _bomb_zip(path: Path, record: bytes, zeros: int) -> int:
    """A zip whose member is ``record`` then ``zeros`` NUL bytes, written without compressing them
    (a deflate block of 16 MiB of zeros is made once and repeated: full flushes make that valid)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = comp.compress(record) + comp.flush(zlib.Z_FULL_FLUSH)
    block = bytes(16 << 20)
    zero_block = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush(zlib.Z_FINISH)
    n = zeros // len(block)
    crc = zlib.crc32(record)
    for _ in range(n):
        crc = zlib.crc32(block, crc)
    size = len(record) + n * len(block)
    packed = len(head) + n * len(zero_block) + len(tail)
    name = b"data/bomb.jsonl"
    with open(path, "wb") as f:
        f.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, packed, size, len(name), 0) + name)
        f.write(head)
        for _ in range(n):
            f.write(zero_block)
        f.write(tail)
        cd_at = f.tell()
        central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, packed, size, len(name), 0, 0, 0, 0, 0, 0) + name
        f.write(central)
        f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), cd_at, 0))
    return size


def test_zip_bomb_member_stops_with_one_reject_and_keeps_the_record_before(tmp_path):
    src = tmp_path / "bomb.zip"
    size = _bomb_zip(src, orjson.dumps(_rec(0)) + b"\n", 2 << 30)
    assert size > 2 << 30 and src.stat().st_size < 4 << 20
    with zipfile.ZipFile(src) as z:  # a valid archive
        assert z.infolist()[0].file_size == size
    run = convert_limited(tmp_path, src, "--max-expansion", "20", timeout=60)
    assert run.code == 0, run.stderr
    assert [r["instruction"] for r in run.rows] == ["질문 0"]
    assert "tally OK: read 2 = written 1 + rejected 1" in run.stdout
    [reject] = run.rejects
    assert (reject["reason"], reject["index"], reject["file"]) == ("decompression_bomb", 1, f"{src}!data/bomb.jsonl")
    assert "more than 20x" in reject["detail"] and "--max-expansion" in reject["detail"]
    print(f"peak RSS {run.peak_rss_mb:.0f} MB")
    assert run.peak_rss_mb < 600, run.peak_rss_mb  # 6-10 GB before


def test_gzip_bomb_stops_too(tmp_path):
    import gzip

    src = tmp_path / "bomb.jsonl.gz"
    with gzip.open(src, "wb", compresslevel=1) as f:
        f.write(_jsonl([_rec(0)]))
        f.write(bytes(80 << 20))  # 80 MiB of NULs -> ~80 KB: over 100x and over the 64 MiB floor
    rows, rejects, _ = convert_to_parquet(tmp_path, src, "alpaca", workers=1)
    assert [r["instruction"] for r in rows] == ["질문 0"]
    assert [(r["reason"], r["index"]) for r in rejects] == [("decompression_bomb", 1)]


def test_limits_from_the_settings_named_as_the_options():
    from kodolly.errors import ConfigError
    from kodolly.io.limits import from_settings

    assert from_settings({"max_record_mb": 2}) == Limits(max_record_bytes=2 << 20)
    assert from_settings({"max_depth": 4}, base=Limits(max_expansion=7)) == Limits(max_depth=4, max_expansion=7)
    assert from_settings({}) == Limits()
    with pytest.raises(ConfigError, match=r"^unknown input limit\(s\) max_bytes: the limits are max_depth, max_record_mb, max_expansion$"):
        from_settings({"max_bytes": 1})
    with pytest.raises(ConfigError, match=r"^max_depth must be between 1 and 255, not 0$"):
        from_settings({"max_depth": 0})
