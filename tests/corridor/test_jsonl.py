"""kodolly.corridor.jsonl: ranges read exactly as the sequential reader reads the whole file."""

from __future__ import annotations

from pathlib import Path

import pytest

from kodolly.io.readers import read_records
from kodolly.io.sources import expand_inputs
from kodolly.corridor import jsonl

LINES = [
    b'\xef\xbb\xbf{"instruction": "a", "output": "b"}',  # BOM on line 1
    b"",
    b'{"instruction": "c", "output": "d"}\r',  # CRLF
    b"   ",
    b'{"instruction": "broken',
    b'{"instruction": "e", "output": "\xff"}',  # invalid UTF-8
    b'[1, 2]',
    b'{"instruction": "f", "output": "g"}',
]


@pytest.mark.parametrize("max_lines", [None, 1, 3])
@pytest.mark.parametrize("chunk_bytes", [16, 40, 64, 1 << 20])
@pytest.mark.parametrize("final_newline", [True, False])
def test_ranges_yield_what_the_reader_yields(tmp_path: Path, chunk_bytes, final_newline, max_lines):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"\n".join(LINES) + (b"\n" if final_newline else b""))
    inp = expand_inputs([path])[0]
    expected = [(repr(r), loc) for r, loc in read_records(inp)]
    stream = inp.open()
    got = []
    ranges = list(jsonl.cut_ranges(inp, stream, max_bytes=chunk_bytes, max_lines=max_lines))
    for rng in ranges:
        data = path.read_bytes()[rng.offset : rng.offset + rng.length]
        assert rng.read() == data
        records = list(jsonl.iter_range(data, inp.name, "utf-8-sig", rng.line, rng.index))
        assert len(records) == rng.records
        if max_lines:
            assert data.count(b"\n") <= max_lines
        got.extend((repr(r), loc) for r, loc in records)
    assert got == expected
    assert sum(r.length for r in ranges) == path.stat().st_size
    assert inp.bytes_read == path.stat().st_size


def test_count_lines():
    assert jsonl.count_lines(b'{"a":1}\n{"a":2}\n', first=True) == (2, 2)
    assert jsonl.count_lines(b'{"a":1}\n \n\n{"a":2}', first=False) == (4, 2)
    assert jsonl.count_lines(b'\xef\xbb\xbf\n{"a":2}\n', first=True) == (2, 1)
