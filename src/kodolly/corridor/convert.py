"""The one per-item path: :func:`convert_shard` turns a :class:`Shard` into a :class:`Chunk`.

read -> convert -> normalise -> check -> the chain's worker half (stateless filters, keyed filters'
``prepare``). It is pure (it reads its shard, writes nothing) and runs wherever the engine puts it:
in the driver, in a worker process, on a cluster node. The pyarrow.json fast path
(:func:`kodolly.corridor.columnar.convert_columnar`) is an optimisation inside it for plain UTF-8 JSON
Lines ranges and returns the same chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..converters import Context, Converter, Reject, loaded
from ..errors import ConfigError
from ..io.readers import BadRecord, Location, read_records
from ..io.sources import Input, expand_inputs
from ..normalize import normalize_repeated, normalize_text
from ..rows import DOLLY_CATEGORIES, MESSAGES_FIELD, rows_to_table
from ..turns import transcript
from .chain import FilterChain
from .chunks import Chunk, reject_record
from .jsonl import iter_range
from .shards import COMBINE, CSV, GROUP, INPUT, ITEMS, RANGE, ROWS, Shard

TEXT_FIELDS = ("instruction", "context", "response")
PIECE_ROWS = 4096  # converted row dicts are turned into Arrow (after the map half) this many at a time
REQUIRED_FIELDS = ("instruction", "response")


@dataclass
class GroupWork:
    """One input group as a worker needs it: the converter, its options, the category override and the
    sources as the user named them (a worker process re-expands them to open its inputs)."""

    converter: Converter
    options: Mapping[str, Any] | None
    category: str | None
    sources: Sequence[Any]

    def context(self) -> Context:
        return self.converter.context(self.options)


@dataclass
class Work:
    """Everything :func:`convert_shard` needs besides the shard: the groups and the filter chain.

    ``inputs`` are the driver's opened-input list per group; in another process they are rebuilt
    from the groups' sources (:meth:`forget_inputs`, then :meth:`inputs_of` on demand), so no open
    archive is ever shared between processes.
    """

    groups: list[GroupWork]
    chain: FilterChain
    inputs: list[list[Input]] | None = field(default=None, repr=False)

    def inputs_of(self, group: int) -> list[Input]:
        if self.inputs is None:
            self.inputs = [None] * len(self.groups)  # type: ignore[list-item]
        if self.inputs[group] is None:
            self.inputs[group] = expand_inputs(list(self.groups[group].sources))
        return self.inputs[group]

    def forget_inputs(self) -> None:
        self.inputs = None

    def __getstate__(self) -> dict[str, Any]:
        return {"groups": self.groups, "chain": self.chain, "inputs": None}


def check_category(category: str | None) -> None:
    """A category override must be a Dolly task type."""
    if category is not None and category not in DOLLY_CATEGORIES:
        raise ConfigError(f"category {category!r} is not a Dolly task type: {', '.join(sorted(DOLLY_CATEGORIES))}")


def normalise_and_check(row: dict[str, Any], category: str | None) -> str | None:
    """Normalise a converted row's text in place, apply the category override; the reason when a
    required field is empty. A conversation row's earlier turns (``messages``) are normalised (empty
    turns dropped) and its ``context`` is rebuilt from them, so the two cannot disagree."""
    history = row.get(MESSAGES_FIELD)
    # normalize_repeated: a text often comes again -- a KorQuAD paragraph in each of its questions, a
    # conversation's turns in later rows' histories, a layout's texts its checks have normalised already
    row["instruction"] = normalize_repeated(row["instruction"])
    if not history:
        row["context"] = normalize_repeated(row["context"])
    row["response"] = normalize_repeated(row["response"])
    if history:  # the earlier turns, normalised; the context is their transcript (one function, so they agree)
        row[MESSAGES_FIELD] = history = [
            {"role": m["role"], "content": text} for m in history if (text := normalize_repeated(m["content"]))
        ]
        row["context"] = transcript(history, (row.get("meta") or {}).get("context_turns_dropped", 0))
    if row["domain"]:
        row["domain"] = normalize_text(row["domain"])
    if category is not None:
        row["category"] = category
    return required_reason(row)


def required_reason(row: Mapping[str, Any]) -> str | None:
    """The reason a normalised row is rejected when a required field is empty, else None."""
    for name in REQUIRED_FIELDS:
        if not row[name]:
            return f"empty_field:{name}"
    return None


def location_meta(row: dict[str, Any], loc: Location) -> None:
    """Where the row came from, in its ``meta``: the file and its line (or record index)."""
    locate(row["meta"], loc)


def locate(meta: dict[str, Any], loc: Location) -> None:
    """``meta`` with the file and the line (or record index) of ``loc`` added."""
    meta["file"] = loc.file
    if loc.line is not None:
        meta["line"] = loc.line
    else:
        meta["index"] = loc.index


def convert_shard(shard: Shard, work: Work) -> Chunk:
    """Convert one shard: the :class:`Chunk` of its kept rows (after the chain's worker half), its
    rejects and counts, every item with its position."""
    group = work.groups[shard.group]
    conv, ctx = group.converter, group.context()
    if shard.kind == RANGE:
        rng = shard.range
        assert rng is not None
        if rng.bad is not None:  # one reject in place of data (a line over the limit, a stopped member)
            bad = [(BadRecord(*rng.bad), Location(shard.name, rng.index, rng.line))]
            return convert_records(shard, bad, conv, ctx, group.category, work.chain)
        data = rng.read()
        if shard.encoding in ("utf-8", "utf-8-sig"):
            from .columnar import convert_columnar

            chunk = convert_columnar(shard, data, conv, ctx, group.category, work.chain)
            if chunk is not None:
                return chunk
        if not isinstance(data, bytes):
            data = data.to_pybytes()
        records = iter_range(data, shard.name, shard.encoding, rng.line, rng.index)
        return convert_records(shard, records, conv, ctx, group.category, work.chain)
    if shard.kind == ITEMS and shard.rest:  # the rest of a stream the planner could not cut on
        inp = work.inputs_of(shard.group)[shard.member]
        chunk = convert_records(shard, _rest_records(shard, inp), conv, ctx, group.category, work.chain)
        chunk.inputs_read[inp.name] = (inp.bytes_read, inp.content_hash())
        return chunk
    if shard.kind == ITEMS:
        if shard.seps is not None and shard.plain and work.chain.columnar_ok:
            from .columnar import convert_columnar_spans  # the columnar path on the range's bytes

            chunk = convert_columnar_spans(shard, conv, ctx, group.category, work.chain)
            if chunk is not None:
                return chunk
        if conv.nested is not None:  # nested records (KorQuAD articles) parsed by pyarrow.json, as columns
            from .nested import convert_nested

            chunk = convert_nested(shard, conv, ctx, group.category, work.chain)
            if chunk is not None:
                return chunk
        return convert_records(shard, parsed_items(shard, raw_items(shard)), conv, ctx, group.category, work.chain)
    if shard.kind == CSV:  # whole records of a CSV input (hashed by the planner)
        from ..io.readers import CSV_DELIMITERS
        from ..io.sources import data_suffix
        from .csv_ranges import iter_csv_range

        assert shard.range is not None
        records = iter_csv_range(shard.range, shard.name, shard.encoding, CSV_DELIMITERS[data_suffix(shard.name)])
        return convert_records(shard, records, conv, ctx, group.category, work.chain)
    inputs = work.inputs_of(shard.group)
    if shard.kind == COMBINE:  # the items made from several records, read again from the group's inputs
        assert conv.combine is not None
        return convert_records(shard, (), conv, ctx, group.category, work.chain,
                               finish=lambda: conv.combine(ctx, lambda: _records_of(inputs, conv)))
    if shard.kind == ROWS:  # whole row groups of a parquet / Arrow file (hashed by the planner)
        from ..io import tables

        records = tables.read_rows(inputs[shard.member], *shard.rows)
        return convert_records(shard, records, conv, ctx, group.category, work.chain)
    if shard.kind == INPUT:
        chosen = [inputs[shard.member]]
    elif shard.kind == GROUP:
        chosen = list(inputs)
    else:  # pragma: no cover - the planner makes no other kind
        raise ValueError(f"unknown shard kind {shard.kind!r}")
    records = _records_of(chosen, conv)
    if shard.skip:  # the rest of an input whose first records are other shards'
        records = ((record, loc) for record, loc in records if loc.index >= shard.skip)
    finish = (lambda: conv.finish(ctx)) if shard.kind == GROUP and conv.finish is not None else None
    chunk = convert_records(shard, records, conv, ctx, group.category, work.chain, finish=finish)
    for inp in chosen:
        chunk.inputs_read[inp.name] = (inp.bytes_read, inp.content_hash())
    return chunk


def raw_items(shard: Shard) -> Iterator[Any]:
    """The items (``json_items.Item``) of an ``items`` shard, within the run's limits."""
    from ..io import json_items, limits

    lim = limits.current()
    item_limits = json_items.Limits(lim.max_depth, lim.max_record_bytes, lim.head_bytes)
    with shard.open_range() as stream:  # streamed: a range may hold an item over the limits
        yield from json_items.iter_range_at(stream, shard.items, item_limits)


def _rest_records(shard: Shard, inp: Input) -> Iterator[tuple[Any, Location]]:
    """The records of ``inp`` from item ``shard.items.first_index`` (at byte ``shard.items.start``) on,
    read as :func:`~kodolly.io.readers.read_records` reads them (a stream stopped by the decompression
    budget ends with its one reject)."""
    from ..errors import DecompressionBombError
    from ..io import json_items, limits
    from ..io.readers import parse_item

    lim = limits.current()
    item_limits = json_items.Limits(lim.max_depth, lim.max_record_bytes, lim.head_bytes)
    index = shard.items.first_index
    stream = inp.open()
    try:
        for item in json_items.iter_from(stream, shard.items.start, index, item_limits):
            index = item.index + 1
            yield parse_item(item, lim), Location(shard.name, item.index)
    except DecompressionBombError as exc:
        yield BadRecord("decompression_bomb", "", str(exc)), Location(shard.name, index)
    finally:
        stream.close()


def parsed_items(shard: Shard, items: Iterable[Any]) -> Iterator[tuple[Any, Location]]:
    """Items as records, parsed as a whole read parses them."""
    from ..io import limits
    from ..io.readers import parse_item

    lim = limits.current()
    for item in items:
        yield parse_item(item, lim), Location(shard.name, item.index)


def _records_of(inputs: Iterable[Input], conv: Converter) -> Iterator[tuple[Any, Location]]:
    for inp in inputs:
        yield from read_records(inp, conv.record_paths)


def convert_records(
    shard: Shard,
    records: Iterable[tuple[Any, Location]],
    conv: Converter,
    ctx: Context,
    category: str | None,
    chain: FilterChain,
    *,
    finish: Callable[[], Iterable[tuple[Any, Location]]] | None = None,
    column: Any = None,
) -> Chunk:
    """Records one by one -> converter -> normalise -> check, then the chain's map half (run on pieces
    of :data:`PIECE_ROWS` rows, so a shard that is a whole big file never holds all its rows as dicts).
    ``finish()``, after the last record: ``(item, Location)`` made from several records, taken after them.
    ``column``: the text column that records parsed column-wise index (:mod:`kodolly.corridor.exchanges`)."""
    source = conv.name
    chunk = Chunk(shard.seq, source)
    files: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    items: list[int] = []
    index: list[int] = []
    line: list[int] = []
    file_of: list[int] = []
    pieces: list[Chunk] = []
    rejects = chunk.rejects
    item = 0

    columnar = chain.columnar_ok  # the map half on the piece's Arrow table (vectorised filters, keys hashed from its buffers)
    from .exchanges import piece_for

    bulk = piece_for(conv, ctx, category, chain, finish is not None, column)  # conversation rows built in bulk (exchanges.py)
    produce = conv.convert if bulk is None else conv.exchanges

    def map_piece() -> None:
        piece = Chunk(shard.seq, source, files=list(files))
        arrays = np.array(items, np.int64), np.array(index, np.int64), np.array(line, np.int64), np.array(file_of, np.int64)
        if bulk is not None and len(bulk):
            table, keep, checked = bulk.table(arrays[0])
            rejects.extend(checked)
            chain.map_table(piece, table, *(a[keep] for a in arrays))
        elif columnar and rows:
            chain.map_table(piece, rows_to_table(rows), *arrays)
        else:
            chain.map_rows(piece, rows, *arrays)
        rejects.extend(piece.rejects)
        piece.rejects = []
        pieces.append(piece)
        for values in (rows, items, index, line, file_of):
            values.clear()

    def place(loc: Location) -> None:
        items.append(item)
        index.append(loc.index)
        line.append(-1 if loc.line is None else loc.line)
        f = files.get(loc.file)
        if f is None:
            f = files[loc.file] = len(files)
        file_of.append(f)

    def take(out: Any, loc: Location, record: Any) -> None:
        nonlocal item
        if isinstance(out, Reject):
            raw = out.raw if out.raw is not None else loaded(record)
            rejects.append((item, reject_record(out.reason, source, loc, detail=out.detail, part=out.part, raw=raw)))
        elif bulk is not None:  # an exchange: normalised and checked with its piece (Piece.table)
            bulk.add(out, loc, record)
            place(loc)
        else:
            reason = normalise_and_check(out, category)
            if reason:
                rejects.append((item, reject_record(reason, source, loc, raw=record if record is not None else out, row_id=out["id"])))
            else:
                location_meta(out, loc)
                rows.append(out)
                place(loc)
        item += 1

    n_records = 0
    for record, loc in records:
        n_records += 1
        if isinstance(record, BadRecord):
            rejects.append((item, reject_record(record.reason, source, loc, detail=record.detail, raw=record.raw)))
            item += 1
            continue
        produced = 0
        for out in produce(record, loc, ctx):
            produced += 1
            take(out, loc, record)
        if not produced:
            rejects.append((item, reject_record("no_rows", source, loc, detail="the record yields no row", raw=loaded(record))))
            item += 1
        if len(items) >= PIECE_ROWS:
            map_piece()
    if finish is not None:  # items made from several records (e.g. hansol join_pairs)
        for out, loc in finish():
            take(out, loc, None)
            if len(items) >= PIECE_ROWS:
                map_piece()
    if items or not pieces:
        map_piece()
    chunk.records = n_records
    chunk.read = item
    chunk.files = list(files) or [shard.name]
    join_pieces(chunk, pieces, chain)
    return chunk


def join_pieces(chunk: Chunk, pieces: list[Chunk], chain: FilterChain) -> None:
    """The pieces' tables, row arrays and payloads as the chunk's (rejects already gathered)."""
    import pyarrow as pa

    if len(pieces) == 1:
        (only,) = pieces
        chunk.table, chunk.payloads = only.table, only.payloads
        chunk.row_item, chunk.row_index, chunk.row_line, chunk.row_file = only.row_item, only.row_index, only.row_line, only.row_file
    else:
        chunk.table = pa.concat_tables([p.table for p in pieces])
        for name in ("row_item", "row_index", "row_line", "row_file"):
            setattr(chunk, name, np.concatenate([getattr(p, name) for p in pieces]))
        chunk.payloads = {pos: [v for p in pieces for v in p.payloads[pos]] for pos in chain.keyed}
    chunk.rejects.sort(key=lambda r: r[0])
