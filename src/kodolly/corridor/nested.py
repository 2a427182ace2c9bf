"""The columnar path for nested records inside :func:`~kodolly.corridor.convert_shard` (``Converter.nested``):
the items of an ``items`` shard (e.g. KorQuAD articles) parsed together by pyarrow.json against the
converter's record type and turned into row columns, with no Python object per row.

The records the converter calls irregular (``columns()["irregular"]``) are converted one by one on the
record path, in runs between the regular ones; the pieces are joined in item order, so the chunk is the
one the record path alone would give. When the range does not parse against the record type (another
field or type, invalid JSON or UTF-8, a lone surrogate, a duplicate key) or a limit could be crossed,
it returns None and the whole shard takes the record path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from ..converters import Context, Converter
from ..io import limits
from ..rows import repeat_string
from .chain import FilterChain
from .chunks import Chunk
from .columnar import table_of
from .shards import Shard

_WRAP_OPEN, _WRAP_CLOSE = b'{"a":[', b"]}"


def _parse(shard: Shard, item_type: Any) -> Any:
    """The range's items as one Arrow struct array, or None when pyarrow.json does not take them."""
    import pyarrow.json as pj

    rng = shard.items
    data = _WRAP_OPEN + shard.range_bytes() + _WRAP_CLOSE
    schema = pa.schema([("a", pa.list_(item_type))])
    try:
        table = pj.read_json(
            pa.BufferReader(data),
            read_options=pj.ReadOptions(use_threads=False, block_size=len(data) + 1),
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
        )
        table.validate(full=True)  # pyarrow.json lets invalid UTF-8 through (orjson rejects it)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != 1:
        return None
    lists = table.column(0).chunk(0)
    if lists.null_count or len(lists.value_lengths()) != 1 or lists.value_lengths()[0].as_py() != rng.count:
        return None
    return lists.flatten()


def convert_nested(shard: Shard, conv: Converter, ctx: Context, category: str | None, chain: FilterChain) -> Chunk | None:
    """The chunk of an ``items`` shard by the converter's nested columnar path, or None (see the module)."""
    from .convert import convert_records, join_pieces, parsed_items, raw_items

    spec = conv.nested
    rng = shard.items
    lim = limits.current()
    if spec is None or not chain.columnar_ok or not rng.count:
        return None
    if lim.max_depth < spec.depth or rng.end - rng.start > lim.max_record_bytes:
        return None
    records = _parse(shard, spec.item_type)
    if records is None:
        return None
    cols = spec.columns(records, ctx)
    irregular: np.ndarray = cols["irregular"]
    record_of: np.ndarray = cols["record"]
    name = shard.name
    pieces: list[Chunk] = []
    items = list(raw_items(shard)) if irregular.any() else None
    # runs of regular / irregular records, in order
    edges = np.flatnonzero(np.diff(irregular.astype(np.int8))) + 1
    bounds = [0, *edges.tolist(), len(irregular)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        if irregular[a]:
            pieces.append(convert_records(shard, parsed_items(shard, items[a:b]), conv, ctx, category, chain))
            continue
        lo, hi = np.searchsorted(record_of, [a, b])
        pieces.append(_regular_piece(shard, cols, int(lo), int(hi), b - a, rng.first_index, conv, ctx, category, chain))
    chunk = Chunk(shard.seq, conv.name, files=[name], records=rng.count)
    offset = 0
    for piece in pieces:
        if piece.files != [name]:  # pragma: no cover - every piece locates its rows in this input
            return None
        piece.row_item = piece.row_item + offset
        chunk.rejects.extend((item + offset, rej) for item, rej in piece.rejects)
        offset += piece.read
    chunk.read = offset
    join_pieces(chunk, pieces, chain)
    return chunk


def _regular_piece(shard: Shard, cols: dict[str, Any], lo: int, hi: int, n_records: int, first_index: int,
                   conv: Converter, ctx: Context, category: str | None, chain: FilterChain) -> Chunk:
    """The rows ``lo ..< hi`` of the columns (whole regular records) as a chunk: one item a row."""
    import pyarrow.compute as pc

    n = hi - lo
    name = shard.name
    index = cols["record"][lo:hi] + first_index
    tail = orjson.dumps({"file": name}).decode()[1:-1]  # "file":NAME
    meta = pc.binary_join_element_wise(cols["meta"].slice(lo, n), pa.scalar("," + tail + ',"index":'),
                                       pa.array(index).cast(pa.string()), pa.scalar("}"), "")
    cat = category if category is not None else cols["category"]
    built = {
        "instruction": cols["instruction"].slice(lo, n), "context": cols["context"].slice(lo, n),
        "response": cols["response"].slice(lo, n),
        "category": repeat_string(cat, n) if isinstance(cat, str) else cat.slice(lo, n),
        "source": repeat_string(conv.name, n), "id": cols["id"].slice(lo, n),
        "domain": repeat_string("", n), "score": pa.nulls(n, pa.float64()),
        "license": repeat_string(ctx.license, n), "meta": meta,
    }
    piece = Chunk(shard.seq, conv.name, files=[name], records=n_records, read=n)
    chain.map_table(piece, table_of(built, n), np.arange(n, dtype=np.int64), index.astype(np.int64),
                    np.full(n, -1, np.int64), np.zeros(n, np.int64))
    return piece
