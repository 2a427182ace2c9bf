"""Parallel conversion: worker processes convert shards of the input, the main process filters in order.

Modules: :mod:`.jsonl` (cutting JSON Lines into chunks), :mod:`.chunks` (a converted chunk; the
record-by-record path), :mod:`.columnar` (the pyarrow.json fast path), :mod:`.workers` (the processes),
:mod:`.plan` (which filters run where), :mod:`.batcher` (back in order, in batches, main-side filters).

:func:`process` yields the same stream of batches as :func:`kodolly.pipeline.process` — the same
rows, the same rejects in the same order, the same batch boundaries, the same calls to the filters —
so the output of a run does not depend on the number of workers.

How the work is split:

- A JSON Lines input (``.jsonl``/``.ndjson``, or ``.json`` holding JSON Lines; UTF-8 or cp949) is cut
  into chunks of about ``jsonl.CHUNK_BYTES`` at line ends. The main process reads the input once (it is
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

import os
import pickle
from typing import Any, Iterator, Mapping, Sequence

from ..converters import Converter
from ..io.readers import read_records, sniff
from ..io.sources import Input
from ..pipeline import Batch, Filter, check_category
from ..tally import Tally
from .batcher import Batcher, TableBatch
from .chunks import Chunk, convert_records
from .jsonl import _chunkable, _jsonl_tasks, count_lines
from .plan import Plan
from .workers import Pool, Setup, WorkerError, run_task

__all__ = ["process", "default_workers", "TableBatch", "WorkerError", "count_lines"]

INLINE_RECORDS = 4096


def default_workers() -> int:
    """Worker processes for a run when not given: the usable cores, at most 2 (beyond that the
    single writing process is the limit)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


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
    check_category(category)
    ctx = converter.context(options)
    plan = Plan.of(filters)
    counts = tally.source(converter.name)
    batcher = Batcher(batch_size, plan, converter.name)
    pool: Pool | None = None
    inline_only = False
    window = 2 * workers

    def take(chunk: Chunk) -> Iterator[TableBatch]:
        tally.records += chunk.records
        counts.read += chunk.read
        yield from batcher.feed(chunk)

    try:
        for inp in inputs:
            found = sniff(inp)
            stream = inp.open()
            try:
                head = found.data_head
                encoding = found.encoding if not found.empty else ""
                if not found.empty and _chunkable(inp, head, encoding):
                    tasks = _jsonl_tasks(inp, stream, encoding)
                    first_task = next(tasks)
                    second_task = next(tasks, None)
                    if pool is None and second_task is not None and not inline_only:
                        try:
                            setup = pickle.dumps(Setup(converter, dict(options) if options else None, category, list(filters)))
                        except Exception as exc:  # cannot travel to a worker: convert here
                            import warnings

                            warnings.warn(f"converting in one process: the converter or a filter cannot be sent to worker processes ({exc})", stacklevel=2)
                            inline_only = True
                        else:
                            pool = Pool(workers, setup)
                    if pool is None:  # a small input (one chunk), or nothing can be sent to workers
                        for task in _chain(first_task, second_task, tasks):
                            yield from take(run_task(task, converter, ctx, category, plan))
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
