"""Worker processes: each converts the chunks sent to it and hands back their tables through tmpfs."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue as queue_mod
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping

import pyarrow as pa

from ..converters import Converter
from ..errors import KodollyError
from ..io.readers import BadRecord, Location
from .chunks import Chunk, convert_records
from .columnar import convert_columnar
from .jsonl import iter_jsonl_chunk
from .plan import Plan


class WorkerError(KodollyError):
    """A worker process failed; the message carries its traceback."""


@dataclass
class Setup:
    converter: Converter
    options: Mapping[str, Any] | None
    category: str | None
    filters: list[Any]


def run_task(task: dict[str, Any], conv: Converter, ctx: Any, category: str | None, plan: Plan) -> Chunk:
    if "bad" in task:  # one reject in place of data (a line over the limit, a stopped archive member)
        reason, raw, detail = task["bad"]
        loc = Location(task["name"], task["index"], task["line"])
        return convert_records(iter([(BadRecord(reason, raw, detail), loc)]), task["name"], conv, ctx, category, plan)
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
        setup: Setup = pickle.loads(setup_bytes)
        conv = setup.converter
        ctx = conv.context(setup.options)
        plan = Plan.of(setup.filters)
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
            results.put(run_task(task, conv, ctx, setup.category, plan).to_wire(path))
        except BaseException:
            results.put(("error", traceback.format_exc()))
            return


class Pool:
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

    def receive(self) -> Chunk:
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
        return Chunk.from_wire(msg)

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
