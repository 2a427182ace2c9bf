"""The planner: every input of a run cut into :class:`Shard` s, in order, before they are converted.

- a JSON Lines input (``.jsonl``/``.ndjson``, or ``.json`` holding JSON Lines; UTF-8 or cp949): byte
  ranges ending at line ends (:mod:`.jsonl`), of about ``shard_bytes`` and at most ``max_records``
  lines; the driver reads the input once to cut it (and hashes it for the manifest);
- a CSV/TSV input (UTF-8 or cp949; a plain file, or a zip member or gzip whose ranges carry their
  bytes): byte ranges ending at record ends (:mod:`.csv_ranges`; a
  newline inside quotes is no record end), of about ``shard_bytes`` and at most ``max_records``
  records; where the file has something that could make the ranges read differently from one
  sequential read, the rest of it is one ``input`` shard that reads it sequentially from its start
  and skips the records before (``Shard.skip``);
- a UTF-8 JSON array or envelope whose record key is in its head (``readers.item_paths``): item
  ranges of about ``shard_bytes`` (:mod:`kodolly.io.json_items`). A plain file is scanned by the driver
  and each range re-read by its worker; a zip member (of a split set too) or a gzip file is read once
  by the driver, or by a reader process (:mod:`.member_reader`, with worker processes), which hands each
  range its bytes or a file of them (no worker inflates it again, none holds it whole);
- any other input (UTF-16 or cp949 JSON, an empty file) -- a file, a zip member, a member of a
  split-zip set -- is one shard, read whole by whoever converts it;
- a parquet / Arrow file (a plain file, not a zip member or gzip): row ranges made of whole parquet
  row groups / Arrow record batches (:func:`kodolly.io.tables.row_groups`), of about ``shard_bytes``
  of the file and at most ``max_records`` rows (a single piece bigger than that stays one shard);
  the driver reads the file once through ``Input.open`` to hash it. Other columnar inputs are one shard;
- a group whose converter combines records from what it kept (``Converter.finish``) cannot be split:
  all its inputs are one shard, converted on the driver; a converter that combines them by reading
  the group's records again (``Converter.combine``, e.g. hansol ``join_pairs``) has its inputs cut
  as any other's, and one more shard after them (``combine``) makes the combined items.

Shards are numbered in plan order (``Shard.seq``): input ordinal first, then where the shard starts in
the input. That number is the first part of every row's and reject's position (see :mod:`.chunks`).
The planner is a generator: the engine pulls shards as it has room, so a big input is cut while the
first shards are already being converted; the plan is recorded in the manifest (:meth:`Shard.describe`).
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
import dataclasses
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterator, Sequence

from ..errors import DecompressionBombError, InputError
from ..io import limits
from ..io import json_items, tables
from ..io.readers import item_paths, sniff
from ..io.sources import Input
from .csv_ranges import Tail, csv_splittable, cut_csv_ranges
from .jsonl import CHUNK_BYTES, Range, cut_ranges, splittable

RANGE = "range"  # a byte range of a JSON Lines input
CSV = "csv"  # a byte range of a CSV input (whole records)
INPUT = "input"  # one whole input
GROUP = "group"  # every input of a group whose converter cannot be split (finish)
ITEMS = "items"  # a range of items of a JSON array (top-level, or an envelope's record array)
ROWS = "rows"  # a range of rows (whole row groups / record batches) of a parquet or Arrow file
COMBINE = "combine"  # the items a group's converter makes from several records (Converter.combine)


@dataclass(frozen=True)
class Shard:
    """One piece of work: convert this part of the input into one :class:`~kodolly.corridor.Chunk`.

    ``group`` is the input group's number in the run spec, ``input`` the input's ordinal in the run
    (its place in the list of all inputs of all groups) and ``member`` its place in its group's list.
    ``range`` is set for a ``range`` or ``csv`` shard; an ``input`` shard with ``skip`` converts the
    input's records from that index on (the rest of a CSV input whose cutting stopped).
    ``local`` shards are converted on the driver.
    Shards pickle (no open files): a worker process re-opens the input by group and member.
    """

    seq: int
    kind: str
    group: int
    input: int
    member: int
    name: str
    encoding: str = ""
    range: Range | None = None
    local: bool = False
    items: Any = None  # json_items.ItemRange of an ``items`` shard
    path: str | None = None  # the plain file an ``items`` shard re-reads
    rows: tuple[int, int] | None = None  # (start, stop) rows of a ``rows`` shard
    skip: int = 0  # an ``input`` shard: the records before this index are another shard's
    # an ``items`` shard: the offsets from its start of the commas between its items (json_items.PlannedRange;
    # ``plain``: no item over the limits) and, for a stream that cannot be re-read at an offset (a zip
    # member, gzip), its bytes (json_items.RangeBytes). With neither ``data`` nor ``path`` it is the rest of the input from
    # ``items.start`` on (``items.first_index`` = the index of its first item), read again by the worker.
    data: bytes | None = field(default=None, repr=False, compare=False)
    seps: Any = field(default=None, repr=False, compare=False)
    plain: bool = False
    spooled: bool = False  # an ``items`` shard whose ``path`` is a file of the range's bytes alone (member_reader)
    rest: bool = False  # an ``items`` shard that is the rest of its input, read again by the worker from ``items.start``

    def describe(self) -> dict[str, Any]:
        """The shard as the manifest records it."""
        out: dict[str, Any] = {"seq": self.seq, "kind": self.kind, "group": self.group, "input": self.name}
        if self.range is not None:
            r = self.range
            out.update(offset=r.offset, bytes=r.length, first_line=r.line, first_record=r.index, records=r.records)
        if self.items is not None:
            i = self.items
            if self.rest:
                out.update(offset=i.start, first_record=i.first_index, rest=True)
            else:
                out.update(offset=i.start, bytes=i.end - i.start, first_record=i.first_index, records=i.count)
        if self.rows is not None:
            out.update(first_record=self.rows[0], records=self.rows[1] - self.rows[0])
        if self.skip:
            out.update(first_record=self.skip)
        return out

    def without_bytes(self) -> "Shard":
        """The shard as a driver keeps it once its bytes went with its task (a range of a gzip or zip
        member): the same description and label, no bytes held for the rest of the run."""
        if self.range is not None and self.range.data is not None:
            return dataclasses.replace(self, range=dataclasses.replace(self.range, data=None))
        if self.data is not None:
            return dataclasses.replace(self, data=None, seps=None)
        return self

    def open_range(self) -> BinaryIO:
        """A binary stream at the start of an ``items`` shard's range: over its own bytes (a range of a
        zip member or gzip file), its spooled file (the same, spooled by a reader process), else its plain
        file opened at the range's offset."""
        if self.data is not None:
            return io.BytesIO(self.data)
        fh = open(self.path, "rb")
        if not self.spooled:
            fh.seek(self.items.start)
        return fh

    def range_bytes(self) -> bytes:
        """The bytes of an ``items`` shard's range (see :meth:`open_range`)."""
        if self.data is not None:
            return self.data
        with self.open_range() as fh:
            return fh.read(self.items.end - self.items.start)

    def label(self) -> str:
        """``NAME shard SEQ (...)`` for messages."""
        where = ""
        if self.range is not None:
            where = f" (bytes {self.range.offset}..{self.range.offset + self.range.length}, from line {self.range.line})"
        elif self.items is not None and self.rest:
            where = f" (from byte {self.items.start}, item {self.items.first_index} on)"
        elif self.items is not None:
            where = f" (bytes {self.items.start}..{self.items.end}, items {self.items.first_index}..{self.items.first_index + self.items.count - 1})"
        elif self.rows is not None:
            where = f" (rows {self.rows[0]}..{self.rows[1] - 1})"
        elif self.skip:
            where = f" (from record {self.skip})"
        return f"{self.name}: shard {self.seq}{where}"


