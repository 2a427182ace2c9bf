"""Worker processes die with their parent; spools of dead runs are removed; signals are held over a commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import kodolly
from kodolly import procs

SRC = str(Path(kodolly.__file__).resolve().parents[1])

# A parent that forks a child; the child arms die_with_parent and then sleeps; the parent prints the child's
# pid and sleeps too, until the test kills it with SIGKILL.
PARENT = textwrap.dedent("""
    import os, sys, time
    from kodolly import procs
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        procs.die_with_parent(parent, watchdog=sys.argv[1] == "watchdog")
        if sys.argv[1] == "watchdog":
            import ctypes
            if ctypes.CDLL(None).prctl(1, 0, 0, 0, 0) != 0:  # disarm the kernel's death signal: the watchdog alone acts
                os._exit(3)
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
    time.sleep(60)
""")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")
@pytest.mark.parametrize("how", ["pdeathsig", "watchdog"])
def test_a_child_dies_when_its_parent_is_killed(how):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    parent = subprocess.Popen([sys.executable, "-c", PARENT, how], stdout=subprocess.PIPE, env=env, text=True)
    child = int(parent.stdout.readline())
    time.sleep(0.3)  # the child has armed its death signal / watchdog
    assert alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_spools_of_dead_kodolly_processes_are_removed(tmp_path):
    first = procs.spool_dir()
    base = Path(first).parent
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = base / f"kodolly-{dead.pid}-abc123"  # a killed run's spool (its pid is gone)
    stale.mkdir()
    (stale / "1-1.arrow").write_bytes(b"x")
    other = base / f"kodolly-{os.getpid()}-keep"  # this process's: kept
    other.mkdir()
    second = first
    try:
        second = procs.spool_dir()
        assert not stale.exists() and other.is_dir() and Path(second).is_dir()
        assert Path(second).name.startswith(f"kodolly-{os.getpid()}-")
    finally:
        for d in {first, second, str(other)}:
            os.rmdir(d)


def test_held_signals_defers_a_ctrl_c_to_the_end_of_the_block():
    done = []
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with procs.held_signals():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            done.append("the block finished")
    assert done == ["the block finished"]
    assert signal.getsignal(signal.SIGINT) is before
