"""Parallel conversion: worker processes convert shards of the input, the main process filters in order.

:func:`process` yields the same stream of batches as :func:`kodolly.pipeline.process` — the same
rows, the same rejects in the same order, the same batch boundaries, the same calls to the filters —
so the output of a run does not depend on the number of workers.

How the work is split:

- A JSON Lines input (``.jsonl``/``.ndjson``, or ``.json`` holding JSON Lines; UTF-8 or cp949) is cut
  into chunks of about ``CHUNK_BYTES`` at line ends. The main process reads the input once (it is
  hashed for the manifest as usual) and counts the lines of each chunk, so a worker knows the line
  number and record index its chunk starts at. Chunk ``k`` goes to worker ``k % workers``; plain
  files are re-read by the workers at their offset, other inputs (gzip, zip members) are sent.
- Other inputs (JSON arrays and envelopes, CSV, UTF-16) are converted by the main process itself.
- A worker parses, converts, normalises and checks each record of its chunk exactly as the
  sequential pipeline does, runs the filters it may run (below) and sends back an Arrow table of
  the rows with the rejects. When the converter has a columnar fast path (``Converter.columnar``)
  and the chunk is plain, the chunk is parsed by ``pyarrow.json`` instead and only the texts that
  can change under normalisation go through :func:`kodolly.normalize.normalize_text`.
- The main process puts the chunks back in input order, cuts them into the batches the sequential
  pipeline would have made, applies the remaining filters batch by batch, in order, and writes.

Filters and workers (all optional; a filter without them simply runs in the main process on rows
read back from the batch's table, which is correct but slower):

- ``stateless = True``: the filter's verdict (and any change it makes to a row) depends on that
  row alone. The stateless filters at the head of the chain run in the workers.
- ``prepare(rows) -> list`` and ``decide(prepared) -> list[reason | None]``: a stateful filter split
  into a pure per-row part, run in the workers, and an order-dependent part, run in the main process
  in input order (exact dedup: prepare hashes the key, decide looks it up). ``apply(rows)`` must equal
  ``decide(prepare(rows))``.
- ``prepare_table(table)`` and, for stateless filters, ``apply_table(table)`` (verdicts, or
  ``(verdicts, table)`` when the filter sets a column, like a split step) work on the Arrow table of a
  batch: the columnar fast path needs them (without them the chunk is converted record by record),
  and a stateless filter after a stateful one then runs in the main process without row dicts.
"""

from __future__ import annotations

import bisect
import codecs
import io
import multiprocessing
import os
import pickle
import queue as queue_mod
import re
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import orjson
import pyarrow as pa

from .converters import Converter, Reject
from .errors import ConfigError, KodollyError
from .io.readers import SNIFF_BYTES, BadRecord, Location, _looks_like_jsonl, _line_text, detect_encoding, read_records
from .io.sources import Input
from .normalize import needs_work_pattern, normalize_text
from .pipeline import Batch, Filter, _location_meta, _normalise_and_check, reject_record
from .rows import ARROW_SCHEMA, DOLLY_CATEGORIES, load_meta, rows_to_table
from .tally import Tally

CHUNK_BYTES = 8 << 20
INLINE_RECORDS = 4096
_BOM = codecs.BOM_UTF8
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_WS = np.zeros(256, dtype=bool)
_WS[[0x20, 0x09, 0x0D, 0x0A, 0x0B, 0x0C]] = True