def plan_shards(
    groups: Sequence[tuple[Any, Sequence[Input]]],
    *,
    shard_bytes: int | None = None,
    max_records: int | None = None,
    reader: Any = None,
) -> Iterator[Shard]:
    """The shards of a run, in order. ``groups`` is ``(converter, inputs)`` per input group. ``reader``
    (a :class:`~kodolly.corridor.member_reader.MemberReader`): stream inputs' item ranges are planned
    by reader processes instead of here."""
    seq = 0
    ordinal = 0
    for g, (conv, inputs) in enumerate(groups):
        if conv.finish is not None:
            yield Shard(seq, GROUP, g, ordinal, 0, inputs[0].name if len(inputs) == 1 else f"{len(inputs)} inputs of group {g}", local=True)
            seq += 1
            ordinal += len(inputs)
            continue
        first = ordinal
        for member, inp in enumerate(inputs):
            for shard in _input_shards(inp, seq, g, ordinal, member, shard_bytes, max_records, conv.record_paths, reader):
                yield shard
                seq += 1
            ordinal += 1
        if conv.combine is not None:
            yield Shard(seq, COMBINE, g, first, 0, inputs[0].name if len(inputs) == 1 else f"{len(inputs)} inputs of group {g}")
            seq += 1


def _input_shards(inp: Input, seq: int, g: int, ordinal: int, member: int, shard_bytes, max_records, record_paths=(),
                  reader: Any = None) -> Iterator[Shard]:
    """The shards of one input (the driver reads a JSON Lines input or a JSON array once, to cut it)."""
    planned = _plan_input(inp, seq, g, ordinal, member, shard_bytes, max_records, record_paths, reader)
    while True:
        try:
            shard = next(planned, None)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:  # a corrupt member or gzip stream
            raise InputError(f"{inp.name}: cannot be read ({exc})") from exc
        if shard is None:
            return
        yield shard


