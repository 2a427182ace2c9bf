"""JSON Lines inputs cut into byte ranges at line ends (with the line numbers and record indices a worker
needs), and the records of one range read back exactly as :func:`kodolly.io.readers.read_records` yields them."""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import orjson

from ..errors import DecompressionBombError
from ..io import limits as limits_mod
from ..io.json_items import check_depth, positions_of
from ..io.readers import BLANK, Location, looks_like_jsonl, parse_jsonl_line, too_deep, too_large
from ..io.sources import Input

CHUNK_BYTES = 8 << 20
BOM = codecs.BOM_UTF8
_WS = np.zeros(256, dtype=bool)
_WS[[0x20, 0x09, 0x0D, 0x0A, 0x0B, 0x0C, 0x00]] = True  # a line starting so may be blank


def _line_pieces(data: bytes) -> list[bytes]:
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    return pieces


def count_lines(data: bytes, first: bool) -> tuple[int, int]:
    """(lines, records) in a chunk that ends at a line end (or at the end of the input)."""
    view = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(view == 0x0A)
    lines = len(newlines) + (0 if data.endswith(b"\n") else 1)
    starts = newlines + 1
    starts = starts[starts < len(data)]
    suspicious = bool(_WS[view[starts]].any()) if len(starts) else False
    if data and (_WS[data[0]] or (first and data.startswith(BOM))):
        suspicious = True
    if not suspicious:
        return lines, lines
    blank = 0
    for n, raw in enumerate(_line_pieces(data)):
        if first and n == 0 and raw.startswith(BOM):
            raw = raw[3:]
        if not raw.strip(BLANK):
            blank += 1
    return lines, lines - blank


def iter_range(data: bytes, name: str, encoding: str, line_no: int, index: int) -> Iterator[tuple[Any, Location]]:
    """The records of a range of JSON Lines, exactly as :func:`kodolly.io.readers.read_records` yields them."""
    utf8 = encoding in ("utf-8", "utf-8-sig")
    pieces = data.split(b"\n")
    last = len(pieces) - 1
    loads = orjson.loads
    lim = limits_mod.current()
    for k, raw in enumerate(pieces):
        if k == last and not raw:
            break
        ln = line_no + k
        if ln == 1 and raw.startswith(BOM):
            raw = raw[3:]
        if not raw.strip(BLANK):
            continue
        loc = Location(name, index, ln)
        index += 1
        if len(raw) > lim.max_record_bytes:
            yield too_large(raw[: lim.head_bytes], len(raw) + (k < last), lim, encoding), loc
            continue
        if check_depth(raw, lim.max_depth):
            yield too_deep(raw, lim, encoding), loc
            continue
        try:
            record = loads(raw) if utf8 else loads(raw.decode(encoding))
        except (UnicodeDecodeError, orjson.JSONDecodeError):
            full = raw + b"\n" if k < last else raw  # the sequential reader sees the line with its newline
            record = parse_jsonl_line(full, encoding, utf8)
        yield record, loc


def splittable(inp: Input, head: bytes, encoding: str) -> bool:
    if encoding not in ("utf-8", "utf-8-sig", "cp949"):
        return False
    if inp.suffix in (".jsonl", ".ndjson"):
        return True
    return inp.suffix == ".json" and looks_like_jsonl(head.lstrip(BOM))


def plain_file(inp: Input) -> str | None:
    return inp.name if os.path.isfile(inp.name) and not inp.name.lower().endswith(".gz") else None


class DirectReader:
    """A plain file read block by block through short-lived memory maps (no copy, and the process
    never holds more than one block of the file), hashed and counted as ``Input.open()`` does."""

    def __init__(self, inp: Input) -> None:
        self.inp = inp
        inp.hasher.reset()
        inp.bytes_read = 0
        self.fh = open(inp.name, "rb")
        self.size = os.fstat(self.fh.fileno()).st_size
        self.pos = 0
        self.map: Any = None

    def read(self, n: int) -> Any:
        import mmap

        self._unmap()
        length = min(n, self.size - self.pos)
        if length <= 0:
            return b""
        skip = self.pos % mmap.ALLOCATIONGRANULARITY  # maps start at a page boundary
        if hasattr(mmap, "MAP_POPULATE"):  # Linux: map the block's pages in one go, not one fault each
            self.map = mmap.mmap(
                self.fh.fileno(), length + skip, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE,
                prot=mmap.PROT_READ, offset=self.pos - skip,
            )
        else:  # pragma: no cover
            self.map = mmap.mmap(self.fh.fileno(), length + skip, access=mmap.ACCESS_READ, offset=self.pos - skip)
        self.view = memoryview(self.map)[skip:]
        self.pos += length
        self.inp.hasher.update(self.view)
        self.inp.bytes_read += length
        return self.view

    def _unmap(self) -> None:
        if self.map is not None:
            try:
                self.view.release()
                self.map.close()
            except BufferError:  # a view of it is still alive; it goes when that does
                pass
            self.map = None

    def close(self) -> None:
        self._unmap()
        self.fh.close()


