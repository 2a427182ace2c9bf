"""Keyed decisions by hash partition: "the earliest position wins" without one process seeing every key.

A keyed filter (exact dedup) prepares one ``(key, id)`` per row; decided in one process, in position
order, the first row of a key is kept and every later one is dropped with a reason naming the kept
row. The same decisions come out of a hash shuffle, so an engine can make them on a cluster:

1. per shard, :func:`key_table` turns the prepared values into an Arrow table ``(key, pos, id)``
   (``pos`` = :func:`position` of the row) and :func:`partition` cuts it into ``n`` tables by a hash of
   the key -- every row of one key lands in the same partition, whatever shard it came from;
2. per partition, :func:`earliest_wins` takes that partition's pieces from every shard and returns the
   losers ``(pos, kept_id)``: for each key, every row but the one with the smallest position, with the
   id of that smallest-position row;
3. :func:`losers_between` picks the losers of a range of positions (a shard, a part of the output), so
   each shard is finished with only the decisions that concern it.

Positions are ``(shard seq, item ordinal)`` (the corridor's ordering contract) packed in one int64, so
the kept copy and its id are those of a one-process run whatever the partition count. A filter takes
part by setting ``earliest_per_key = True``: its prepared value per row is ``(key bytes, id)`` and its
``decide`` keeps the first row of a key and gives later ones ``duplicate_reason(kept_id)``. (Near-dup
LSH bands use the same shuffle, one key per ``(band, key)`` bucket, and :func:`deal` and :func:`cut`; their
decision is not "earliest per key" but "earliest kept similar row", made from the buckets' checked pairs:
see :mod:`kodolly.filters.near_dup` and the ray engine.)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ITEM_BITS = 32  # a shard holds fewer than 2**32 items
KEY_SCHEMA = pa.schema([("key", pa.binary()), ("pos", pa.int64()), ("id", pa.string())])
LOSER_SCHEMA = pa.schema([("pos", pa.int64()), ("kept_id", pa.string())])


def position(shard: int, item: int | np.ndarray) -> Any:
    """The global position of an item (``shard``, ``item``) as one sortable int64."""
    return (np.int64(shard) << ITEM_BITS) | np.asarray(item, dtype=np.int64)


def key_table(shard: int, items: np.ndarray, prepared: Sequence[tuple[bytes, str]]) -> pa.Table:
    """``(key, pos, id)`` for the rows of one shard (``items``: their item ordinals, ``prepared``: the
    filter's value per row)."""
    if not len(prepared):
        return KEY_SCHEMA.empty_table()
    keys, ids = zip(*prepared)
    return pa.table(
        [pa.array(keys, pa.binary()), pa.array(position(shard, items), pa.int64()), pa.array(ids, pa.string())],
        schema=KEY_SCHEMA,
    )


def partition(table: pa.Table, n: int) -> list[pa.Table]:
    """Cut a key table into ``n`` tables by a hash of the key (the keys are already xxh3 digests, so
    their first 8 bytes are the hash)."""
    if n == 1:
        return [table]
    if not len(table):
        return [KEY_SCHEMA.empty_table() for _ in range(n)]
    part = (_hash64(table.column("key").combine_chunks()) % np.uint64(n)).astype(np.int64)
    order, bounds = deal(part, n)
    ordered = table.take(pa.array(order))
    return [ordered.slice(int(bounds[k]), int(bounds[k + 1] - bounds[k])) for k in range(n)]


def deal(part: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(order, bounds)`` for items with partition numbers ``part`` (0 .. n-1): ``order[bounds[k]:
    bounds[k + 1]]`` are partition ``k``'s items, in their original order."""
    order = np.argsort(part, kind="stable")
    return order, np.searchsorted(part[order], np.arange(n + 1))


def _hash64(keys: pa.Array) -> np.ndarray:
    """The first 8 bytes of each key as a uint64 (keys shorter than 8 bytes: hashed with xxh3)."""
    offsets = np.frombuffer(keys.buffers()[1], dtype=np.int32)[keys.offset : keys.offset + len(keys) + 1]
    if int(np.diff(offsets).min()) < 8:
        import xxhash

        return np.array([xxhash.xxh3_64_intdigest(k) for k in keys.to_pylist()], dtype=np.uint64)
    data = np.frombuffer(keys.buffers()[2], dtype=np.uint8)
    return data[offsets[:-1, None] + np.arange(8)].copy().view("<u8").ravel()


def earliest_wins(pieces: Sequence[pa.Table]) -> pa.Table:
    """The losers of one partition: for every key, each row except the earliest, with the earliest's id
    (``(pos, kept_id)``, sorted by position)."""
    table = pa.concat_tables([p for p in pieces if len(p)] or [KEY_SCHEMA.empty_table()])
    if len(table) < 2:
        return LOSER_SCHEMA.empty_table()
    order = pc.sort_indices(table, sort_keys=[("key", "ascending"), ("pos", "ascending")])
    table = table.take(order)
    keys = table.column("key").combine_chunks()
    same = pc.equal(keys.slice(1), keys.slice(0, len(keys) - 1)).to_numpy(zero_copy_only=False)
    later = np.concatenate(([False], same))  # True: not the first row of its key
    if not later.any():
        return LOSER_SCHEMA.empty_table()
    idx = np.arange(len(table))
    first = np.maximum.accumulate(np.where(later, 0, idx))  # index of the first row of each row's key
    losers = np.flatnonzero(later)
    out = pa.table(
        [table.column("pos").take(pa.array(losers)), table.column("id").take(pa.array(first[losers]))],
        schema=LOSER_SCHEMA,
    )
    return out.take(pc.sort_indices(out, sort_keys=[("pos", "ascending")]))


def cut(losers: pa.Table, bounds: Sequence[int]) -> list[pa.Table]:
    """Losers (sorted by position) cut at ``bounds``: one table per ``[bounds[g], bounds[g + 1])``."""
    return [losers_between(losers, bounds[g], bounds[g + 1]) for g in range(len(bounds) - 1)]


def losers_between(losers: pa.Table, start: int, stop: int) -> pa.Table:
    """The losers with ``start <= pos < stop`` (``losers`` sorted by position)."""
    pos = losers.column("pos").to_numpy()
    a, b = np.searchsorted(pos, [start, stop])
    return losers.slice(int(a), int(b - a))


def verdicts(shard: int, items: np.ndarray, losers: Sequence[pa.Table], reason: Any) -> list[str | None]:
    """Per row of a shard (``items``: item ordinals), ``None`` or ``reason(kept_id)``, from the losers of
    every partition (each sorted by position)."""
    out: list[str | None] = [None] * len(items)
    if not len(items):
        return out
    start, stop = int(position(shard, 0)), int(position(shard + 1, 0))
    where = {int(p): i for i, p in enumerate(position(shard, items).tolist())}
    for table in losers:
        mine = losers_between(table, start, stop)
        for pos, kept in zip(mine.column("pos").to_pylist(), mine.column("kept_id").to_pylist()):
            out[where[pos]] = reason(kept)
    return out