def _plan_input(inp: Input, seq: int, g: int, ordinal: int, member: int, shard_bytes, max_records, record_paths=(),
                reader: Any = None) -> Iterator[Shard]:
    if tables.is_columnar(inp):
        yield from _table_shards(inp, seq, g, ordinal, member, shard_bytes, max_records)
        return
    found = sniff(inp)
    encoding = found.encoding if not found.empty else ""
    paths = item_paths(inp, found, record_paths)
    if paths is not None and os.path.isfile(inp.name) and not inp.compressed:  # a plain UTF-8 JSON array or envelope: item ranges (json_items)
        stream = inp.open()  # read once here, hashed for the manifest
        try:
            lim = limits.current()
            item_limits = json_items.Limits(lim.max_depth, lim.max_record_bytes, lim.head_bytes)
            ranges = list(json_items.plan_ranges(stream, paths, shard_bytes or CHUNK_BYTES, item_limits))
            while stream.read(1 << 20):  # the hash covers the whole file
                pass
        finally:
            stream.close()
        if ranges:
            for k, part in enumerate(ranges):
                yield Shard(seq + k, ITEMS, g, ordinal, member, inp.name, encoding, items=part.range, path=inp.name,
                            seps=part.seps, plain=part.plain)
            return
    elif paths is not None:  # the same in a zip member or gzip: ranges with their bytes
        planned = 0
        plan = stream_item_shards if reader is None else reader.shards
        for shard in plan(inp, paths, seq, g, ordinal, member, encoding, shard_bytes or CHUNK_BYTES):
            yield shard
            planned += 1
        if planned:
            return
    if not found.empty and inp.rejected is None and csv_splittable(inp, encoding):
        yield from _csv_shards(inp, seq, g, ordinal, member, shard_bytes, max_records, encoding)
        return
    if found.empty or not splittable(inp, found.data_head, encoding):
        yield Shard(seq, INPUT, g, ordinal, member, inp.name, encoding)
        return
    stream = inp.open()
    try:
        ranges = cut_ranges(inp, stream, max_bytes=shard_bytes, max_lines=max_records, encoding=encoding)
        stream = None
        for k, rng in enumerate(ranges):
            yield Shard(seq + k, RANGE, g, ordinal, member, inp.name, encoding, rng)
    finally:
        if stream is not None:
            stream.close()