@dataclass(frozen=True)
class Range:
    """One byte range of a JSON Lines input, ending at a line end (or the input's end), or of a CSV
    input, ending at a record end (:mod:`.csv_ranges`).

    ``data`` holds the bytes when the input is not a plain file (gzip, zip member); a plain file is
    re-read by whoever converts the range (``path``, ``offset``, ``length``). ``line`` and ``index``
    are the 1-based line and 0-based record index the range starts at; ``records`` how many records
    (non-blank lines) it holds.
    """

    path: str | None
    offset: int
    length: int
    line: int
    index: int
    records: int
    first: bool
    data: bytes | None = None
    bad: tuple[str, str, str] | None = None  # (reason, raw, detail): the range is this one reject
    header: int = 0  # a CSV range: the bytes of the input's header record (its column names), at offset 0
    head: bytes | None = None  # a CSV range of a stream (zip member, gzip): that header record's bytes
    # where its newlines are (offsets in the range), when the planner found them anyway: the worker
    # need not scan the range for them again
    newlines: np.ndarray | None = field(default=None, compare=False, repr=False)

    def read(self) -> Any:
        """The range's bytes (a memory-mapped buffer for a plain file)."""
        if self.data is not None:
            return self.data
        import pyarrow as pa

        with pa.memory_map(self.path) as source:
            source.seek(self.offset)
            return source.read_buffer(self.length)


def cut_ranges(
    inp: Input, stream: Any, *, max_bytes: int | None = None, max_lines: int | None = None, encoding: str = "utf-8"
) -> Iterator[Range]:
    """Cut a JSONL input into ranges at line ends, of about ``max_bytes`` (default :data:`CHUNK_BYTES`)
    and at most ``max_lines`` lines, counting lines and records as it goes. The input is read once,
    block by block (hashed as ``Input.open()`` does); ``stream`` is the input's open stream."""
    block_bytes = max_bytes or CHUNK_BYTES
    path = plain_file(inp)
    if path is not None:
        stream.close()
        stream = DirectReader(inp)
    offset, line, index, first = 0, 1, 0, True
    carry = b""  # the start of a line begun in the previous block
    lim = limits_mod.current()
    long_line: list | None = None  # [head, length] of a line over the limit, being skipped

    def pieces(data: bytes) -> Iterator[Range]:
        """``data`` (whole lines) as ranges of at most ``max_lines`` lines, each with its line and record counts."""
        nonlocal offset, line, index, first
        for piece in _by_lines(data, max_lines):
            records = count_lines(piece, first)[1]
            yield Range(path, offset, len(piece), line, index, records, first, None if path else piece)
            offset += len(piece)
            line += piece.count(b"\n")
            index += records
            first = False

    try:
        while True:
            try:
                block = stream.read(block_bytes)
            except DecompressionBombError as exc:  # the member stops here: one reject, the rest is kept
                yield _bad_range(("decompression_bomb", "", str(exc)), offset, line, index, first)
                return
            if long_line is not None:
                newline = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x0A) if len(block) else None
                if newline is not None and not len(newline):
                    long_line[1] += len(block)
                    offset += len(block)
                    continue
                end = int(newline[0]) + 1 if newline is not None else 0
                bad = too_large(long_line[0], long_line[1] + end, lim, encoding)
                yield _bad_range((bad.reason, bad.raw, bad.detail), offset, line, index, first)
                offset, line, index, first, long_line = offset + end, line + 1, index + 1, False, None
                if newline is None:
                    return
                block = block[end:]
                if not len(block):
                    continue
            if not len(block):
                if carry:
                    yield from pieces(carry)
                return
            view = np.frombuffer(block, dtype=np.uint8)
            newlines = positions_of(view, 0x0A)
            if not len(newlines):
                carry += bytes(block)
                if len(carry) > lim.max_record_bytes:  # never buffer a line beyond the record limit
                    long_line = [carry[: lim.head_bytes], len(carry)]
                    offset += len(carry)
                    carry = b""
                continue
            cut = int(newlines[-1]) + 1
            starts = newlines[:-1] + 1  # line starts inside the block, after its first line
            head = carry[:3] if carry else bytes(block[:3])
            suspicious = bool(_WS[view[starts]].any()) or bool(_WS[head[0]]) or (first and head.startswith(BOM))
            if path is not None and not max_lines and not suspicious:  # the common case: no copy
                length = len(carry) + cut
                yield Range(path, offset, length, line, index, len(newlines), first, newlines=newlines + len(carry))
                offset += length
                line += len(newlines)
                index += len(newlines)
                first = False
            else:
                yield from pieces(carry + bytes(block[:cut]))
            carry = bytes(block[cut:])
            del view, block
    finally:
        stream.close()


def _by_lines(data: bytes, max_lines: int | None) -> Iterator[bytes]:
    """``data`` (ending at a line end, or the input's end) in pieces of at most ``max_lines`` lines."""
    if not max_lines:
        yield data
        return
    view = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(view == 0x0A)[max_lines - 1 :: max_lines] + 1
    start = 0
    for end in ends.tolist():
        yield data[start:end]
        start = end
    if start < len(data):
        yield data[start:]


def _bad_range(bad: tuple[str, str, str], offset: int, line: int, index: int, first: bool) -> Range:
    """A range holding one reject instead of data (a line over the record limit, a member stopped as a
    decompression bomb)."""
    return Range(None, offset, 0, line, index, 1, first, bad=bad)
