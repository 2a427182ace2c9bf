"""The columnar fast path inside :func:`~kodolly.corridor.convert_shard`: a plain UTF-8 JSON Lines range
parsed by pyarrow.json and normalised column by column; it returns the chunk the record-by-record path
would (or None when it does not apply: then that path runs)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from ..converters import Context, Converter
from ..io import limits
from ..io.json_items import lines_within, positions_of
from ..io.readers import Location
from ..normalize import normalize_column, normalize_text
from .. import rows as rows_module
from ..rows import ARROW_SCHEMA, repeat_string
from .chain import FilterChain
from .chunks import Chunk, reject_record
from .jsonl import BOM
from .shards import Shard

_SURROGATE_ESCAPE = r"\\u[dD][89a-fA-F]"  # a \uD800-\uDFFF escape: the record path decides those lines


def _has_surrogate_escape(data: Any) -> bool:
    """Whether the bytes ``data`` hold a surrogate escape (RE2 over them as one value: about 4x Python's re)."""
    import pyarrow.compute as pc

    buffer = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    offsets = pa.py_buffer(np.array([0, buffer.size], dtype=np.int64))
    whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, buffer])
    return bool(pc.match_substring_regex(whole, _SURROGATE_ESCAPE)[0].as_py())


def schema_column(built: dict[str, Any], field: Any, n: int) -> Any:
    """A column of the row schema: built by the caller, or the default ``rows_to_table`` gives a row without it."""
    if field.name in built:
        return built[field.name]
    if field.name == "messages":  # single-turn rows: no earlier turns
        return rows_module.no_messages(n)
    if pa.types.is_string(field.type) and not field.nullable:
        default = getattr(rows_module, "DEFAULT_SPLIT", "") if field.name == "split" else ""
        return repeat_string(default, n)
    return pa.nulls(n, field.type)


def table_of(built: dict[str, Any], n: int) -> pa.Table:
    """A table of ``n`` rows in the row schema from the columns ``built`` (the others their defaults)."""
    return pa.Table.from_arrays([schema_column(built, f, n) for f in ARROW_SCHEMA], schema=ARROW_SCHEMA)


def _string_array(column: Any) -> Any:
    """One array (a chunked column of one chunk as that chunk: ``combine_chunks`` would copy it)."""
    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column


def _validate_rest(records: pa.Table, checked: list[Any]) -> None:
    """Full validation (UTF-8 included) of the parsed columns whose data the clean pattern did not see
    (e.g. an ``input`` column with nulls, copied by ``fill_null``; a Dolly ``category``). ``checked``:
    string arrays whose every value was validated (by the clean pattern, or by the converter); a text
    field of a struct column that shares its data with one of them is not validated again."""
    seen = {a.buffers()[2].address for a in checked if len(a.buffers()) == 3 and a.buffers()[2] is not None}
    for column in records.columns:
        for array in column.chunks:
            _validate_unseen(array, seen)


def _validate_unseen(array: Any, seen: set[int]) -> None:
    buffers = array.buffers()
    if pa.types.is_string(array.type) and buffers[2] is not None and buffers[2].address in seen:
        return
    if pa.types.is_struct(array.type) and seen:  # its layout, then each field on its own
        array.validate()
        for i in range(array.type.num_fields):
            _validate_unseen(array.field(i), seen)
        return
    array.validate(full=True)


def read_lines(data: Any, n_records: int, newlines: np.ndarray | None = None) -> tuple[pa.Table, np.ndarray] | None:
    """JSON Lines ``data`` of ``n_records`` records parsed by pyarrow.json, and the positions of its
    newlines; None when the record path must decide (a surrogate escape, a line too deep or too long,
    a line pyarrow.json cannot parse, blank lines miscounted). Strings are not validated as UTF-8."""
    import pyarrow.json as pj

    if _has_surrogate_escape(data):
        return None
    lim = limits.current()
    if newlines is None:
        newlines = positions_of(np.frombuffer(data, dtype=np.uint8), 0x0A)
    if not lines_within(data, lim.max_depth, lim.max_record_bytes, newlines):  # the record path rejects those lines
        return None
    # Raw control characters inside strings make pyarrow.json fail (as orjson does): no check needed.
    try:
        records = pj.read_json(
            pa.BufferReader(data),
            read_options=pj.ReadOptions(use_threads=False, block_size=len(data) + 1),
        )
        records.column_names  # noqa: B018 - decoding the keys raises on invalid UTF-8
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        return None
    if records.num_rows != n_records:
        return None
    return records, newlines


