"""The ``processes`` engine: a local pool of worker processes converting shards, handed back in order.

Each worker has its own task queue (up to :data:`DEPTH` shards given out at once, so it never waits for
the driver between shards) and its own result pipe, on which it sends back each chunk synchronously: its
table as an Arrow IPC file on tmpfs (``/dev/shm`` when there is one; the driver maps it without copying),
the rest pickled. Workers are
forked, so a converter or filter defined in a script works without a main guard; a worker re-opens
its inputs itself (no open archive is shared between processes). Shards that must run on the driver
(``Shard.local``) are converted there, in their turn.

Faults: a shard whose conversion raises, or whose worker dies, is retried once (a dead worker is
replaced); a second failure stops the run with one line naming the input and the shard. A
:class:`~kodolly.errors.KodollyError` raised in a worker (a run-level input problem) stops the run
with its own message, as it would inline.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Iterable, Iterator

from ... import procs
from ...errors import KodollyError
from ...io.writers import write_error
from ..chunks import Chunk
from ..convert import Work, convert_shard
from ..retry import ATTEMPTS, convert_with_retry, shard_failed
from ..shards import Shard
from . import default_workers


DEPTH = 2  # shards given to one worker at a time (one converting, one waiting in its queue)


def _worker_main(work: Work, tasks: Any, conn: Any, spool: str, parent_pid: int) -> None:
    procs.init_worker(parent_pid)  # die with the parent (even on SIGKILL); leave Ctrl-C to the parent
    work.forget_inputs()
    while True:
        msg = tasks.get()
        if msg is None:
            return
        seq, shard = msg
        try:
            chunk = convert_shard(shard, work)
            base = os.path.join(spool, f"{os.getpid()}-{seq}")
            try:
                with open(base + ".pickle", "wb") as fh:  # through tmpfs too: the pipe message stays small, the worker never waits
                    fh.write(chunk.to_wire(base + ".arrow"))
            except OSError as exc:  # the spool is full (/dev/shm): one line naming the file, no traceback
                err = write_error(base + ".arrow", exc)
                conn.send(("fatal", seq, (type(err), str(err), dict(err.__dict__))))
                continue
            conn.send(("done", seq, base + ".pickle"))
        except KodollyError as exc:
            conn.send(("fatal", seq, (type(exc), str(exc), dict(exc.__dict__))))
        except BaseException as exc:  # noqa: BLE001 - reported to the driver, which retries or stops
            conn.send(("error", seq, f"{type(exc).__name__}: {exc}"))


@dataclass
class _Worker:
    proc: Any
    tasks: Any  # multiprocessing.Queue of (seq, shard), None to stop
    conn: Any  # the receiving end of the worker's result pipe
    given: deque  # the shards given to it and not yet answered, in order


class ProcessEngine:
    name = "processes"
    local_files = True  # its workers read this machine's files (the planner may hand them spooled ranges)

    def __init__(self, workers: int | None = None) -> None:
        self.n = workers or default_workers()
        self.window = DEPTH * self.n + 2  # shards given out or waiting to be handed back, in order
        self.workers: list[_Worker] = []
        self.spool: str | None = None
        self._mp = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        self.restarts = 0

    # ------------------------------------------------------------------------------ the pool

    def _spawn(self, work: Work) -> _Worker:
        receive, send = self._mp.Pipe(duplex=False)
        tasks = self._mp.Queue()
        proc = self._mp.Process(target=_worker_main, args=(work, tasks, send, self.spool, os.getpid()), daemon=True, name="kodolly-worker")
        with procs.interrupts_blocked():  # a Ctrl-C meanwhile reaches this process only, after the start
            proc.start()
        send.close()
        return _Worker(proc, tasks, receive, deque())

    def _start(self, work: Work) -> None:
        if self.workers:
            return
        _warm_imports()
        self.spool = procs.spool_dir()  # also removes the spools of killed runs
        self.workers = [self._spawn(work) for _ in range(self.n)]

    def close(self) -> None:
        for w in self.workers:
            if w.given:  # stopped early (an error, Ctrl-C): do not wait for its shards
                w.proc.terminate()
            else:
                try:
                    w.tasks.put(None)
                except (OSError, ValueError):
                    pass
        for w in self.workers:
            w.proc.join(timeout=5)
            if w.proc.is_alive():
                w.proc.terminate()
                w.proc.join()
            w.conn.close()
            w.tasks.close()
            w.tasks.cancel_join_thread()
        self.workers = []
        if self.spool is not None:
            shutil.rmtree(self.spool, ignore_errors=True)
            self.spool = None

    # ------------------------------------------------------------------------------- mapping

    def map(self, shards: Iterable[Shard], work: Work) -> Iterator[Chunk]:
        source = iter(shards)
        exhausted = False
        blocked: Shard | None = None  # a local shard, converted here once everything before it is out
        order: deque[int] = deque()  # seqs planned and not yet handed back, ascending
        waiting: deque[Shard] = deque()  # not yet given to a worker
        done: dict[int, Chunk] = {}
        failures: dict[int, int] = {}
        while True:
            while not exhausted and blocked is None and len(order) < self.window:
                shard = next(source, None)
                if shard is None:
                    exhausted = True
                elif shard.local:
                    blocked = shard
                else:
                    order.append(shard.seq)
                    waiting.append(shard)
            while order and order[0] in done:
                yield done.pop(order.popleft())
            if not order:
                if blocked is not None:
                    shard, blocked = blocked, None
                    yield convert_with_retry(shard, work, convert_shard)
                    continue
                if exhausted:
                    return
                continue
            self._start(work)
            for depth in range(DEPTH):  # fill every worker to one shard, then to two
                for w in self.workers:
                    if waiting and len(w.given) <= depth:
                        shard = waiting.popleft()
                        w.tasks.put((shard.seq, shard))
                        w.given.append(shard)
            wait([w.conn for w in self.workers] + [w.proc.sentinel for w in self.workers], timeout=1.0)
            for wid, w in enumerate(self.workers):
                answered = False
                while w.conn.poll():
                    try:
                        kind, seq, payload = w.conn.recv()
                    except (EOFError, OSError):
                        break
                    answered = True
                    shard = w.given.popleft()
                    assert shard.seq == seq
                    if kind == "done":
                        with open(payload, "rb") as fh:
                            done[seq] = Chunk.from_wire(fh.read())
                        os.unlink(payload)
                    elif kind == "fatal":
                        raise procs.rebuilt_exception(*payload)
                    else:
                        self._failed(shard, payload, failures, waiting)
                if not answered and not w.proc.is_alive():
                    code = w.proc.exitcode
                    w.conn.close()
                    w.tasks.close()
                    w.tasks.cancel_join_thread()
                    self.workers[wid] = self._spawn(work)  # a fresh queue too: the dead one may hold its lock
                    self.restarts += 1
                    if w.given:
                        lost = list(w.given)
                        for later in reversed(lost[1:]):  # never started: back in line, no failure counted
                            waiting.appendleft(later)
                        self._failed(lost[0], f"the worker process died (exit code {code})", failures, waiting)

    @staticmethod
    def _failed(shard: Shard, cause: str, failures: dict[int, int], waiting: deque[Shard]) -> None:
        failures[shard.seq] = failures.get(shard.seq, 0) + 1
        if failures[shard.seq] >= ATTEMPTS:
            raise shard_failed(shard, cause)
        waiting.appendleft(shard)


def _warm_imports() -> None:
    """Import here, once, what every worker would otherwise import for itself after the fork: pyarrow
    imports pandas the first time it converts a Python value (``pa.scalar(0)``, ``pc.greater(x, 0)``),
    which costs each process about half a second of CPU (more where no bytecode is cached)."""
    import pyarrow as pa
    import pyarrow.compute  # noqa: F401
    import pyarrow.json  # noqa: F401

    pa.scalar(0)


def create(workers: int | None = None, **options: Any) -> ProcessEngine:
    return ProcessEngine(workers)