def default_workers() -> int:
    """Worker processes for a run when not given: the usable cores, at most 2 (beyond that the
    single writing process is the limit)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


class WorkerError(KodollyError):
    """A worker process failed; the message carries its traceback."""


# ------------------------------------------------------------------------------ filter roles


@dataclass
class _Plan:
    """How the filter chain is split between the workers and the main process."""

    filters: list[Any]
    n_worker: int  # filters[:n_worker] run in the workers (stateless head of the chain)
    keyed: frozenset[int]  # positions of main-process filters whose prepare() runs in the workers

    @classmethod
    def of(cls, filters: Sequence[Any]) -> "_Plan":
        filters = list(filters)
        n_worker = 0
        while n_worker < len(filters) and getattr(filters[n_worker], "stateless", False):
            n_worker += 1
        keyed = set()
        for pos in range(n_worker, len(filters)):
            flt = filters[pos]
            if hasattr(flt, "prepare") and hasattr(flt, "decide"):
                keyed.add(pos)
            elif not getattr(flt, "stateless", False):
                break  # a filter that may change rows: later ones prepare in the main process
        return cls(filters, n_worker, frozenset(keyed))

    def columnar_ok(self) -> bool:
        return all(hasattr(f, "apply_table") for f in self.filters[: self.n_worker]) and all(
            hasattr(self.filters[pos], "prepare_table") for pos in self.keyed
        )


# ------------------------------------------------------------------------------ chunk results


@dataclass
class _Chunk:
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
    def from_wire(cls, data: bytes) -> "_Chunk":
        state = pickle.loads(data)
        path = state["table"]
        state["table"] = pa.ipc.open_stream(pa.memory_map(path)).read_all()
        os.unlink(path)  # the mapping keeps the data until the table is dropped
        return cls(**state)

    def row_loc(self, i: int) -> Location:
        line = int(self.row_line[i])
        return Location(self.name, int(self.row_index[i]), None if line < 0 else line)


def _finish_chunk(
    chunk: _Chunk, rows: list[dict[str, Any]], locs: list[Location], row_items: list[int], plan: _Plan, source: str
) -> _Chunk:
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
    records: Iterator[tuple[Any, Location]], name: str, conv: Converter, ctx: Any, category: str | None, plan: _Plan
) -> _Chunk:
    """Convert records one by one, as :func:`kodolly.pipeline.process` does, into a chunk."""
    source = conv.name
    chunk = _Chunk(name)
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


# ------------------------------------------------------------------------------ JSONL chunks


def _line_pieces(data: bytes) -> list[bytes]:
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    return pieces


def count_lines(data: bytes, first: bool) -> tuple[int, int]:
    """(lines, records) in a chunk that ends at a line end (or at the end of the input)."""
    view = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(view == 0x0A)
    lines = len(newlines) + (0 if data.endswith(b"\n") else 1)
    starts = newlines + 1
    starts = starts[starts < len(data)]
    suspicious = bool(_WS[view[starts]].any()) if len(starts) else False
    if data and (_WS[data[0]] or (first and data.startswith(_BOM))):
        suspicious = True
    if not suspicious:
        return lines, lines
    blank = 0
    for n, raw in enumerate(_line_pieces(data)):
        if first and n == 0 and raw.startswith(_BOM):
            raw = raw[3:]
        if not raw.strip():
            blank += 1
    return lines, lines - blank


def iter_jsonl_chunk(data: bytes, name: str, encoding: str, line_no: int, index: int) -> Iterator[tuple[Any, Location]]:
    """The records of a chunk of JSON Lines, exactly as :func:`kodolly.io.readers.read_records` yields them."""
    utf8 = encoding in ("utf-8", "utf-8-sig")
    pieces = data.split(b"\n")
    last = len(pieces) - 1
    loads = orjson.loads
    for k, raw in enumerate(pieces):
        if k == last and not raw:
            break
        ln = line_no + k
        if ln == 1 and raw.startswith(_BOM):
            raw = raw[3:]
        if not raw.strip():
            continue
        loc = Location(name, index, ln)
        index += 1
        try:
            record = loads(raw) if utf8 else loads(raw.decode(encoding))
        except (UnicodeDecodeError, orjson.JSONDecodeError):
            full = raw + b"\n" if k < last else raw  # the sequential reader sees the line with its newline
            try:
                record = loads(full) if utf8 else loads(full.decode(encoding))
            except UnicodeDecodeError as exc:
                yield BadRecord("bad_encoding", _line_text(full, encoding).rstrip("\r\n"), str(exc)), loc
                continue
            except orjson.JSONDecodeError as exc:
                reason = "bad_encoding" if "UTF-8" in str(exc) else "bad_json"
                yield BadRecord(reason, _line_text(full, encoding).rstrip("\r\n"), str(exc)), loc
                continue
        yield record, loc


_NEEDS_WORK = needs_work_pattern(re2=True)


def _normalise_column(column: Any) -> Any:
    """Normalise a string column: only the values the fast check flags go through Python."""
    import pyarrow.compute as pc

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    mask = pc.match_substring_regex(array, _NEEDS_WORK)
    if not pc.any(mask).as_py():
        return array
    idx = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    fixed = [normalize_text(v) for v in array.take(pa.array(idx)).to_pylist()]
    return pc.replace_with_mask(array, mask, pa.array(fixed, pa.string()))


def convert_columnar(
    data: bytes, name: str, first: bool, line_no: int, index: int, n_records: int,
    conv: Converter, ctx: Any, category: str | None, plan: _Plan,
) -> _Chunk | None:
    """The fast path for a plain UTF-8 JSONL chunk, or None when it does not apply."""
    import pyarrow.compute as pc
    import pyarrow.json as pj

    if conv.columnar is None or not plan.columnar_ok() or not n_records:
        return None
    view = np.frombuffer(data, dtype=np.uint8)
    if (first and bytes(view[:3]) == _BOM) or _SURROGATE_ESCAPE.search(data):
        return None
    # Raw control characters inside strings make pyarrow.json fail (as orjson does): no check needed.
    try:
        records = pj.read_json(
            pa.BufferReader(data),
            read_options=pj.ReadOptions(use_threads=False, block_size=len(data) + 1),
        )
        records.validate(full=True)  # pyarrow.json lets invalid UTF-8 through; orjson rejects it
        records.column_names  # noqa: B018 - decoding the keys raises on invalid UTF-8 too
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        return None
    if records.num_rows != n_records:
        return None
    columns = conv.columnar(records, ctx)
    if columns is None:
        return None
    n = n_records
    texts = {key: _normalise_column(columns[key]) for key in ("instruction", "context", "response")}
    cat = category if category is not None else columns["category"]
    if category is None and not isinstance(cat, str):
        return None  # a per-row category column is not used by any fast path yet
    # row positions -> line numbers, and where each line starts
    newlines = np.flatnonzero(view == 0x0A)
    line_starts = np.concatenate(([0], newlines + 1))
    line_ends = np.concatenate((newlines, [len(view)]))
    if len(line_starts) > 1 and line_starts[-1] >= len(view):  # the chunk ends with a newline
        line_starts, line_ends = line_starts[:-1], line_ends[:-1]
    if len(line_starts) == n_records:
        lines = np.arange(line_no, line_no + n, dtype=np.int64)
    else:
        blank = [not bytes(view[a:b]).strip() for a, b in zip(line_starts.tolist(), line_ends.tolist())]
        lines = line_no + np.flatnonzero(~np.array(blank, dtype=bool)).astype(np.int64)
    indices = np.arange(index, index + n, dtype=np.int64)
    base = name.rsplit("!", 1)[-1].rsplit("/", 1)[-1]
    ids = [f"{base}:{i}" for i in range(index, index + n)]
    meta_head = orjson.dumps({"file": name}).decode()[:-1] + ',"line":'
    metas = [f"{meta_head}{ln}}}" for ln in lines.tolist()]
    chunk = _Chunk(name, records=n, items=n, read=n)
    empty_i = pc.equal(pc.binary_length(texts["instruction"]), 0)
    empty_r = pc.equal(pc.binary_length(texts["response"]), 0)
    empty = pc.or_(empty_i, empty_r)
    keep = np.ones(n, dtype=bool)
    if pc.any(empty).as_py():
        ei = empty_i.to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(empty.to_numpy(zero_copy_only=False)).tolist():
            keep[i] = False
            reason = "empty_field:instruction" if ei[i] else "empty_field:response"
            loc = Location(name, index + i, int(lines[i]))
            k = int(lines[i]) - line_no
            raw = orjson.loads(bytes(view[line_starts[k]:line_ends[k]]))
            chunk.rejects.append((i, 0, reject_record(reason, conv.name, loc, raw=raw, row_id=ids[i])))
    table = pa.Table.from_arrays(
        [
            texts["instruction"], texts["context"], texts["response"],
            pa.repeat(pa.scalar(cat, pa.string()), n),
            pa.repeat(pa.scalar(conv.name, pa.string()), n),
            pa.array(ids, pa.string()),
            pa.repeat(pa.scalar("", pa.string()), n),
            pa.nulls(n, pa.float64()),
            pa.repeat(pa.scalar(ctx.license, pa.string()), n),
            pa.array(metas, pa.string()),
        ],
        schema=ARROW_SCHEMA,
    )
    positions = np.arange(n, dtype=np.int64)
    if not keep.all():
        table = table.filter(pa.array(keep))
        positions = positions[keep]
    for pos in range(plan.n_worker):
        if not len(table):
            break
        verdicts, changed = _table_verdicts(plan.filters[pos].apply_table(table))
        mask = np.array([v is None for v in verdicts], dtype=bool)
        if not mask.all():
            rejected = table.filter(pa.array(~mask))
            for j, row in zip(np.flatnonzero(~mask).tolist(), _rows_of(rejected)):
                p = int(positions[j])
                loc = Location(name, index + p, int(lines[p]))
                chunk.rejects.append((p, pos + 1, reject_record(verdicts[j], conv.name, loc, raw=row, row_id=row["id"])))
        if changed is not None:
            table = changed
        if not mask.all():
            table = table.filter(pa.array(mask))
            positions = positions[mask]
    for pos in plan.keyed:
        chunk.payloads[pos] = plan.filters[pos].prepare_table(table) if len(table) else []
    chunk.table = table
    chunk.row_items = positions
    chunk.row_index = indices[positions]
    chunk.row_line = lines[positions]
    chunk.rejects.sort(key=lambda r: r[0])
    return chunk


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


# ------------------------------------------------------------------------------ workers


@dataclass
class _Setup:
    converter: Converter
    options: Mapping[str, Any] | None
    category: str | None
    filters: list[Any]


def _run_task(task: dict[str, Any], conv: Converter, ctx: Any, category: str | None, plan: _Plan) -> _Chunk:
    data = task.get("data")
    if data is None:  # a plain file: map it, no copy
        with pa.memory_map(task["path"]) as source:
            source.seek(task["offset"])
            data = source.read_buffer(task["length"])
    if task["encoding"] in ("utf-8", "utf-8-sig"):
        chunk = convert_columnar(
            data, task["name"], task["first"], task["line"], task["index"], task["records"], conv, ctx, category, plan
        )
        if chunk is not None:
            return chunk
    if not isinstance(data, bytes):
        data = data.to_pybytes()
    records = iter_jsonl_chunk(data, task["name"], task["encoding"], task["line"], task["index"])
    return convert_records(records, task["name"], conv, ctx, category, plan)


def _worker_main(setup_bytes: bytes, tasks: Any, results: Any, spool: str) -> None:
    try:
        setup: _Setup = pickle.loads(setup_bytes)
        conv = setup.converter
        ctx = conv.context(setup.options)
        plan = _Plan.of(setup.filters)
    except BaseException:
        results.put(("error", traceback.format_exc()))
        return
    seq = 0
    while True:
        task = tasks.get()
        if task is None:
            return
        try:
            seq += 1
            path = os.path.join(spool, f"{os.getpid()}-{seq}.arrow")
            results.put(_run_task(task, conv, ctx, setup.category, plan).to_wire(path))
        except BaseException:
            results.put(("error", traceback.format_exc()))
            return


class _Pool:
    """``n`` worker processes, each with its own task and result queue (tasks go round-robin)."""

    def __init__(self, n: int, setup: bytes) -> None:
        # fork: no re-import of the caller's __main__ (a script without a main guard works) and no
        # start-up cost. The parquet writer starts its thread lazily, after the workers exist.
        mp = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        import tempfile

        shm = "/dev/shm"
        self.spool = tempfile.mkdtemp(prefix="kodolly-", dir=shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None)
        self.tasks = [mp.Queue() for _ in range(n)]
        self.results = [mp.Queue(maxsize=3) for _ in range(n)]
        self.procs = [
            mp.Process(target=_worker_main, args=(setup, self.tasks[w], self.results[w], self.spool), daemon=True, name=f"kodolly-worker-{w}")
            for w in range(n)
        ]
        for proc in self.procs:
            proc.start()
        self.next = 0
        self.outstanding: deque[int] = deque()

    def submit(self, task: dict[str, Any]) -> None:
        w = self.next
        self.tasks[w].put(task)
        self.outstanding.append(w)
        self.next = (w + 1) % len(self.procs)

    def receive(self) -> _Chunk:
        w = self.outstanding.popleft()
        while True:
            try:
                msg = self.results[w].get(timeout=1.0)
                break
            except queue_mod.Empty:
                if not self.procs[w].is_alive():
                    raise WorkerError(f"worker {w} died (exit code {self.procs[w].exitcode})") from None
        if isinstance(msg, tuple):
            raise WorkerError(f"worker {w} failed:\n{msg[1]}")
        return _Chunk.from_wire(msg)

    def close(self) -> None:
        for q in self.tasks:
            try:
                q.put(None)
            except (ValueError, OSError):  # pragma: no cover
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        for q in self.tasks + self.results:
            q.close()
            q.cancel_join_thread()
        import shutil

        shutil.rmtree(self.spool, ignore_errors=True)


# ------------------------------------------------------------------------------ main process


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


class _Batcher:
    """Cut the chunk stream into the sequential pipeline's batches and run the main-side filters."""

    def __init__(self, batch_size: int, plan: _Plan, source: str) -> None:
        self.batch_size = batch_size
        self.plan = plan
        self.source = source
        self.segments: list[tuple[_Chunk, int, int]] = []
        self.pending = 0

    def feed(self, chunk: _Chunk) -> Iterator[TableBatch]:
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


