"""Read records out of inputs: JSON arrays (streamed), JSON envelopes, JSONL and CSV, in any encoding.

A reader yields ``(record, Location)``. A record that cannot be parsed is yielded as a
:class:`BadRecord` with a reason (``bad_json``, ``bad_encoding``, ``empty_file``) so the pipeline
rejects it instead of losing it. Run-level problems (a Git-LFS pointer, an unreadable archive)
raise from :mod:`kodolly.errors`.

JSON arrays and envelopes are streamed with ijson (C backend): a multi-GB file is never loaded
whole. JSONL lines are parsed with orjson.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator, Sequence

import ijson
import orjson

from . import tables
from .sources import Input

csv.field_size_limit(1 << 30)

SNIFF_BYTES = 1 << 16


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
    if _decodes(head, "utf-8"):
        return "utf-8"
    if _decodes(head, "cp949"):
        return "cp949"
    # A damaged file: take the encoding that decodes most of it; bad lines are rejected later.
    damaged_utf8 = head.decode("utf-8", errors="replace").count("\ufffd")
    damaged_cp949 = head.decode("cp949", errors="replace").count("\ufffd")
    return "utf-8" if damaged_utf8 <= damaged_cp949 else "cp949"


def _decodes(data: bytes, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        decoder.decode(data, final=False)  # a character cut at the end of the sample is fine
        return True
    except UnicodeDecodeError:
        return False


class _Utf8Recoder(io.RawIOBase):
    """Re-encode a text stream in another encoding as UTF-8 bytes (for ijson)."""

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


def read_records(inp: Input, record_paths: Sequence[str] = ()) -> Iterator[tuple[Any, Location]]:
    """Yield every record of one input.

    ``record_paths`` are ijson prefixes (``"data.item"``, ``"data_info.item"``) naming where the
    records sit inside a JSON object envelope; the first one present in the file is used. Top-level
    arrays are always streamed item by item, whatever the paths say. Parquet, Arrow and Feather
    inputs are read row by row by :mod:`kodolly.io.tables`.
    """
    if inp.rejected is not None:  # rejected whole without being read (e.g. no converter fits it)
        reason, detail = inp.rejected
        yield BadRecord(reason, "", detail), Location(inp.name, 0)
        return
    if tables.is_columnar(inp):
        yield from tables.read_table_records(inp)
        return
    stream = inp.open()
    try:
        head = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]
        if not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
            yield BadRecord("empty_file", ""), Location(inp.name, 0)
            return
        encoding = detect_encoding(head)
        suffix = inp.suffix
        if suffix in (".csv", ".tsv"):
            yield from _read_csv(stream, encoding, inp.name, "\t" if suffix == ".tsv" else ",")
        elif suffix in (".jsonl", ".ndjson"):
            yield from _read_jsonl(stream, encoding, inp.name)
        else:
            yield from _read_json(stream, head, encoding, inp.name, record_paths)
    finally:
        stream.close()


def _line_text(raw: bytes, encoding: str) -> str:
    return raw.decode(encoding, errors="replace")


def _read_jsonl(stream: BinaryIO, encoding: str, name: str) -> Iterator[tuple[Any, Location]]:
    index = 0
    utf8 = encoding in ("utf-8", "utf-8-sig")
    if encoding.startswith("utf-16"):
        lines: Iterator[bytes] = (line.encode("utf-8") for line in codecs.getreader(encoding)(stream))
        utf8 = True
    else:
        lines = iter(stream)
    for line_no, raw in enumerate(lines, start=1):
        if line_no == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[3:]
        if not raw.strip():
            continue
        loc = Location(name, index, line_no)
        index += 1
        yield parse_jsonl_line(raw, encoding, utf8), loc


def parse_jsonl_line(raw: bytes, encoding: str, utf8: bool) -> Any:
    """One JSON Lines line as its record, or the :class:`BadRecord` that says why it is not one."""
    try:
        return orjson.loads(raw) if utf8 else orjson.loads(raw.decode(encoding))
    except UnicodeDecodeError as exc:
        return BadRecord("bad_encoding", _line_text(raw, encoding).rstrip("\r\n"), str(exc))
    except orjson.JSONDecodeError as exc:
        reason = "bad_encoding" if "UTF-8" in str(exc) else "bad_json"
        return BadRecord(reason, _line_text(raw, encoding).rstrip("\r\n"), str(exc))




def _looks_like_jsonl(head: bytes) -> bool:
    """A ``.json`` file that is really JSON Lines: a complete object on its first line, another after."""
    first, sep, rest = head.lstrip().partition(b"\n")
    if not sep or not rest.lstrip().startswith(b"{"):
        return False
    try:
        return isinstance(orjson.loads(first), dict)
    except orjson.JSONDecodeError:
        return False


looks_like_jsonl = _looks_like_jsonl  # the public name (kodolly.detection)


def _read_json(
    stream: BinaryIO, head: bytes, encoding: str, name: str, record_paths: Sequence[str]
) -> Iterator[tuple[Any, Location]]:
    text_head = head.decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    first = text_head[:1]
    if first == "{" and _looks_like_jsonl(head.lstrip(codecs.BOM_UTF8)):
        yield from _read_jsonl(stream, encoding, name)
        return
    byte_stream: BinaryIO = stream
    if encoding not in ("utf-8", "utf-8-sig", "ascii"):
        byte_stream = io.BufferedReader(_Utf8Recoder(stream, encoding), buffer_size=1 << 20)
    elif head.startswith(codecs.BOM_UTF8):
        stream.read(3)
    if first == "[":
        prefix: str | None = "item"
    elif first == "{":
        prefix = _pick_prefix(text_head, record_paths, head)
    else:
        yield BadRecord("bad_json", text_head[:200], "not a JSON array or object"), Location(name, 0)
        return
    if prefix is None:  # a single object that is itself the record
        data = byte_stream.read()
        try:
            yield orjson.loads(data), Location(name, 0)
        except orjson.JSONDecodeError as exc:
            yield BadRecord("bad_json", data[:2000].decode("utf-8", "replace"), str(exc)), Location(name, 0)
        return
    if prefix == "":
        # The envelope key is not in the file's head: stream every candidate record path at once.
        records: Iterator[Any] = _items_at_any(byte_stream, frozenset(record_paths))
    else:
        records = ijson.items(byte_stream, prefix, use_float=True)
    index = 0
    try:
        for record in records:
            yield record, Location(name, index)
            index += 1
    except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError) as exc:
        # Everything from the failing item to the end of the file is unreadable: one reject says so.
        yield BadRecord("bad_json", "", f"unreadable from record {index} on: {exc}"), Location(name, index)
        return
    if index == 0 and first == "{":
        # An envelope with no records where the converter looks for them: say so rather than vanish.
        where = " or ".join(p.replace(".item", "[]") for p in record_paths)
        yield BadRecord("no_records", text_head[:200], f"no records at {where}"), Location(name, 0)


def _items_at_any(byte_stream: BinaryIO, prefixes: frozenset[str]) -> Iterator[Any]:
    """Like ``ijson.items`` for several prefixes at once (slower; only used when the head does not tell)."""
    events = ijson.parse(byte_stream, use_float=True)
    for current, event, value in events:
        if current not in prefixes:
            continue
        if event not in ("start_map", "start_array"):
            yield value
            continue
        builder = ijson.ObjectBuilder()
        depth = 1
        while depth:
            builder.event(event, value)
            current, event, value = next(events)
            if event in ("start_map", "start_array"):
                depth += 1
            elif event in ("end_map", "end_array"):
                depth -= 1
        yield builder.value


def _pick_prefix(text_head: str, record_paths: Sequence[str], head: bytes = b"") -> str | None:
    if not record_paths:
        return None
    for path in record_paths:
        key = path.split(".", 1)[0]
        if re.search(r'"' + re.escape(key) + r'"\s*:', text_head):
            return path
    if _whole_object(head):
        return None  # a small file that is one object without the envelope: the object is the record
    return ""  # not decidable from the head: look at every record path while streaming


def _whole_object(head: bytes) -> bool:
    """True when ``head`` is a complete JSON object (the whole of a small file)."""
    if len(head) >= SNIFF_BYTES:
        return False
    try:
        return isinstance(orjson.loads(head.removeprefix(codecs.BOM_UTF8)), dict)
    except orjson.JSONDecodeError:
        return False


def _read_csv(stream: BinaryIO, encoding: str, name: str, delimiter: str) -> Iterator[tuple[Any, Location]]:
    text = io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline="")
    reader = csv.DictReader(text, delimiter=delimiter)
    index = 0
    try:
        if reader.fieldnames:
            reader.fieldnames = [f.lstrip("\ufeff").strip() for f in reader.fieldnames]
        previous_end = reader.line_num
        for row in reader:
            # A quoted field may span lines: the row's line is where it starts, not where it ends.
            loc = Location(name, index, previous_end + 1)
            previous_end = reader.line_num
            index += 1
            extra = row.pop(None, None)  # type: ignore[call-overload]
            if extra is not None or None in row.values():
                yield BadRecord("bad_csv_row", orjson.dumps(row).decode(), "wrong number of columns"), loc
                continue
            yield row, loc
    except UnicodeDecodeError as exc:
        yield BadRecord("bad_encoding", "", f"undecodable from here on as {encoding}: {exc}"), Location(name, index, reader.line_num + 1)
    except csv.Error as exc:
        yield BadRecord("bad_csv", "", str(exc)), Location(name, index, reader.line_num)
