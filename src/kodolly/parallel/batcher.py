"""Chunks back in input order, cut into the sequential pipeline's batches, the main-process filters run."""

from __future__ import annotations

import bisect
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from ..io.readers import Location
from ..pipeline import reject_record
from ..rows import ARROW_SCHEMA, rows_to_table
from .chunks import Chunk, _rows_of, _select, _table_verdicts
from .plan import Plan


class TableBatch:
    """A batch whose kept rows are an Arrow table (``rows`` reads them back as dicts when asked)."""

    def __init__(self, table: pa.Table, rejects: list[dict[str, Any]]) -> None:
        self.table = table
        self.rejects = rejects
        self._rows: list[dict[str, Any]] | None = None

    @property
    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = _rows_of(self.table)
        return self._rows

    def __len__(self) -> int:
        return len(self.table)


class Batcher:
    """Cut the chunk stream into the sequential pipeline's batches and run the main-side filters."""

    def __init__(self, batch_size: int, plan: Plan, source: str) -> None:
        self.batch_size = batch_size
        self.plan = plan
        self.source = source
        self.segments: list[tuple[Chunk, int, int]] = []
        self.pending = 0

    def feed(self, chunk: Chunk) -> Iterator[TableBatch]:
        n = chunk.records
        pos = 0
        if chunk.rec_items is not None:
            counts = np.abs(chunk.rec_items)
            cum = np.cumsum(counts)
            checkable = chunk.rec_items > 0
        while n:
            target = pos + max(self.batch_size - self.pending, 1)
            if chunk.rec_items is None:
                if target > n:
                    break
                end = target
            else:
                r = int(np.searchsorted(cum, target))
                while r < n and not checkable[r]:
                    r += 1
                if r >= n:
                    break
                end = int(cum[r])
            self.segments.append((chunk, pos, end))
            yield self._emit()
            pos = end
        if pos < chunk.items:
            self.segments.append((chunk, pos, chunk.items))
            self.pending += chunk.items - pos

    def finish(self) -> TableBatch:
        return self._emit()

    def _emit(self) -> TableBatch:
        segments, self.segments, self.pending = self.segments, [], 0
        plan = self.plan
        tables: list[pa.Table] = []
        starts: list[int] = []  # batch row position where each segment's rows start
        firsts: list[int] = []  # first chunk row of each segment
        payloads: dict[int, list[Any]] = {pos: [] for pos in plan.keyed}
        keyed_rejects: list[tuple[int, Any, dict[str, Any]]] = []
        total = 0
        for s, (chunk, lo, hi) in enumerate(segments):
            a = int(np.searchsorted(chunk.row_items, lo))
            b = int(np.searchsorted(chunk.row_items, hi))
            starts.append(total)
            firsts.append(a)
            if b > a:
                tables.append(chunk.table.slice(a, b - a))
                for pos in plan.keyed:
                    payloads[pos].extend(chunk.payloads[pos][a:b])
            total += b - a
            items = [r[0] for r in chunk.rejects]
            for item, stage, rej in chunk.rejects[bisect.bisect_left(items, lo):bisect.bisect_left(items, hi)]:
                keyed_rejects.append((stage, (s, item), rej))
        table = pa.concat_tables(tables) if len(tables) > 1 else (tables[0] if tables else ARROW_SCHEMA.empty_table())

        def locate(i: int) -> Location:
            s = bisect.bisect_right(starts, i) - 1  # the last segment starting at or before row i
            chunk = segments[s][0]
            return chunk.row_loc(firsts[s] + i - starts[s])

        alive = list(range(len(table)))
        rows: list[dict[str, Any]] | None = None  # materialised once a filter needs row dicts
        for pos in range(plan.n_worker, len(plan.filters)):
            if not alive:
                break
            flt = plan.filters[pos]
            changed = None
            if pos in plan.keyed and rows is None:
                verdicts = flt.decide([payloads[pos][i] for i in alive])
            elif rows is None and getattr(flt, "stateless", False) and hasattr(flt, "apply_table"):
                every, changed = _table_verdicts(flt.apply_table(table))  # pure per row: all rows at once
                verdicts = [every[i] for i in alive]
            else:
                if rows is None:
                    rows = _rows_of(table)
                sub = [rows[i] for i in alive]
                verdicts = flt.decide(flt.prepare(sub)) if pos in plan.keyed else flt.apply(sub)
            kept = []
            dropped: list[tuple[int, str]] = []
            for i, reason in zip(alive, verdicts):
                if reason is None:
                    kept.append(i)
                else:
                    dropped.append((i, reason))
            if dropped:
                if rows is not None:
                    raws = [rows[i] for i, _ in dropped]
                else:
                    raws = []
                    for s, pieces in _by_segment([i for i, _ in dropped], starts).items():
                        chunk = segments[s][0]
                        local = [firsts[s] + i - starts[s] for i in pieces]
                        raws.extend(_rows_of(chunk.table.take(pa.array(local, pa.int64()))))
                for (i, reason), row in zip(dropped, raws):
                    keyed_rejects.append((pos + 1, i, reject_record(reason, self.source, locate(i), raw=row, row_id=row["id"])))
            if changed is not None:
                table = changed
            alive = kept
        if rows is not None:
            kept_table = rows_to_table([rows[i] for i in alive]) if alive else ARROW_SCHEMA.empty_table()
        else:
            kept_table = _select(table, alive)
        keyed_rejects.sort(key=lambda r: (r[0], r[1]))
        return TableBatch(kept_table, [rej for _stage, _key, rej in keyed_rejects])


def _by_segment(positions: list[int], starts: list[int]) -> dict[int, list[int]]:
    """Batch row positions (ascending) grouped by the segment they come from, in order."""
    out: dict[int, list[int]] = {}
    for i in positions:
        out.setdefault(bisect.bisect_right(starts, i) - 1, []).append(i)
    return out
