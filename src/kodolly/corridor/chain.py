"""The filter chain: one object that runs a run's filters, split between ``map`` and ``reduce``.

A filter answers, per row, ``None`` (keep) or a reason ``<filter>_<why>``; the chain (not the
filter) turns drops into rejects. What runs where:

- ``stateless = True``: the verdict (and any change to the row) depends on that row alone. The
  stateless filters at the head of the chain run in :meth:`map_rows` / :meth:`map_table`, i.e. inside
  :func:`~kodolly.corridor.convert_shard`, wherever the engine runs it.
- keyed filters (``prepare(rows) -> list`` and ``decide(prepared) -> [reason | None]``; exact
  dedup): ``prepare`` (pure, per row) runs in ``map``; ``decide`` runs in :meth:`reduce`, on the
  driver, chunk after chunk in position order. ``apply(rows)`` must equal ``decide(prepare(rows))``.
- every other filter (``apply`` only, e.g. near-dup) runs in :meth:`reduce`, in position order.
- ``apply_table(table)`` (stateless filters; verdicts, or ``(verdicts, table)`` when it sets a
  column) and ``prepare_table(table)`` (keyed filters) work on Arrow tables: the columnar fast path
  needs them for every filter of the map half.

Because ``reduce`` sees chunks in position order and each chunk's rows in position order, a keyed
or stateful filter's decisions do not depend on how the input was cut.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np
import pyarrow as pa

from ..rows import ARROW_SCHEMA, rows_to_table
from .chunks import Chunk, reject_record, rows_of, select, table_verdicts


class Filter(Protocol):
    """A filter: per row of a batch, ``None`` to keep it or a reason ``<filter>_<why>`` to drop it."""

    name: str

    def settings(self) -> dict[str, Any]: ...

    def apply(self, rows: list[dict[str, Any]]) -> list[str | None]: ...


class FilterChain:
    """A run's filters, in order, and which of them run in ``map`` (worker side) and ``reduce`` (driver)."""

    def __init__(self, filters: Sequence[Any] = ()) -> None:
        self.filters = list(filters)
        n_map = 0
        while n_map < len(self.filters) and getattr(self.filters[n_map], "stateless", False):
            n_map += 1
        keyed = set()
        for pos in range(n_map, len(self.filters)):
            flt = self.filters[pos]
            if hasattr(flt, "prepare") and hasattr(flt, "decide"):
                keyed.add(pos)
            elif not getattr(flt, "stateless", False):
                break  # a filter that may change rows: later ones prepare in reduce
        self.n_map = n_map  # filters[:n_map] run in map
        self.keyed = frozenset(keyed)  # reduce-side filters whose prepare runs in map

    def __len__(self) -> int:
        return len(self.filters)

    def settings(self) -> list[dict[str, Any]]:
        """``[{name, settings}]`` per filter, as the manifest and the report record them."""
        return [{"name": f.name, "settings": f.settings()} for f in self.filters]

    @property
    def columnar_ok(self) -> bool:
        """Whether the map half can run on Arrow tables (the fast path needs it)."""
        return all(hasattr(f, "apply_table") for f in self.filters[: self.n_map]) and all(
            hasattr(self.filters[pos], "prepare_table") for pos in self.keyed
        )

    # ------------------------------------------------------------------------------------ map

    def map_rows(
        self, chunk: Chunk, rows: list[dict[str, Any]], items: np.ndarray, index: np.ndarray, line: np.ndarray, file: np.ndarray
    ) -> None:
        """The map half over converted row dicts; fills the chunk's table, row arrays and payloads."""
        alive = list(range(len(rows)))
        for pos in range(self.n_map):
            if not alive:
                break
            verdicts = self.filters[pos].apply([rows[i] for i in alive])
            kept = []
            for i, reason in zip(alive, verdicts):
                if reason is None:
                    kept.append(i)
                else:
                    loc = _loc(chunk, index, line, file, i)
                    chunk.rejects.append((int(items[i]), reject_record(reason, chunk.source, loc, raw=rows[i], row_id=rows[i]["id"])))
            alive = kept
        live = [rows[i] for i in alive]
        for pos in self.keyed:
            chunk.payloads[pos] = self.filters[pos].prepare(live) if live else []
        keep = np.asarray(alive, dtype=np.int64)
        chunk.table = rows_to_table(live) if live else ARROW_SCHEMA.empty_table()
        chunk.row_item, chunk.row_index, chunk.row_line, chunk.row_file = items[keep], index[keep], line[keep], file[keep]
        chunk.rejects.sort(key=lambda r: r[0])

    def map_table(
        self, chunk: Chunk, table: pa.Table, items: np.ndarray, index: np.ndarray, line: np.ndarray, file: np.ndarray
    ) -> None:
        """The map half over an Arrow table of converted rows (needs :attr:`columnar_ok`)."""
        for pos in range(self.n_map):
            if not len(table):
                break
            verdicts, changed = table_verdicts(self.filters[pos].apply_table(table))
            mask = np.array([v is None for v in verdicts], dtype=bool)
            if not mask.all():
                dropped = np.flatnonzero(~mask)
                for j, row in zip(dropped.tolist(), rows_of(table.take(pa.array(dropped)))):
                    loc = _loc(chunk, index, line, file, j)
                    chunk.rejects.append((int(items[j]), reject_record(verdicts[j], chunk.source, loc, raw=row, row_id=row["id"])))
            if changed is not None:
                table = changed
            if not mask.all():
                table = table.filter(pa.array(mask))
                items, index, line, file = items[mask], index[mask], line[mask], file[mask]
        for pos in self.keyed:
            chunk.payloads[pos] = self.filters[pos].prepare_table(table) if len(table) else []
        chunk.table = table
        chunk.row_item, chunk.row_index, chunk.row_line, chunk.row_file = items, index, line, file
        chunk.rejects.sort(key=lambda r: r[0])

    # --------------------------------------------------------------------------------- reduce

    def reduce(self, chunk: Chunk) -> Chunk:
        """The rest of the chain over one chunk, on the driver; call it for chunks in position order.
        Afterwards the chunk holds only kept rows and all its rejects, in position order."""
        table = chunk.table
        n = len(table)
        alive = np.arange(n, dtype=np.int64)  # rows of ``table`` still kept, ascending
        rows: list[dict[str, Any]] | None = None  # materialised once a filter needs row dicts
        dropped_any = False
        for pos in range(self.n_map, len(self.filters)):
            if not len(alive):
                break
            flt = self.filters[pos]
            changed = None
            whole = len(alive) == n
            if pos in self.keyed and rows is None:
                payload = chunk.payloads[pos]
                verdicts = flt.decide(payload if whole else [payload[i] for i in alive.tolist()])
            elif rows is None and getattr(flt, "stateless", False) and hasattr(flt, "apply_table"):
                every, changed = table_verdicts(flt.apply_table(table))  # pure per row: all rows at once
                verdicts = every if whole else [every[i] for i in alive.tolist()]
            else:
                if rows is None:
                    rows = rows_of(table)
                sub = list(rows) if whole else [rows[i] for i in alive.tolist()]
                verdicts = flt.decide(flt.prepare(sub)) if pos in self.keyed else flt.apply(sub)
            verdicts = verdicts if isinstance(verdicts, list) else list(verdicts)
            if len(verdicts) != len(alive):  # a broken filter: rows without a verdict vanish (the tally says so)
                m = min(len(verdicts), len(alive))
                verdicts, alive = verdicts[:m], alive[:m]
            if verdicts.count(None) != len(verdicts):
                dropped_any = True
                hits = [k for k, reason in enumerate(verdicts) if reason is not None]
                dropped = alive[hits].tolist()
                raws = [rows[i] for i in dropped] if rows is not None else rows_of(table.take(pa.array(dropped, pa.int64())))
                for k, i, row in zip(hits, dropped, raws):
                    chunk.rejects.append((int(chunk.row_item[i]), reject_record(verdicts[k], chunk.source, chunk.row_loc(i), raw=row, row_id=row["id"])))
                keep = np.ones(len(alive), dtype=bool)
                keep[hits] = False
                alive = alive[keep]
            if changed is not None:
                table = changed
        if rows is not None:
            table = rows_to_table([rows[i] for i in alive.tolist()]) if len(alive) else ARROW_SCHEMA.empty_table()
        else:
            table = select(table, alive)
        chunk.table = table
        chunk.row_item, chunk.row_index, chunk.row_line, chunk.row_file = (
            chunk.row_item[alive], chunk.row_index[alive], chunk.row_line[alive], chunk.row_file[alive],
        )
        chunk.payloads = {}
        if dropped_any:
            chunk.rejects.sort(key=lambda r: r[0])
        return chunk


def _loc(chunk: Chunk, index: np.ndarray, line: np.ndarray, file: np.ndarray, i: int):
    from ..io.readers import Location

    ln = int(line[i])
    return Location(chunk.files[int(file[i])], int(index[i]), None if ln < 0 else ln)
