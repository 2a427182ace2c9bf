"""Read records out of inputs: JSON arrays (streamed), JSON envelopes, JSONL and CSV, in any encoding.

A reader yields ``(record, Location)``. A record that cannot be parsed is yielded as a
:class:`BadRecord` with a reason (``bad_json``, ``bad_encoding``, ``empty_file``, ``too_deep``,
``record_too_large``, ``decompression_bomb``) so the pipeline rejects it instead of losing it.
Run-level problems (a Git-LFS pointer, an unreadable archive) raise from :mod:`kodolly.errors`.

JSON arrays and envelopes are cut into items by :mod:`kodolly.io.json_items` (never parsed whole)
and each item is parsed with orjson, as JSONL lines are: a bad item is one reject and the next item
is read. Every record, line and item is bounded by :mod:`kodolly.io.limits`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator, Sequence

import orjson

from ..errors import DecompressionBombError
from . import json_items, tables
from . import limits as limits_mod
from .sources import Input

SNIFF_BYTES = 1 << 16
BLANK = b" \t\r\n\x00"  # bytes that are no data: white space and NUL padding
_BLANK_OR_BOM = BLANK + b"\xef\xbb\xbf\xff\xfe"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a record came from: the input's name, its 0-based index there, its 1-based line if known."""

    file: str
    index: int
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else f"record {self.index}"
        return f"{self.file}: {where}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "index": self.index, "line": self.line}


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record the reader could not parse."""

    reason: str
    raw: str
    detail: str = ""


# --------------------------------------------------------------------------------------- encodings


def detect_encoding(head: bytes) -> str:
    """Guess the encoding of a file from its first bytes.

    UTF-8 with or without BOM, UTF-16 (BOM, or the NUL pattern of ASCII text without one) and
    cp949/EUC-KR (a superset of EUC-KR used by Korean Windows and Excel) are told apart.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 4:
        even_nuls = sample[0::2].count(0)
        odd_nuls = sample[1::2].count(0)
        half = len(sample) // 2
        if odd_nuls > half * 0.3 and even_nuls == 0:
            return "utf-16-le"
        if even_nuls > half * 0.3 and odd_nuls == 0:
            return "utf-16-be"
        korean16 = _korean_utf16(sample)
        if korean16:
            return korean16
    if _decodes(head, "utf-8"):
        return "utf-8"
    if _decodes(head, "cp949"):
        return "cp949"
    # A damaged file: take the encoding that decodes most of it; bad lines are rejected later.
    damaged_utf8 = head.decode("utf-8", errors="replace").count("\ufffd")
    damaged_cp949 = head.decode("cp949", errors="replace").count("\ufffd")
    return "utf-8" if damaged_utf8 <= damaged_cp949 else "cp949"


def _korean_utf16(sample: bytes) -> str | None:
    """UTF-16 without a BOM holding mostly Korean: every other byte is a Hangul syllable's high byte
    (0xAC-0xD7), a jamo's (0x11, 0x31) or 0 (ASCII). cp949 and UTF-8 never look like that."""
    for encoding, highs in (("utf-16-le", sample[1::2]), ("utf-16-be", sample[0::2])):
        if len(highs) < 8:
            continue
        hangul = sum(highs.count(bytes([b])) for b in range(0xAC, 0xD8))
        other = highs.count(0) + highs.count(0x11) + highs.count(0x31)
        if hangul >= 0.2 * len(highs) and hangul + other >= 0.95 * len(highs) and _decodes(sample[: len(sample) & ~1], encoding):
            return encoding
    return None


def _decodes(data: bytes, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        decoder.decode(data, final=False)  # a character cut at the end of the sample is fine
        return True
    except UnicodeDecodeError:
        return False


class _Utf8Recoder(io.RawIOBase):
    """Re-encode a text stream in another encoding as UTF-8 bytes (for the JSON item splitter)."""

    def __init__(self, stream: BinaryIO, encoding: str) -> None:
        self._text = codecs.getreader(encoding)(stream)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = self._text.read(1 << 16)
            if not chunk:
                return 0
            self._pending = chunk.encode("utf-8")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


# --------------------------------------------------------------------------------------- formats


@dataclass(frozen=True, slots=True)
class Sniff:
    """What the first bytes of an input say: ``head`` (its first 64 KiB), ``data_head`` (64 KiB from
    its first byte of data, after any blank or NUL padding), ``empty`` (no data byte at all)."""

    head: bytes
    data_head: bytes
    empty: bool

    @property
    def encoding(self) -> str:
        return detect_encoding(self.data_head if self.data_head else self.head)


def sniff(inp: Input) -> Sniff:
    """Look at an input's first bytes; never decides it is empty while a data byte follows.

    The common case reads 64 KiB. When they are all blank (white space, NULs, BOM bytes) the input
    is read on (in bounded blocks) to its first data byte; only an input with none is empty.
    """
    stream = inp.open()
    try:
        head = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]
        if head.strip(_BLANK_OR_BOM):
            return Sniff(head, head, False)
        offset = 0
        while True:
            block = stream.read(1 << 20)
            if not block:
                return Sniff(head, b"", True)
            rest = block.lstrip(_BLANK_OR_BOM)
            if rest:
                skip = offset + len(block) - len(rest)
                data_head = (rest + stream.read(SNIFF_BYTES))[:SNIFF_BYTES]
                if skip % 2:  # keep UTF-16 code units aligned
                    data_head = (block[len(block) - len(rest) - 1 : len(block) - len(rest)] + data_head)[:SNIFF_BYTES]
                return Sniff(head, data_head, False)
            offset += len(block)
    finally:
        stream.close()


