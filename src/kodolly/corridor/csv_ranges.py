"""CSV inputs cut into byte ranges at record ends, and the records of one range read back exactly as
:func:`kodolly.io.readers.read_records` yields them.

A record ends at a newline outside quotes. Where that is follows from the parity of the quotes
before it -- when every quote is where the CSV reader treats it as a quote: one that opens a field
(after a delimiter, a line end or the start), or closes or doubles one (before a delimiter, a line
end or a quote). The planner checks that, and that every byte before a cut decodes, and cuts only
where the sequential reader is at a record start; line numbers (``\\n``, ``\\r\\n`` and ``\\r`` each end a
line, as the reader counts them) and record indices (blank records are skipped) go with each range.

Anything that could make the sequential read differ from the ranges' -- a quote inside an unquoted
field, a lone ``\\r`` ending a record, a record over the record limit, a byte that does not decode (the
reader stops there, at a point that depends on how far it has decoded ahead) -- ends the cutting: the
rest of the input is one :class:`Tail`, read sequentially from the input's start (the records before
it skipped). A range is handed out only once :data:`LOOKAHEAD` bytes after it are checked, so the
reader's read-ahead never reaches a problem before the tail's first record.

A plain file's ranges are read again by whoever converts them; a zip member's or a gzip's (read once,
as a stream, by the planner) carry their bytes and the header record's. A stream stopped by the
decompression budget ends the cutting like a problem: the tail reads it again and stops where a whole
read stops.
"""

from __future__ import annotations

import io
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ..errors import DecompressionBombError
from ..io import limits as limits_mod
from ..io.readers import CSV_DELIMITERS, Location, csv_header, read_csv
from ..io.sources import Input
from .jsonl import BOM, CHUNK_BYTES, DirectReader, Range, plain_file

LOOKAHEAD = 1 << 20  # checked bytes after a range before it is handed out (the reader decodes 8 KiB ahead)
ENCODINGS = ("utf-8", "utf-8-sig", "cp949")  # no byte of a multi-byte character is a quote, comma or newline
_LF, _CR, _QUOTE = 0x0A, 0x0D, 0x22


@dataclass(frozen=True)
class Tail:
    """The rest of a CSV input from record ``index`` (at byte ``offset``, line ``line``): read
    sequentially from the input's start, the records before ``index`` skipped."""

    offset: int
    line: int
    index: int


def csv_splittable(inp: Input, encoding: str) -> bool:
    """A CSV/TSV input (a plain file, a zip member, a gzip) in an encoding whose multi-byte characters
    hold no ASCII byte."""
    return inp.suffix in CSV_DELIMITERS and encoding in ENCODINGS


class _Problem(Exception):
    """The cutting stops here (see the module docstring)."""


def cut_csv_ranges(
    inp: Input, stream: Any, *, max_bytes: int | None = None, max_records: int | None = None, encoding: str = "utf-8"
) -> Iterator[Range | Tail]:
    """Cut a CSV input into ranges at record ends, of about ``max_bytes`` (default
    :data:`CHUNK_BYTES`) and at most ``max_records`` records, ending with a :class:`Tail` where the
    cutting stops early. The input is read once (hashed as ``Input.open()`` does); ``stream`` is the
    input's open stream (closed here; a plain file is read through memory maps instead, and its ranges
    carry no bytes)."""
    path = plain_file(inp)
    if path is not None:
        stream.close()
        reader = DirectReader(inp)
    else:
        reader = stream
    cutter = _Cutter(path, ord(CSV_DELIMITERS[inp.suffix]), encoding, max_records, limits_mod.current().max_record_bytes)
    pending: deque[Range] = deque()
    try:
        carry = b""
        while True:
            try:
                block = reader.read(max_bytes or CHUNK_BYTES)
            except DecompressionBombError:  # the tail reads the stream again and stops where a whole read does
                yield Tail(pending[0].offset, pending[0].line, pending[0].index) if pending else cutter.tail()
                return
            buf = carry + bytes(block) if len(block) else carry
            try:
                if not len(block):  # the end: what is left is the last range
                    if buf:
                        pending.extend(cutter.last(buf))
                    break
                used = cutter.cut(buf, pending)
            except _Problem:
                yield Tail(pending[0].offset, pending[0].line, pending[0].index) if pending else cutter.tail()
                return
            carry = buf[used:]
            while pending and pending[0].offset + pending[0].length + LOOKAHEAD <= cutter.offset:
                yield pending.popleft()
        yield from pending
    finally:
        reader.close()


