"""The planner: every input of a run cut into :class:`Shard` s, in order, before they are converted.

- a JSON Lines input (``.jsonl``/``.ndjson``, or ``.json`` holding JSON Lines; UTF-8 or cp949): byte
  ranges ending at line ends (:mod:`.jsonl`), of about ``shard_bytes`` and at most ``max_records``
  lines; the driver reads the input once to cut it (and hashes it for the manifest);
- any other input (a JSON array or envelope, CSV, UTF-16, an empty file) -- a file, a zip member,
  a member of a split-zip set -- is one shard, read whole by whoever converts it;
- a group whose converter combines records (``Converter.finish``, e.g. hansol ``join_pairs``)
  cannot be split: all its inputs are one shard, converted on the driver.

Shards are numbered in plan order (``Shard.seq``): input ordinal first, then where the shard starts in
the input. That number is the first part of every row's and reject's position (see :mod:`.chunks`).
The planner is a generator: the engine pulls shards as it has room, so a big input is cut while the
first shards are already being converted; the plan is recorded in the manifest (:meth:`Shard.describe`).
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from ..errors import InputError
from ..io import json_items
from ..io.readers import item_paths, sniff
from ..io.sources import Input
from .jsonl import CHUNK_BYTES, Range, cut_ranges, splittable

RANGE = "range"  # a byte range of a JSON Lines input
INPUT = "input"  # one whole input
GROUP = "group"  # every input of a group whose converter cannot be split (finish)
ITEMS = "items"  # a range of items of a JSON array (top-level, or an envelope's record array)


@dataclass(frozen=True)
class Shard:
    """One piece of work: convert this part of the input into one :class:`~kodolly.corridor.Chunk`.

    ``group`` is the input group's number in the run spec, ``input`` the input's ordinal in the run
    (its place in the list of all inputs of all groups) and ``member`` its place in its group's list.
    ``range`` is set for a ``range`` shard. ``local`` shards are converted on the driver.
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

    def describe(self) -> dict[str, Any]:
        """The shard as the manifest records it."""
        out: dict[str, Any] = {"seq": self.seq, "kind": self.kind, "group": self.group, "input": self.name}
        if self.range is not None:
            r = self.range
            out.update(offset=r.offset, bytes=r.length, first_line=r.line, first_record=r.index, records=r.records)
        if self.items is not None:
            i = self.items
            out.update(offset=i.start, bytes=i.end - i.start, first_record=i.first_index, records=i.count)
        return out

    def label(self) -> str:
        """``NAME shard SEQ (...)`` for messages."""
        where = ""
        if self.range is not None:
            where = f" (bytes {self.range.offset}..{self.range.offset + self.range.length}, from line {self.range.line})"
        elif self.items is not None:
            where = f" (bytes {self.items.start}..{self.items.end}, items {self.items.first_index}..{self.items.first_index + self.items.count - 1})"
        return f"{self.name}: shard {self.seq}{where}"


def plan_shards(
    groups: Sequence[tuple[Any, Sequence[Input]]],
    *,
    shard_bytes: int | None = None,
    max_records: int | None = None,
) -> Iterator[Shard]:
    """The shards of a run, in order. ``groups`` is ``(converter, inputs)`` per input group."""
    seq = 0
    ordinal = 0
    for g, (conv, inputs) in enumerate(groups):
        if conv.finish is not None:
            yield Shard(seq, GROUP, g, ordinal, 0, inputs[0].name if len(inputs) == 1 else f"{len(inputs)} inputs of group {g}", local=True)
            seq += 1
            ordinal += len(inputs)
            continue
        for member, inp in enumerate(inputs):
            for shard in _input_shards(inp, seq, g, ordinal, member, shard_bytes, max_records, conv.record_paths):
                yield shard
                seq += 1
            ordinal += 1


def _input_shards(inp: Input, seq: int, g: int, ordinal: int, member: int, shard_bytes, max_records, record_paths=()) -> Iterator[Shard]:
    """The shards of one input (the driver reads a JSON Lines input or a JSON array once, to cut it)."""
    planned = _plan_input(inp, seq, g, ordinal, member, shard_bytes, max_records, record_paths)
    while True:
        try:
            shard = next(planned, None)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:  # a corrupt member or gzip stream
            raise InputError(f"{inp.name}: cannot be read ({exc})") from exc
        if shard is None:
            return
        yield shard


def _plan_input(inp: Input, seq: int, g: int, ordinal: int, member: int, shard_bytes, max_records, record_paths=()) -> Iterator[Shard]:
    found = sniff(inp)
    encoding = found.encoding if not found.empty else ""
    paths = item_paths(inp, found, record_paths) if os.path.isfile(inp.name) else None
    if paths is not None:  # a plain UTF-8 JSON array or envelope: item ranges (json_items)
        stream = inp.open()  # read once here, hashed for the manifest
        try:
            ranges = list(json_items.plan_ranges(stream, paths, shard_bytes or CHUNK_BYTES))
            while stream.read(1 << 20):  # the hash covers the whole file
                pass
        finally:
            stream.close()
        if ranges:
            for k, rng in enumerate(ranges):
                yield Shard(seq + k, ITEMS, g, ordinal, member, inp.name, encoding, items=rng, path=inp.name)
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