def read_records(inp: Input, record_paths: Sequence[str] = ()) -> Iterator[tuple[Any, Location]]:
    """Yield every record of one input.

    ``record_paths`` are reader paths (``"data.item"``, ``"data_info.item"``, ``"a.b.item"``) naming
    where the records sit inside a JSON object envelope. Top-level arrays are always read item by
    item, whatever the paths say. A compressed input stopped by the bomb guard ends with one
    ``decompression_bomb`` reject; the records before it are kept. Parquet, Arrow and Feather
    inputs are read row by row by :mod:`kodolly.io.tables`.
    """
    if inp.rejected is not None:  # rejected whole without being read (e.g. no converter fits it)
        reason, detail = inp.rejected
        yield BadRecord(reason, "", detail), Location(inp.name, 0)
        return
    if tables.is_columnar(inp):
        yield from tables.read_table_records(inp)
        return
    found = sniff(inp)
    if found.empty:
        yield BadRecord("empty_file", ""), Location(inp.name, 0)
        return
    lim = limits_mod.current()
    stream = inp.open()
    index = 0
    try:
        encoding = found.encoding
        suffix = inp.suffix
        if suffix in CSV_DELIMITERS:
            records = read_csv(stream, encoding, inp.name, CSV_DELIMITERS[suffix], lim)
        elif suffix in (".jsonl", ".ndjson"):
            records = _read_jsonl(stream, encoding, inp.name, lim)
        else:
            records = _read_json(stream, found, encoding, inp.name, record_paths, lim)
        last_line = None
        try:
            for record, loc in records:
                index = loc.index + 1
                last_line = loc.line
                yield record, loc
        except DecompressionBombError as exc:
            yield BadRecord("decompression_bomb", "", str(exc)), Location(inp.name, index, None if last_line is None else last_line + 1)
    finally:
        stream.close()


def _line_text(raw: bytes, encoding: str) -> str:
    return raw.decode(encoding, errors="replace")


@dataclass(frozen=True, slots=True)
class LongLine:
    """A line over ``max_record_bytes``: its first bytes and its length (the rest was skipped)."""

    head: bytes
    length: int


def bounded_lines(stream: BinaryIO, lim: limits_mod.Limits) -> Iterator[bytes | LongLine]:
    """The lines of a stream (with their newline), none buffered beyond ``lim.max_record_bytes``."""
    cap = lim.max_record_bytes
    while True:
        line = stream.readline(cap + 1)
        if not line:
            return
        if len(line) <= cap or line.endswith(b"\n"):
            yield line
            continue
        head, length = line[: lim.head_bytes], len(line)
        while not line.endswith(b"\n"):
            line = stream.readline(1 << 20)
            if not line:
                break
            length += len(line)
        yield LongLine(head, length)


def _head_text(head: bytes, encoding: str) -> str:
    """The start of an over-limit record as text (a character cut at the end is dropped)."""
    return codecs.getincrementaldecoder(encoding)(errors="replace").decode(head.strip(BLANK), final=False)


def too_large(head: bytes, length: int, lim: limits_mod.Limits, encoding: str = "utf-8") -> BadRecord:
    return BadRecord("record_too_large", _head_text(head[: lim.head_bytes], encoding), f"{length:,} bytes, over the limit of {lim.max_record_bytes:,} (--max-record-mb)")


def too_deep(raw: bytes, lim: limits_mod.Limits, encoding: str = "utf-8") -> BadRecord:
    return BadRecord("too_deep", _head_text(raw[: lim.head_bytes], encoding), f"nested deeper than {lim.max_depth} levels (--max-depth)")