class _Cutter:
    """The cutting state: where the next range starts (byte, line, record), and the header's length."""

    def __init__(self, path: str | None, delimiter: int, encoding: str, max_records: int | None, max_record_bytes: int) -> None:
        self.path, self.encoding, self.max_records, self.max_record_bytes = path, encoding, max_records, max_record_bytes
        self.check_encoding = "utf-8" if encoding == "utf-8-sig" else encoding
        self.separators = np.array([delimiter, _LF, _CR, _QUOTE], dtype=np.uint8)  # what may stand beside a quote
        self.offset, self.line, self.index = 0, 1, 0
        self.header = 0  # bytes of the header record; 0 until it is found
        self.head: bytes | None = None  # a stream (no path): the header record's bytes, and ranges carry theirs

    def tail(self) -> Tail:
        return Tail(self.offset, self.line, self.index)

    def cut(self, buf: bytes, out: deque) -> int:
        """Ranges of the whole records at the start of ``buf`` (which starts at a record start) into
        ``out``; how many bytes they take (0: no record ends in ``buf`` yet). A range ends after a
        record that is not blank: the reader gives a record the line after the last one it read, so
        one after blank lines is placed on the first of them, as here."""
        v = np.frombuffer(buf, dtype=np.uint8)
        newlines = np.flatnonzero(v == _LF)
        quotes = np.flatnonzero(v == _QUOTE)
        ends = newlines[(np.searchsorted(quotes, newlines) & 1) == 0] if len(quotes) else newlines
        starts = np.concatenate(([0], ends[:-1] + 1))  # where each record starts
        blank = (ends == starts) | ((ends == starts + 1) & (v[ends - 1] == _CR))
        first = self.header == 0
        if first and len(ends) and blank[0]:  # no column names: the reader's own quirks, read sequentially
            raise _Problem
        cuts = ends[~blank]
        if not len(cuts):
            if len(buf) > self.max_record_bytes:
                raise _Problem
            return 0
        used = int(cuts[-1]) + 1
        self._check(v, quotes[quotes < used], used)
        try:
            buf[:used].decode(self.check_encoding)
        except UnicodeDecodeError:
            raise _Problem from None
        crs = np.flatnonzero(v[:used] == _CR)
        lone_crs = crs[v[crs + 1] != _LF]  # a lone \r ends a line (inside quotes; outside, a record: a problem)
        if len(lone_crs) and ((np.searchsorted(quotes, lone_crs) & 1) == 0).any():
            raise _Problem
        if (ends - starts + 1 > self.max_record_bytes)[ends < used].any():
            raise _Problem
        if first:
            self.header = int(ends[0]) + 1
            if self.path is None:
                self.head = bytes(buf[: self.header])
        # line ends: every \n, every lone \r (the reader's lines are \n, \r\n and \r)
        line_ends = np.sort(np.concatenate((newlines[newlines < used], lone_crs)))
        step = self.max_records or len(cuts)
        k = start = 0
        while k < len(cuts):  # groups of at most max_records records (the header goes with the first)
            stop_k = min(k + step + first, len(cuts))
            stop = int(cuts[stop_k - 1]) + 1
            records = stop_k - k - first
            lines = int(np.searchsorted(line_ends, stop) - np.searchsorted(line_ends, start))
            out.append(self._range(buf, start, stop, records, first))
            self.offset, self.line, self.index = self.offset + stop - start, self.line + lines, self.index + records
            k, start, first = stop_k, stop, False
        return used

    def _check(self, v: np.ndarray, quotes: np.ndarray, end: int) -> None:
        """Every quote before ``end`` is one the reader treats as a quote (see the module docstring)."""
        if not len(quotes):
            return
        opening, closing = quotes[0::2], quotes[1::2]
        begin = len(BOM) if self.header == 0 and self.encoding == "utf-8-sig" else 0  # where the data starts
        inner = opening[opening != begin]
        if len(inner) and not np.isin(v[inner - 1], self.separators).all():
            raise _Problem
        if len(closing) and not np.isin(v[closing + 1], self.separators).all():  # closing < end - 1: a newline follows
            raise _Problem

    def last(self, buf: bytes) -> list[Range]:
        """The range from the last record end to the end of the input (no cut follows it: only that it
        decodes matters)."""
        try:
            buf.decode(self.check_encoding)
        except UnicodeDecodeError:
            raise _Problem from None
        first = self.header == 0
        records = 0 if first or not buf.strip(b"\r") else 1  # (for the plan; a lone \r may end more)
        return [self._range(buf, 0, len(buf), records, first)]

    def _range(self, buf: bytes, start: int, stop: int, records: int, first: bool) -> Range:
        """The range of ``buf[start:stop]``, which starts at the cutting state's place (with its bytes
        when the input is a stream)."""
        data = bytes(buf[start:stop]) if self.path is None else None
        return Range(self.path, self.offset, stop - start, self.line, self.index, records, first, data=data,
                     header=self.header, head=self.head)


def iter_csv_range(rng: Range, name: str, encoding: str, delimiter: str) -> Iterator[tuple[Any, Location]]:
    """The records of one range of a CSV file, exactly as :func:`~kodolly.io.readers.read_records` yields them."""
    lim = limits_mod.current()
    data = io.BytesIO(rng.read())
    if rng.first:
        yield from read_csv(data, encoding, name, delimiter, lim)
        return
    if rng.head is not None:
        header = csv_header(rng.head.decode(encoding), delimiter)
    else:
        with open(rng.path, "rb") as fh:
            header = csv_header(fh.read(rng.header).decode(encoding), delimiter)
    rest = "utf-8" if encoding == "utf-8-sig" else encoding  # only the input's first bytes may be its BOM
    yield from read_csv(data, rest, name, delimiter, lim, fieldnames=header, line=rng.line, index=rng.index)