def line_spans(view: np.ndarray, newlines: np.ndarray, n_records: int, line_no: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The line number of each record of JSON Lines bytes ``view`` (its first line is ``line_no``), and
    where each line starts and ends (blank lines included; record i is on line ``lines[i]``)."""
    line_starts = np.concatenate(([0], newlines + 1))
    line_ends = np.concatenate((newlines, [len(view)]))
    if len(line_starts) > 1 and line_starts[-1] >= len(view):  # the chunk ends with a newline
        line_starts, line_ends = line_starts[:-1], line_ends[:-1]
    if len(line_starts) == n_records:
        lines = np.arange(line_no, line_no + n_records, dtype=np.int64)
    else:
        blank = [not bytes(view[a:b]).strip() for a, b in zip(line_starts.tolist(), line_ends.tolist())]
        lines = line_no + np.flatnonzero(~np.array(blank, dtype=bool)).astype(np.int64)
    return lines, line_starts, line_ends


def convert_columnar(shard: Shard, data: Any, conv: Converter, ctx: Context, category: str | None, chain: FilterChain) -> Chunk | None:
    """The fast path for a plain UTF-8 JSON Lines range, or None when it does not apply."""
    rng = shard.range
    if rng.first and bytes(data[:3]) == BOM:
        return None
    return _convert_lines(shard, data, rng.records, rng.index, rng.line, conv, ctx, category, chain, rng.newlines)


def _convert_lines(shard: Shard, data: Any, n_records: int, index: int, line_no: int | None, conv: Converter,
                   ctx: Context, category: str | None, chain: FilterChain,
                   newlines: np.ndarray | None = None) -> Chunk | None:
    """JSON Lines ``data`` of ``n_records`` records from record ``index`` on: from line ``line_no`` of the
    input, or (``None``) items of a JSON array, one a line, located by their index. ``newlines``: the
    positions of the newlines in ``data`` when the caller found them already."""
    by_index = line_no is None
    if by_index:
        line_no = 0
    if not chain.columnar_ok or not n_records:
        return None
    if conv.columnar is None:
        if conv.columnar_records is None:
            return None
        from .exchanges import convert_lines

        return convert_lines(shard, data, n_records, index, None if by_index else line_no, conv, ctx, category, chain, newlines)
    parsed = read_lines(data, n_records, newlines)
    if parsed is None:
        return None
    records, newlines = parsed
    view = np.frombuffer(data, dtype=np.uint8)
    lines, line_starts, line_ends = line_spans(view, newlines, n_records, line_no)

    def raw(i: int) -> Any:
        k = int(lines[i]) - line_no
        return orjson.loads(bytes(view[line_starts[k]:line_ends[k]]))

    return _columns_chunk(shard, records, n_records, index, None if by_index else lines, raw, conv, ctx, category, chain)


def convert_columnar_spans(shard: Shard, conv: Converter, ctx: Context, category: str | None,
                           chain: FilterChain) -> Chunk | None:
    """The fast path for an ``items`` shard of a JSON array or envelope (``json_items.PlannedRange``:
    the offsets of the commas between its items are known): the commas become newlines and
    pyarrow.json reads the items as JSON texts that may span lines (AI Hub's label files, KoAlpaca's
    arrays are indented); for a converter of conversations (``columnar_records``), as JSON Lines (an
    item over several lines: the record path). The bytes are the shard's own (a zip member's range)
    or re-read from its file. None when it does not apply (an item over the limits, a surrogate
    escape, anything pyarrow.json reads otherwise than orjson): then the record path runs on the
    same bytes."""
    import pyarrow.json as pj

    n = shard.items.count
    if (conv.columnar is None and conv.columnar_records is None) or not chain.columnar_ok or not shard.plain or not n:
        return None
    data = shard.range_bytes()
    lines = np.frombuffer(data, dtype=np.uint8).copy()
    lines[shard.seps] = 0x0A
    if conv.columnar is None:
        return _convert_lines(shard, lines.tobytes(), n, shard.items.first_index, None, conv, ctx, category, chain)
    if _has_surrogate_escape(data):
        return None
    try:
        records = pj.read_json(
            pa.BufferReader(pa.py_buffer(lines)),
            read_options=pj.ReadOptions(use_threads=False, block_size=len(lines) + 1),
            parse_options=pj.ParseOptions(newlines_in_values=True),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    starts = np.concatenate(([0], shard.seps + 1))
    ends = np.concatenate((shard.seps, [len(data)]))

    def raw(i: int) -> Any:
        return orjson.loads(data[int(starts[i]):int(ends[i])])

    return _columns_chunk(shard, records, n, shard.items.first_index, None, raw, conv, ctx, category, chain)


def same_texts(a: Any, b: Any) -> np.ndarray:
    """Rows where normalised texts ``a`` and ``b`` are the same up to white space (``a`` not empty):
    what a layout's ``same`` check rejects. Normalised text holds no white space but spaces, tabs and
    newlines and starts with none. Candidates first: the first characters must be the same (no regex
    pass over every row); then from heads: the squashed first 16 characters of ``b`` (from its first 64)
    must be those of ``a``, unless its head squashes to fewer; then the candidates are compared whole."""
    import pyarrow.compute as pc

    def squash(texts: Any) -> Any:
        return pc.replace_substring_regex(texts, "[ \t\n]+", "")

    first = pc.and_(pc.greater(pc.binary_length(a), 0),
                    pc.equal(pc.utf8_slice_codeunits(a, 0, 1), pc.utf8_slice_codeunits(b, 0, 1)))
    rows = np.flatnonzero(pc.fill_null(first, False).to_numpy(zero_copy_only=False))
    if len(rows) < len(a):  # only those rows can be the same text
        picked = pa.array(rows, pa.int64())
        return rows[same_texts(a.take(picked), b.take(picked))] if len(rows) else rows
    squashed_a = squash(a)
    head_b = squash(pc.utf8_slice_codeunits(b, 0, 64))
    maybe = pc.or_(pc.less(pc.utf8_length(head_b), 16),
                   pc.equal(pc.utf8_slice_codeunits(head_b, 0, 16), pc.utf8_slice_codeunits(squashed_a, 0, 16)))
    maybe = pc.and_(maybe, pc.greater(pc.binary_length(squashed_a), 0))
    candidates = np.flatnonzero(maybe.to_numpy(zero_copy_only=False))
    if not len(candidates):
        return candidates
    rows = pa.array(candidates)
    return candidates[pc.equal(squashed_a.take(rows), squash(b.take(rows))).to_numpy(zero_copy_only=False)]


def _columns_chunk(shard: Shard, records: pa.Table, n: int, index: int, lines: np.ndarray | None, raw: Any,
                   conv: Converter, ctx: Context, category: str | None, chain: FilterChain) -> Chunk | None:
    """The chunk of ``n`` records parsed by pyarrow.json (``records``), from record ``index`` on: at
    ``lines`` of the input, or (None) located by their index; ``raw(i)`` is record ``i`` as orjson reads
    it (for its reject). None when the converter declines or the columns are not what orjson would read.

    ``conv.columnar`` gives the row fields column by column (see ``Converter.columnar``): instruction,
    context, response, category, and optionally ``id`` (None = the derived id), ``domain``, ``meta``
    (JSON texts; the location is added), ``same`` checks ``(a, b, reason, detail)`` and ``checked``
    (parsed string columns whose every value the converter validated, e.g. by normalising them)."""
    import pyarrow.compute as pc

    name = shard.name
    try:
        records.column_names  # noqa: B018 - decoding the keys raises on invalid UTF-8
        if records.num_rows != n:
            return None
        columns = conv.columnar(records, ctx)
        if columns is None:
            return None
        sources = {key: _string_array(columns[key]) for key in ("instruction", "context", "response")
                   if not isinstance(columns[key], str)}
        texts = {key: normalize_column(array) for key, array in sources.items()}
        for key in ("instruction", "context", "response"):
            if key not in texts:  # a constant
                texts[key] = repeat_string(normalize_text(columns[key]), n)
        domain = columns.get("domain", "")
        if not isinstance(domain, str):
            sources["domain"] = _string_array(domain)
            domain = normalize_column(sources["domain"])
        _validate_rest(records, list(sources.values()) + list(columns.get("checked", ())))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        return None
    cat = category if category is not None else columns["category"]
    by_index = lines is None
    indices = np.arange(index, index + n, dtype=np.int64)
    base = name.rsplit("!", 1)[-1].rsplit("/", 1)[-1]
    if by_index:  # items: located by their index, as the record path locates them
        located_key = "index"
        located = indices
    else:
        located_key = "line"
        located = lines
    ids = pc.binary_join_element_wise(pa.scalar(f"{base}:"), pa.array(indices).cast(pa.string()), "")
    if columns.get("id") is not None:  # the source's own ids, the derived one where it has none
        ids = pc.coalesce(pa.array(columns["id"], pa.string()), ids)
    where = pa.array(located).cast(pa.string())
    file_head = orjson.dumps({"file": name}).decode()[1:-1] + f',"{located_key}":'
    if columns.get("meta") is not None:  # the converter's meta, then the location
        body = pc.utf8_slice_codeunits(pa.array(columns["meta"], pa.string()), 0, -1)
        sep = pc.if_else(pc.equal(body, "{"), pa.scalar(""), pa.scalar(","))
        metas = pc.binary_join_element_wise(body, sep, pa.scalar(file_head), where, pa.scalar("}"), "")
    else:
        metas = pc.binary_join_element_wise(pa.scalar("{" + file_head), where, pa.scalar("}"), "")
    chunk = Chunk(shard.seq, conv.name, files=[name], records=n, read=n)
    keep = np.ones(n, dtype=bool)
    for a, b, reason, detail in columns.get("same", ()):  # the converter's checks, on the normalised texts
        for i in same_texts(texts[a], texts[b]).tolist():
            if not keep[i]:
                continue
            keep[i] = False
            loc = Location(name, index + i, None if by_index else int(lines[i]))
            chunk.rejects.append((i, reject_record(reason, conv.name, loc, detail=detail, raw=raw(i))))
    empty_i = pc.equal(pc.binary_length(texts["instruction"]), 0)
    empty_r = pc.equal(pc.binary_length(texts["response"]), 0)
    empty = pc.or_(empty_i, empty_r)
    if pc.any(empty).as_py():
        ei = empty_i.to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(empty.to_numpy(zero_copy_only=False) & keep).tolist():
            keep[i] = False
            reason = "empty_field:instruction" if ei[i] else "empty_field:response"
            loc = Location(name, index + i, None if by_index else int(lines[i]))
            chunk.rejects.append((i, reject_record(reason, conv.name, loc, raw=raw(i), row_id=ids[i].as_py())))
    built = {
        "instruction": texts["instruction"], "context": texts["context"], "response": texts["response"],
        "category": repeat_string(cat, n) if isinstance(cat, str) else _string_array(cat),
        "source": repeat_string(conv.name, n),
        "id": ids,
        "domain": repeat_string(domain, n) if isinstance(domain, str) else domain,
        "score": pa.nulls(n, pa.float64()),
        "license": repeat_string(ctx.license, n),
        "meta": metas,
    }
    table = table_of(built, n)
    items = np.arange(n, dtype=np.int64)
    if not keep.all():
        table = table.filter(pa.array(keep))
        items = items[keep]
    lines = np.full(n, -1, np.int64) if by_index else lines  # no line numbers (the record path's -1)
    chain.map_table(chunk, table, items, indices[items], lines[items], np.zeros(len(items), np.int64))
    return chunk
