"""Processes and signals: worker processes that die with their parent, and signals held while committing.

- :func:`init_worker` (``die_with_parent`` + ignore SIGINT) is called first thing in every worker process.
  On Linux the kernel kills the worker when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), even when
  the parent is killed with SIGKILL and runs no cleanup; elsewhere (or if prctl fails) a watchdog thread polls
  the parent pid. A worker ignores SIGINT: Ctrl-C reaches the whole foreground process group, and the parent
  alone handles it (it stops its workers and cleans up), so workers print no traceback.
  PR_SET_PDEATHSIG fires when the *thread* that forked the worker ends: start pools from the thread that runs
  the whole run.
- :func:`spool_dir` is the per-run scratch folder workers hand results through (``/dev/shm`` when there is
  one); spools of kodolly processes that no longer exist (killed runs) are removed when a new one is made.
- :func:`held_signals` defers SIGINT and SIGTERM over a short critical section (a commit, a cleanup): the
  signal takes effect when the section ends, so it never stops halfway.
- :func:`terminate_as_exception` (the ``kodolly`` command only) turns SIGTERM into :class:`Terminated`, so a
  run stopped by ``kill``/``timeout``/a service manager cleans up as after Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from typing import Iterator

WATCHDOG_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1
_SPOOL_PREFIX = "kodolly-"
_SPOOL_NAME = re.compile(r"^kodolly-(\d+)-[A-Za-z0-9_]+$")


def die_with_parent(parent_pid: int | None = None, *, watchdog: bool = False) -> None:
    """Make this process die when ``parent_pid`` (default: the current parent) dies: by the kernel's
    parent-death signal on Linux, else (or with ``watchdog=True`` as well) by a thread polling the parent."""
    parent = os.getppid() if parent_pid is None else parent_pid
    if not _set_pdeathsig() or watchdog:
        _start_watchdog(parent)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)


def init_worker(parent_pid: int | None = None) -> None:
    """First thing in a worker process: die with the parent, leave Ctrl-C to the parent (workers started
    under :func:`interrupts_blocked` cannot be hit by a Ctrl-C before this has run)."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's terminate() ends a worker at once
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def interrupts_blocked() -> Iterator[None]:
    """Block SIGINT in this thread while starting worker processes: a child forked meanwhile starts with it
    blocked (until :func:`init_worker`), and this process gets a Ctrl-C that came meanwhile afterwards."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    # SIGTERM too: a child forked meanwhile would otherwise run the parent's Python SIGTERM handler
    # (a `Terminated` traceback from a worker) before init_worker restores the default
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _set_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - no usable libc
        return False


def _start_watchdog(parent: int) -> None:
    def watch() -> None:
        while True:
            threading.Event().wait(WATCHDOG_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="kodolly-parent-watchdog", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def rebuilt_exception(cls: type, message: str, attrs: dict) -> BaseException:
    """An exception sent from another process as ``(type, str(exc), exc.__dict__)`` again, with its
    message (custom ``__init__`` s not re-run)."""
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.__dict__.update(attrs)
    return exc


def spool_dir() -> str:
    """A new scratch folder ``kodolly-<pid>-XXXX`` in ``/dev/shm`` (else the temp folder); removes the
    spools of kodolly processes that are gone."""
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:  # pragma: no cover
        names = []
    for name in names:
        match = _SPOOL_NAME.match(name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{_SPOOL_PREFIX}{os.getpid()}-", dir=base)


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """Defer SIGINT and SIGTERM until the block ends (main thread only; elsewhere signals reach the main
    thread, not this one, anyway). A deferred signal then acts as it would have: SIGINT raises
    KeyboardInterrupt, SIGTERM ends the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    names = (signal.SIGINT, signal.SIGTERM)
    old = {sig: signal.getsignal(sig) for sig in names}
    for sig in names:
        signal.signal(sig, lambda signum, _frame: pending.append(signum))
    try:
        yield
    finally:
        for sig in names:
            signal.signal(sig, old[sig])
        for signum in dict.fromkeys(pending):
            handler = old[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM once :func:`terminate_as_exception` was called (not an
    ``Exception``: nothing catches it by accident on its way out)."""


def terminate_as_exception() -> None:
    """Make SIGTERM raise :class:`Terminated` in the main thread (only there can Python install handlers)."""

    def handler(_signum: int, _frame: object) -> None:
        raise Terminated()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