def _chunkable(inp: Input, head: bytes, encoding: str) -> bool:
    if encoding not in ("utf-8", "utf-8-sig", "cp949"):
        return False
    if inp.suffix in (".jsonl", ".ndjson"):
        return True
    return inp.suffix == ".json" and _looks_like_jsonl(head.lstrip(_BOM))


def _plain_file(inp: Input) -> str | None:
    return inp.name if os.path.isfile(inp.name) and not inp.name.lower().endswith(".gz") else None


class _DirectReader:
    """A plain file read block by block through short-lived memory maps (no copy, and the process
    never holds more than one block of the file), hashed and counted as ``Input.open()`` does."""

    def __init__(self, inp: Input) -> None:
        self.inp = inp
        inp.hasher.reset()
        inp.bytes_read = 0
        self.fh = open(inp.name, "rb")
        self.size = os.fstat(self.fh.fileno()).st_size
        self.pos = 0
        self.map: Any = None

    def read(self, n: int) -> Any:
        import mmap

        self._unmap()
        length = min(n, self.size - self.pos)
        if length <= 0:
            return b""
        skip = self.pos % mmap.ALLOCATIONGRANULARITY  # maps start at a page boundary
        self.map = mmap.mmap(self.fh.fileno(), length + skip, access=mmap.ACCESS_READ, offset=self.pos - skip)
        self.view = memoryview(self.map)[skip:]
        self.pos += length
        self.inp.hasher.update(self.view)
        self.inp.bytes_read += length
        return self.view

    def _unmap(self) -> None:
        if self.map is not None:
            try:
                self.view.release()
                self.map.close()
            except BufferError:  # a view of it is still alive; it goes when that does
                pass
            self.map = None

    def close(self) -> None:
        self._unmap()
        self.fh.close()


