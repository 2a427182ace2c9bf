"""Item ranges of stream inputs (zip members, gzip files) planned in a reader process, not in the driver.

The planner (:func:`~kodolly.corridor.shards.stream_item_shards`) inflates a member once, hashes it and
cuts it into item ranges, each with its bytes. In the driver that is serial work in the process that
also reduces and writes the output (about 1 CPU s per 100,000 AI Hub records, 250 MB of JSON). When
the workers are processes on this machine (the ``processes`` engine), a reader process runs the same
generator instead, one process per input: it writes each range's bytes to a file of the run's spool
(tmpfs where there is one) and sends the shard naming that file (``Shard.spooled``); a worker reads the
range from it, and the driver removes the file once the shard's chunk is back (a retried shard reads
it again). The reader runs at most :data:`AHEAD` ranges ahead of what the engine took, so the spool
holds a few ranges at a time, whatever the size of the member. Its errors (a corrupt member, a Git-LFS
pointer) are raised in the driver as they would be there; at the end it sends the input's byte count
and hash for the manifest. The ranges, the rest shard where the plan stops and the order are the
driver's own (the same function): the output is byte for byte the same.

A whole member is never one worker's shard: the members' rows come out in order, so while one worker
converted the first member the second's rows (about 270 MB of Arrow per 100,000 AI Hub records) would
wait in memory; ranges from a member are converted by every worker as they come.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import pickle
import shutil
from typing import Any, Iterator

from .. import procs
from ..io.sources import Input
from .shards import Shard, stream_item_shards

AHEAD = 2  # ranges a reader may spool beyond those the engine took


class MemberReader:
    """Plans stream inputs' item ranges in reader processes, into one spool folder for the run."""

    def __init__(self) -> None:
        self.dir: str | None = None
        self._files: dict[int, str] = {}  # shard seq -> its spooled file
        self._mp = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")

    def shards(self, inp: Input, paths: Any, seq: int, g: int, ordinal: int, member: int, encoding: str,
               target: int) -> Iterator[Shard]:
        """:func:`~kodolly.corridor.shards.stream_item_shards` of ``inp``, run by a reader process."""
        if self.dir is None:
            self.dir = procs.spool_dir()
        mine, theirs = self._mp.Pipe()
        args = (theirs, pickle.dumps(inp), paths, seq, g, ordinal, member, encoding, target, self.dir, os.getpid())
        proc = self._mp.Process(target=_read, args=args, daemon=True, name="kodolly-reader")
        with procs.interrupts_blocked():
            proc.start()
        theirs.close()
        try:
            while True:
                try:
                    kind, *payload = mine.recv()
                except EOFError:
                    raise RuntimeError(f"{inp.name}: the reader process died (exit code {proc.exitcode})") from None
                if kind == "shard":
                    (shard,) = payload
                    if shard.spooled:
                        self._files[shard.seq] = shard.path
                    yield shard
                    try:
                        mine.send(None)  # taken: the reader may spool one more
                    except OSError:  # it has sent its last message and gone
                        pass
                elif kind == "end":
                    inp.read_elsewhere(*payload)
                    return
                else:
                    raise procs.rebuilt_exception(*payload)
        finally:
            mine.close()
            proc.join(timeout=5)
            if proc.is_alive():  # stopped early (the run failed or was interrupted)
                proc.terminate()
                proc.join()

    def release(self, seq: int) -> None:
        """Shard ``seq`` is converted: its spooled file is not needed any more."""
        path = self._files.pop(seq, None)
        if path is not None:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def close(self) -> None:
        """Remove the spool (at the end of the run, whatever happened)."""
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        self._files.clear()


def _read(conn: Any, blob: bytes, paths: Any, seq: int, g: int, ordinal: int, member: int, encoding: str,
          target: int, spool: str, parent_pid: int) -> None:
    """The reader process: the input opened again (no file shared with the driver), its ranges spooled."""
    procs.init_worker(parent_pid)
    try:
        inp = pickle.loads(blob)
        given = 0
        for shard in stream_item_shards(inp, paths, seq, g, ordinal, member, encoding, target):
            if shard.data is not None:
                path = os.path.join(spool, f"range-{shard.seq}")
                with open(path, "wb") as fh:
                    fh.write(shard.data)
                shard = dataclasses.replace(shard, data=None, path=path, spooled=True)
            conn.send(("shard", shard))
            given += 1
            if given > AHEAD:
                conn.recv()
                given -= 1
        conn.send(("end", inp.bytes_read, inp.content_hash()))
    except BaseException as exc:  # noqa: BLE001 - raised in the driver
        try:
            conn.send(("error", type(exc), str(exc), dict(exc.__dict__)))
        except Exception:  # noqa: BLE001 - an exception that does not pickle
            conn.send(("error", RuntimeError, f"{type(exc).__name__}: {exc}", {}))
    finally:
        conn.close()
