"""kodolly.parallel.jsonl: chunks read exactly as the sequential reader reads the whole file."""

from __future__ import annotations

from pathlib import Path

import pytest

from kodolly.io.readers import read_records
from kodolly.io.sources import expand_inputs
from kodolly.parallel import jsonl

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


@pytest.mark.parametrize("chunk_bytes", [16, 40, 64, 1 << 20])
@pytest.mark.parametrize("final_newline", [True, False])
def test_chunks_yield_what_the_reader_yields(tmp_path: Path, monkeypatch, chunk_bytes, final_newline):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"\n".join(LINES) + (b"\n" if final_newline else b""))
    inp = expand_inputs([path])[0]
    expected = [(repr(r), loc) for r, loc in read_records(inp)]
    monkeypatch.setattr(jsonl, "CHUNK_BYTES", chunk_bytes)
    stream = inp.open()
    got = []
    for task in jsonl._jsonl_tasks(inp, stream, "utf-8-sig"):
        data = path.read_bytes()[task["offset"] : task["offset"] + task["length"]]
        records = list(jsonl.iter_jsonl_chunk(data, task["name"], "utf-8-sig", task["line"], task["index"]))
        assert len(records) == task["records"]
        got.extend((repr(r), loc) for r, loc in records)
    assert got == expected
    assert inp.bytes_read == path.stat().st_size


def test_count_lines():
    assert jsonl.count_lines(b'{"a":1}\n{"a":2}\n', first=True) == (2, 2)
    assert jsonl.count_lines(b'{"a":1}\n \n\n{"a":2}', first=False) == (4, 2)
    assert jsonl.count_lines(b'\xef\xbb\xbf\n{"a":2}\n', first=True) == (2, 1)