def _read_jsonl(stream: BinaryIO, encoding: str, name: str, lim: limits_mod.Limits) -> Iterator[tuple[Any, Location]]:
    index = 0
    utf8 = encoding in ("utf-8", "utf-8-sig")
    if encoding.startswith("utf-16"):
        stream = io.BufferedReader(_Utf8Recoder(stream, encoding), buffer_size=1 << 20)  # type: ignore[assignment]
        utf8, encoding = True, "utf-8"
    for line_no, raw in enumerate(bounded_lines(stream, lim), start=1):
        if isinstance(raw, LongLine):
            yield too_large(raw.head, raw.length, lim, encoding), Location(name, index, line_no)
            index += 1
            continue
        if line_no == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[3:]
        if not raw.strip(BLANK):
            continue
        loc = Location(name, index, line_no)
        index += 1
        yield parse_jsonl_line(raw, encoding, utf8, lim), loc


def parse_jsonl_line(raw: bytes, encoding: str, utf8: bool, lim: limits_mod.Limits | None = None) -> Any:
    """One JSON Lines line as its record, or the :class:`BadRecord` that says why it is not one."""
    lim = lim or limits_mod.current()
    if json_items.check_depth(raw, lim.max_depth):
        return too_deep(raw, lim, encoding)
    try:
        return orjson.loads(raw) if utf8 else orjson.loads(raw.decode(encoding))
    except UnicodeDecodeError as exc:
        return BadRecord("bad_encoding", _line_text(raw, encoding).rstrip("\r\n"), str(exc))
    except orjson.JSONDecodeError as exc:
        stripped = raw.strip(BLANK)
        if stripped != raw.strip():  # NUL padding around a record
            retry = parse_jsonl_line(stripped, encoding, utf8, lim)
            if not isinstance(retry, BadRecord):
                return retry
        reason = "bad_encoding" if "UTF-8" in str(exc) else "bad_json"
        return BadRecord(reason, _line_text(raw, encoding).rstrip("\r\n"), str(exc))


def looks_like_jsonl(head: bytes) -> bool:
    """A ``.json`` file that is really JSON Lines: a complete object on its first line, another after."""
    first, sep, rest = head.lstrip(BLANK).partition(b"\n")
    if not sep or not rest.lstrip(BLANK).startswith(b"{"):
        return False
    try:
        return isinstance(orjson.loads(first), dict)
    except orjson.JSONDecodeError:
        return False


def parse_item(item: json_items.Item, lim: limits_mod.Limits) -> Any:
    """One item of a JSON array as its record, or the :class:`BadRecord` that says why it is not one."""
    if item.too_large:
        return too_large(item.data, item.end - item.start, lim)
    if item.too_deep:
        return too_deep(item.data, lim)
    try:
        return orjson.loads(item.data)
    except orjson.JSONDecodeError as exc:
        reason = "bad_encoding" if "UTF-8" in str(exc) else "bad_json"
        return BadRecord(reason, item.data.strip(BLANK).decode("utf-8", "replace"), f"item {item.index}: {exc}")


def _read_json(
    stream: BinaryIO, found: Sniff, encoding: str, name: str, record_paths: Sequence[str], lim: limits_mod.Limits
) -> Iterator[tuple[Any, Location]]:
    head = found.data_head
    text_head = head.decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n\x00")
    first = text_head[:1]
    if first == "{" and looks_like_jsonl(head.lstrip(codecs.BOM_UTF8)):
        yield from _read_jsonl(stream, encoding, name, lim)
        return
    byte_stream: BinaryIO = stream
    if encoding not in ("utf-8", "utf-8-sig", "ascii"):
        byte_stream = io.BufferedReader(_Utf8Recoder(stream, encoding), buffer_size=1 << 20)
    elif found.head.startswith(codecs.BOM_UTF8):
        stream.read(3)
    if first == "[":
        paths: tuple[tuple[str, ...], ...] = ()
    elif first == "{":
        prefix = _pick_prefix(text_head, record_paths, head)
        if prefix is None:  # a single object that is itself the record
            yield _whole_record(byte_stream, lim), Location(name, 0)
            return
        paths = json_items.parse_record_paths([prefix] if prefix else record_paths)
    else:
        yield BadRecord("bad_json", text_head[:200], "not a JSON array or object"), Location(name, 0)
        return
    index = 0
    for item in json_items.iter_items(byte_stream, paths, json_items.Limits(lim.max_depth, lim.max_record_bytes, lim.head_bytes)):
        yield parse_item(item, lim), Location(name, item.index)
        index += 1
    if index == 0 and first == "{":
        # An envelope with no records where the converter looks for them: say so rather than vanish.
        where = " or ".join(p.replace(".item", "[]") for p in record_paths)
        yield BadRecord("no_records", text_head[:200], f"no records at {where}"), Location(name, 0)