def _jsonl_tasks(inp: Input, stream: Any, encoding: str) -> Iterator[dict[str, Any]]:
    """Cut a JSONL input into chunk tasks at line ends, counting lines and records as it goes."""
    path = _plain_file(inp)
    if path is not None:
        stream.close()
        stream = _DirectReader(inp)
    offset, line, index, first = 0, 1, 0, True
    carry = b""  # the start of a line begun in the previous block
    try:
        while True:
            block = stream.read(CHUNK_BYTES)
            if not len(block):
                if carry:
                    lines, records = count_lines(carry, first)
                    yield _task(inp, path, encoding, offset, carry, line, index, records, first)
                return
            view = np.frombuffer(block, dtype=np.uint8)
            newlines = np.flatnonzero(view == 0x0A)
            if not len(newlines):
                carry += bytes(block)
                continue
            cut = int(newlines[-1]) + 1
            lines = len(newlines)
            starts = newlines[:-1] + 1  # line starts inside the chunk, after its first line
            head = carry[:3] if carry else bytes(block[:3])
            suspicious = bool(_WS[view[starts]].any()) or _WS[head[0]] or (first and head.startswith(_BOM))
            data = carry + bytes(block[:cut]) if (path is None or suspicious) else None
            records = count_lines(data, first)[1] if suspicious else lines
            yield _task(inp, path, encoding, offset, data, line, index, records, first, length=len(carry) + cut)
            offset += len(carry) + cut
            line += lines
            index += records
            first = False
            carry = bytes(block[cut:])
            del view, block
    finally:
        stream.close()