def stream_item_shards(inp: Input, paths, seq: int, g: int, ordinal: int, member: int, encoding: str,
                        target: int) -> Iterator[Shard]:
    """Item ranges of a JSON array or envelope read as a stream (a zip member, a gzip file), each with its
    bytes (``json_items.plan_range_bytes``): read once here (and hashed), so no worker inflates it again
    and none holds it whole. Where the plan cannot go on -- an item over the record limit (it would be
    buffered whole here) or a stream stopped by the decompression budget -- the rest of the input, from
    the first item not planned, is one shard that the worker reads again as the record path reads it.
    Nothing planned (no item, or that happens in the first range): no shard (the caller makes the input
    one shard)."""
    lim = limits.current()
    item_limits = json_items.Limits(lim.max_depth, lim.max_record_bytes, lim.head_bytes)
    stream = inp.open()
    k = 0
    last = None
    try:
        planned = json_items.plan_range_bytes(stream, paths, target, item_limits, cap=target + lim.max_record_bytes + 2 * json_items.BLOCK_BYTES)
        while True:
            try:
                part = next(planned, None)
            except (DecompressionBombError, json_items.RangeTooLarge):
                if last is not None:  # the rest, from the item after the last range planned
                    yield Shard(seq + k, ITEMS, g, ordinal, member, inp.name, encoding,
                                items=json_items.ItemRange(last.end + 1, last.end + 1, last.first_index + last.count, 0), rest=True)
                return
            if part is None:
                break
            yield Shard(seq + k, ITEMS, g, ordinal, member, inp.name, encoding, items=part.range,
                        data=part.data, seps=part.seps, plain=part.plain)
            k += 1
            last = part.range
        try:
            while stream.read(1 << 20):  # the hash covers the whole input
                pass
        except DecompressionBombError:  # past the records (a whole read stops before it too)
            pass
    finally:
        stream.close()


def _csv_shards(inp: Input, seq: int, g: int, ordinal: int, member: int, shard_bytes, max_records, encoding: str) -> Iterator[Shard]:
    """A CSV input: ``csv`` shards, and where the cutting stopped an ``input`` shard for the rest."""
    for k, piece in enumerate(cut_csv_ranges(inp, inp.open(), max_bytes=shard_bytes, max_records=max_records, encoding=encoding)):
        if isinstance(piece, Tail):
            yield Shard(seq + k, INPUT, g, ordinal, member, inp.name, encoding, skip=piece.index)
        else:
            yield Shard(seq + k, CSV, g, ordinal, member, inp.name, encoding, piece)


def _table_shards(inp: Input, seq: int, g: int, ordinal: int, member: int, shard_bytes, max_records) -> Iterator[Shard]:
    """A parquet / Arrow input: ``rows`` shards of whole pieces (one ``input`` shard when it is not a
    plain file, was rejected whole, or is one piece)."""
    if inp.rejected is not None or not tables.local_file(inp):
        yield Shard(seq, INPUT, g, ordinal, member, inp.name)
        return
    tables.hash_pass(inp)  # size and hash for the manifest (and a Git-LFS pointer stops here)
    pieces = tables.row_groups(inp)
    total = pieces[-1][1] if pieces else 0
    if len(pieces) < 2 or not total:
        yield Shard(seq, INPUT, g, ordinal, member, inp.name)
        return
    per_shard = max(1, (shard_bytes or CHUNK_BYTES) * total // max(inp.bytes_read, 1))
    if max_records:
        per_shard = min(per_shard, max_records)
    k, start, stop = 0, pieces[0][0], pieces[0][0]
    for lo, hi in pieces:
        if stop > start and hi - start > per_shard:
            yield Shard(seq + k, ROWS, g, ordinal, member, inp.name, rows=(start, stop), path=inp.name)
            k, start = k + 1, lo
        stop = hi
    yield Shard(seq + k, ROWS, g, ordinal, member, inp.name, rows=(start, stop), path=inp.name)