def item_paths(inp: Input, found: Sniff, record_paths: Sequence[str]) -> tuple[tuple[str, ...], ...] | None:
    """The json_items record paths :func:`read_records` would split ``inp`` by, when it is a plain
    UTF-8 JSON array or an envelope whose record key is in its head (so its items may be read in
    ranges, exactly as a whole read gives them); ``None`` for anything else. (Used by the corridor's
    planner; the reading itself stays here and in :mod:`kodolly.io.json_items`.)"""
    if found.empty or inp.suffix != ".json" or found.encoding != "utf-8" or found.head[:1] in (b"\xef", b"\xff", b"\xfe"):
        return None
    head = found.data_head
    if found.head is not head and found.head != head:  # blank padding before the data: keep the whole read
        return None
    text_head = head.decode("utf-8", errors="ignore").lstrip(" \t\r\n")
    first = text_head[:1]
    if first == "[":
        return ()
    if first != "{" or looks_like_jsonl(head):
        return None
    prefix = _pick_prefix(text_head, record_paths, head)
    return json_items.parse_record_paths([prefix]) if prefix else None


def _whole_record(byte_stream: BinaryIO, lim: limits_mod.Limits) -> Any:
    data = byte_stream.read(lim.max_record_bytes + 1)
    if len(data) > lim.max_record_bytes:
        length = len(data)
        while True:
            more = byte_stream.read(1 << 20)
            if not more:
                break
            length += len(more)
        return too_large(data[: lim.head_bytes], length, lim)
    data = data.strip(BLANK)
    if json_items.check_depth(data, lim.max_depth):
        return too_deep(data, lim)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return BadRecord("bad_json", data[:2000].decode("utf-8", "replace"), str(exc))


def _pick_prefix(text_head: str, record_paths: Sequence[str], head: bytes = b"") -> str | None:
    if not record_paths:
        return None
    for path in record_paths:
        key = path.split(".", 1)[0]
        if re.search(r'"' + re.escape(key) + r'"\s*:', text_head):
            return path
    if _whole_object(head):
        return None  # a small file that is one object without the envelope: the object is the record
    return ""  # not decidable from the head: look at every record path while reading


def _whole_object(head: bytes) -> bool:
    """True when ``head`` is a complete JSON object (the whole of a small file)."""
    if len(head) >= SNIFF_BYTES:
        return False
    try:
        return isinstance(orjson.loads(head.removeprefix(codecs.BOM_UTF8).strip(BLANK)), dict)
    except orjson.JSONDecodeError:
        return False


CSV_DELIMITERS = {".csv": ",", ".tsv": "\t"}


def csv_header(text: str, delimiter: str) -> list[str]:
    """The column names of a CSV file's first record (``text``), as :func:`read_csv` uses them."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return [f.lstrip("\ufeff").strip() for f in next(reader, [])]


def read_csv(
    stream: BinaryIO, encoding: str, name: str, delimiter: str, lim: limits_mod.Limits, *,
    fieldnames: list[str] | None = None, line: int = 1, index: int = 0,
) -> Iterator[tuple[Any, Location]]:
    """The rows of a CSV stream as dicts. ``fieldnames`` given: the stream is a part of a file that
    starts at a record (``line``, ``index``: where; the header is not in it), read as the whole file's
    read reads that part."""
    csv.field_size_limit(lim.max_record_bytes)
    text = io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline="")
    reader = csv.DictReader(text, fieldnames=fieldnames, delimiter=delimiter)
    before = line - 1  # lines before the stream
    try:
        if fieldnames is None and reader.fieldnames:
            reader.fieldnames = [f.lstrip("\ufeff").strip() for f in reader.fieldnames]
        previous_end = before + reader.line_num
        for row in reader:
            # A quoted field may span lines: the row's line is where it starts, not where it ends.
            loc = Location(name, index, previous_end + 1)
            previous_end = before + reader.line_num
            index += 1
            extra = row.pop(None, None)  # type: ignore[call-overload]
            if extra is not None or None in row.values():
                yield BadRecord("bad_csv_row", orjson.dumps(row).decode(), "wrong number of columns"), loc
                continue
            yield row, loc
    except UnicodeDecodeError as exc:
        yield BadRecord("bad_encoding", "", f"undecodable from here on as {encoding}: {exc}"), Location(name, index, before + reader.line_num + 1)
    except csv.Error as exc:
        yield BadRecord("bad_csv", "", str(exc)), Location(name, index, before + reader.line_num)