def _task(inp, path, encoding, offset, data, line, index, records, first, length=None) -> dict[str, Any]:
    return {
        "name": inp.name, "path": path, "offset": offset, "length": len(data) if length is None else length,
        "data": None if path else data, "line": line, "index": index, "records": records,
        "encoding": encoding, "first": first,
    }


def process(
    inputs: Sequence[Input],
    converter: Converter,
    *,
    options: Mapping[str, Any] | None = None,
    category: str | None = None,
    filters: Sequence[Filter] = (),
    tally: Tally,
    batch_size: int,
    workers: int,
) -> Iterator[Batch | TableBatch]:
    """Like :func:`kodolly.pipeline.process`, with ``workers`` processes converting JSONL chunks."""
    if category is not None and category not in DOLLY_CATEGORIES:
        raise ConfigError(f"--category {category!r} is not a Dolly task type: {', '.join(sorted(DOLLY_CATEGORIES))}")
    ctx = converter.context(options)
    plan = _Plan.of(filters)
    counts = tally.source(converter.name)
    batcher = _Batcher(batch_size, plan, converter.name)
    pool: _Pool | None = None
    inline_only = False
    window = 2 * workers

    def take(chunk: _Chunk) -> Iterator[TableBatch]:
        tally.records += chunk.records
        counts.read += chunk.read
        yield from batcher.feed(chunk)

    try:
        for inp in inputs:
            stream = inp.open()
            try:
                head = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]
                empty = not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe")
                encoding = detect_encoding(head) if not empty else ""
                if not empty and _chunkable(inp, head, encoding):
                    tasks = _jsonl_tasks(inp, stream, encoding)
                    first_task = next(tasks)
                    second_task = next(tasks, None)
                    if pool is None and second_task is not None and not inline_only:
                        try:
                            setup = pickle.dumps(_Setup(converter, dict(options) if options else None, category, list(filters)))
                        except Exception as exc:  # cannot travel to a worker: convert here
                            import warnings

                            warnings.warn(f"converting in one process: the converter or a filter cannot be sent to worker processes ({exc})", stacklevel=2)
                            inline_only = True
                        else:
                            pool = _Pool(workers, setup)
                    if pool is None:  # a small input (one chunk), or nothing can be sent to workers
                        for task in _chain(first_task, second_task, tasks):
                            yield from take(_run_task(task, converter, ctx, category, plan))
                        continue
                    for task in _chain(first_task, second_task, tasks):
                        pool.submit(task)
                        while len(pool.outstanding) > window:
                            yield from take(pool.receive())
                    while pool.outstanding:
                        yield from take(pool.receive())
                    continue
            finally:
                stream.close()
            # not chunkable: converted here, in the main process, in pieces
            while pool is not None and pool.outstanding:
                yield from take(pool.receive())
            records = read_records(inp, converter.record_paths)
            while True:
                piece = _take(records, INLINE_RECORDS)
                if not piece:
                    break
                yield from take(convert_records(iter(piece), inp.name, converter, ctx, category, plan))
        while pool is not None and pool.outstanding:
            yield from take(pool.receive())
        yield batcher.finish()
    finally:
        if pool is not None:
            pool.close()


def _chain(first: Any, second: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    if second is not None:
        yield second
    yield from rest


def _take(it: Iterator[Any], n: int) -> list[Any]:
    out = []
    for x in it:
        out.append(x)
        if len(out) >= n:
            break
    return out
