"""A converted piece of input (a chunk) and turning records or Arrow rows into one, record by record."""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from ..converters import Converter, Reject
from ..io.readers import BadRecord, Location
from ..pipeline import _location_meta, _normalise_and_check, reject_record
from ..rows import ARROW_SCHEMA, load_meta, rows_to_table
from .plan import Plan


@dataclass
class Chunk:
    """What converting one piece of one input gave."""

    name: str
    records: int = 0
    items: int = 0
    read: int = 0
    rec_items: np.ndarray | None = None  # items per record, negative = unreadable (no batch check); None = all 1
    table: pa.Table | None = None  # rows that passed the worker-side filters, in order
    row_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # item ordinal of each row
    row_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # Location.index of each row
    row_line: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # Location.line (-1: none)
    rejects: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)  # (item, stage, reject)
    payloads: dict[int, list[Any]] = field(default_factory=dict)  # filter position -> prepared per row

    def to_wire(self, path: str) -> bytes:
        """The chunk for the main process: the table goes to ``path`` (Arrow IPC, on tmpfs when there
        is one; the main process maps it without copying), the rest is pickled."""
        table = self.table if self.table is not None else ARROW_SCHEMA.empty_table()
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        state = dict(self.__dict__, table=path)
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_wire(cls, data: bytes) -> "Chunk":
        state = pickle.loads(data)
        path = state["table"]
        state["table"] = pa.ipc.open_stream(pa.memory_map(path)).read_all()
        os.unlink(path)  # the mapping keeps the data until the table is dropped
        return cls(**state)

    def row_loc(self, i: int) -> Location:
        line = int(self.row_line[i])
        return Location(self.name, int(self.row_index[i]), None if line < 0 else line)


def _finish_chunk(
    chunk: Chunk, rows: list[dict[str, Any]], locs: list[Location], row_items: list[int], plan: Plan, source: str
) -> Chunk:
    """Run the worker-side filters and prepares over converted rows and build the chunk's table."""
    alive = list(range(len(rows)))
    for pos in range(plan.n_worker):
        if not alive:
            break
        verdicts = plan.filters[pos].apply([rows[i] for i in alive])
        kept = []
        for i, reason in zip(alive, verdicts):
            if reason is None:
                kept.append(i)
            else:
                chunk.rejects.append((row_items[i], pos + 1, reject_record(reason, source, locs[i], raw=rows[i], row_id=rows[i]["id"])))
        alive = kept
    live_rows = [rows[i] for i in alive]
    for pos in plan.keyed:
        chunk.payloads[pos] = plan.filters[pos].prepare(live_rows) if live_rows else []
    chunk.table = rows_to_table(live_rows) if live_rows else ARROW_SCHEMA.empty_table()
    chunk.row_items = np.array([row_items[i] for i in alive], dtype=np.int64)
    chunk.row_index = np.array([locs[i].index for i in alive], dtype=np.int64)
    chunk.row_line = np.array([-1 if locs[i].line is None else locs[i].line for i in alive], dtype=np.int64)
    chunk.rejects.sort(key=lambda r: r[0])
    return chunk


def convert_records(
    records: Iterator[tuple[Any, Location]], name: str, conv: Converter, ctx: Any, category: str | None, plan: Plan
) -> Chunk:
    """Convert records one by one, as :func:`kodolly.pipeline.process` does, into a chunk."""
    source = conv.name
    chunk = Chunk(name)
    rows: list[dict[str, Any]] = []
    locs: list[Location] = []
    row_items: list[int] = []
    rec_items: list[int] = []
    rejects = chunk.rejects
    item = 0
    for record, loc in records:
        if isinstance(record, BadRecord):
            rejects.append((item, 0, reject_record(record.reason, source, loc, detail=record.detail, raw=record.raw)))
            item += 1
            rec_items.append(-1)
            continue
        produced = 0
        for out in conv.convert(record, loc, ctx):
            produced += 1
            if isinstance(out, Reject):
                raw = out.raw if out.raw is not None else record
                rejects.append((item, 0, reject_record(out.reason, source, loc, detail=out.detail, part=out.part, raw=raw)))
            else:
                reason = _normalise_and_check(out, category)
                if reason:
                    rejects.append((item, 0, reject_record(reason, source, loc, raw=record, row_id=out["id"])))
                else:
                    _location_meta(out, loc)
                    rows.append(out)
                    locs.append(loc)
                    row_items.append(item)
            item += 1
        if not produced:
            rejects.append((item, 0, reject_record("no_rows", source, loc, detail="the record yields no row", raw=record)))
            item += 1
            produced = 1
        rec_items.append(produced)
    chunk.records = len(rec_items)
    chunk.items = chunk.read = item
    if any(n != 1 for n in rec_items):
        chunk.rec_items = np.array(rec_items, dtype=np.int64)
    return _finish_chunk(chunk, rows, locs, row_items, plan, source)


def _strings(column: Any) -> list[str | None]:
    """A string column's values, decoded straight from its buffers (faster than ``to_pylist``;
    ``to_numpy`` would import pandas)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.null_count:
        return array.to_pylist()
    _validity, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[array.offset : array.offset + len(array) + 1].tolist()
    data = bytes(data_buf) if data_buf is not None else b""
    return [data[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(len(array))]


def _table_verdicts(result: Any) -> tuple[list[str | None], pa.Table | None]:
    """``apply_table`` returns the verdicts, or ``(verdicts, table)`` when it changes rows (same rows,
    same order, e.g. a column set): rejected rows are reported as they were given to the filter."""
    if isinstance(result, tuple):
        return list(result[0]), result[1]
    return list(result), None


def _rows_of(table: pa.Table) -> list[dict[str, Any]]:
    """Rows back as dicts (``meta`` as a dict), as the pipeline has them."""
    if not len(table):
        return []
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        columns[name] = _strings(column) if pa.types.is_string(column.type) else column.to_pylist()
    names = list(columns)
    rows = [dict(zip(names, values)) for values in zip(*columns.values())]
    for row in rows:
        row["meta"] = load_meta(row)
    return rows


def _select(table: pa.Table, keep: list[int]) -> pa.Table:
    """The rows ``keep`` (ascending) of ``table``, as zero-copy slices of its runs of kept rows."""
    if len(keep) == len(table):
        return table
    if not keep:
        return table.slice(0, 0)
    idx = np.asarray(keep, dtype=np.int64)
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(idx)]))
    return pa.concat_tables([table.slice(int(idx[a]), int(b - a)) for a, b in zip(starts, ends)])
