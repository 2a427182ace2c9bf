"""A converted shard (a :class:`Chunk`): kept rows as an Arrow table, rejects and counts, each with its position.

Position contract: a chunk belongs to one shard (``chunk.shard`` = the shard's sequence number in the
plan, which orders shards by input ordinal and then by where they start in the input). Inside a
chunk every converter output (a row or a reject) has an *item ordinal* (0, 1, ... in input order:
records in order, the items of one record in the order the converter made them). The global order
of everything a run produces is ``(chunk.shard, item)``; rows and rejects are written in that order,
so the output does not depend on batch sizes, shard sizes, worker counts or the engine.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ..io.readers import Location
from ..rows import ARROW_SCHEMA, load_meta


def reject_record(
    reason: str, source: str, loc: Location, *, detail: str = "", part: str = "", raw: Any = None, row_id: str = ""
) -> dict[str, Any]:
    """One line of the rejects file."""
    return {
        "reason": reason,
        "source": source,
        "file": loc.file,
        "index": loc.index,
        "line": loc.line,
        "part": part,
        "id": row_id,
        "detail": detail,
        "raw": raw,
    }


def _empty_int() -> np.ndarray:
    return np.zeros(0, np.int64)


@dataclass
class Chunk:
    """What converting one shard gave (see the module docstring for the position contract).

    ``table`` holds the kept rows in item order; ``row_item[i]`` is the item ordinal of row ``i``,
    ``row_index``/``row_line`` its record's ``Location.index``/``line`` (-1: no line) and
    ``row_file[i]`` an index into ``files`` (the input names the shard read). ``rejects`` is a list of
    ``(item, reject)`` in item order. ``payloads[pos]`` is what the keyed filter at chain position
    ``pos`` prepared for each row (decided later, in order, by :meth:`FilterChain.reduce`).
    """

    shard: int
    source: str
    files: list[str] = field(default_factory=list)
    records: int = 0  # records read (tally.records)
    read: int = 0  # converter outputs counted as read (rows + rejects of this chunk)
    table: pa.Table = field(default_factory=ARROW_SCHEMA.empty_table)
    row_item: np.ndarray = field(default_factory=_empty_int)
    row_index: np.ndarray = field(default_factory=_empty_int)
    row_line: np.ndarray = field(default_factory=_empty_int)
    row_file: np.ndarray = field(default_factory=_empty_int)
    rejects: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    payloads: dict[int, list[Any]] = field(default_factory=dict)
    inputs_read: dict[str, tuple[int, str]] = field(default_factory=dict)  # name -> (bytes, xxh3_128) read whole here

    def __len__(self) -> int:
        return len(self.table)

    def row_loc(self, i: int) -> Location:
        line = int(self.row_line[i])
        return Location(self.files[int(self.row_file[i])], int(self.row_index[i]), None if line < 0 else line)

    def to_wire(self, path: str) -> bytes:
        """The chunk for another process: the table goes to ``path`` (Arrow IPC, on tmpfs when there is
        one; the receiver maps it without copying), the rest is pickled."""
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, self.table.schema) as writer:
            writer.write_table(self.table)
        state = dict(self.__dict__, table=path)
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_wire(cls, data: bytes) -> "Chunk":
        state = pickle.loads(data)
        path = state["table"]
        state["table"] = pa.ipc.open_stream(pa.memory_map(path)).read_all()
        os.unlink(path)  # the mapping keeps the data until the table is dropped
        return cls(**state)


# ------------------------------------------------------------------------------- table helpers


def strings(column: Any) -> list[str | None]:
    """A string column's values, decoded straight from its buffers (faster than ``to_pylist``)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.null_count:
        return array.to_pylist()
    _validity, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[array.offset : array.offset + len(array) + 1].tolist()
    data = bytes(data_buf) if data_buf is not None else b""
    return [data[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(len(array))]


def rows_of(table: pa.Table) -> list[dict[str, Any]]:
    """Rows back as dicts (``meta`` as a dict), as converters make them."""
    if not len(table):
        return []
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        columns[name] = strings(column) if pa.types.is_string(column.type) else column.to_pylist()
    names = list(columns)
    rows = [dict(zip(names, values)) for values in zip(*columns.values())]
    for row in rows:
        row["meta"] = load_meta(row)
    return rows


def select(table: pa.Table, keep: list[int] | np.ndarray) -> pa.Table:
    """The rows ``keep`` (ascending) of ``table``, in one contiguous copy (``table`` itself when all are kept)."""
    if len(keep) == len(table):
        return table
    if not len(keep):
        return table.slice(0, 0)
    mask = np.zeros(len(table), dtype=bool)
    mask[np.asarray(keep, dtype=np.int64)] = True
    return table.filter(pa.array(mask))


def table_verdicts(result: Any) -> tuple[list[str | None], pa.Table | None]:
    """``apply_table`` returns the verdicts, or ``(verdicts, table)`` when it changes rows (same rows,
    same order, e.g. a column set)."""
    if isinstance(result, tuple):
        return list(result[0]), result[1]
    return list(result), None
