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

from .. import procs
from ..converters import Converter
from ..errors import KodollyError, OutputError
from ..io.readers import BadRecord, Location
from ..io.writers import write_error
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


def _worker_main(setup_bytes: bytes, tasks: Any, results: Any, spool: str, parent_pid: int) -> None:
    procs.init_worker(parent_pid)  # die with the parent (even on SIGKILL); leave Ctrl-C to the parent
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
            chunk = run_task(task, conv, ctx, setup.category, plan)
            try:
                wire = chunk.to_wire(path)
            except OSError as exc:  # the spool is full (/dev/shm): one line naming the file, no traceback
                results.put(("output_error", str(write_error(path, exc))))
                return
            results.put(wire)
        except BaseException:
            results.put(("error", traceback.format_exc()))
            return


class Pool:
    """``n`` worker processes, each with its own task and result queue (tasks go round-robin)."""

    def __init__(self, n: int, setup: bytes) -> None:
        # fork: no re-import of the caller's __main__ (a script without a main guard works) and no
        # start-up cost. The parquet writer starts its thread lazily, after the workers exist.
        mp = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        self.spool = procs.spool_dir()  # also removes the spools of killed runs
        self.tasks = [mp.Queue() for _ in range(n)]
        self.results = [mp.Queue(maxsize=3) for _ in range(n)]
        self.procs = [
            mp.Process(target=_worker_main, args=(setup, self.tasks[w], self.results[w], self.spool, os.getpid()), daemon=True, name=f"kodolly-worker-{w}")
            for w in range(n)
        ]
        with procs.interrupts_blocked():  # a Ctrl-C meanwhile reaches this process only, after the start
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
            if msg[0] == "output_error":
                raise OutputError(msg[1])
            raise WorkerError(f"worker {w} failed:\n{msg[1]}")
        return Chunk.from_wire(msg)

    def close(self) -> None:
        if self.outstanding:  # stopped early (an error, Ctrl-C): workers may be blocked on a full queue
            for proc in self.procs:
                proc.terminate()
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
