"""Running ``kodolly convert`` in a child process under a memory limit, for the runaway-input tests."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow.parquet as pq

MEMORY_LIMIT = 1536 << 20  # address space of the child (RLIMIT_AS): a regression fails, the machine is safe
SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    rows: list
    rejects: list
    peak_rss_mb: float


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def convert_limited(tmp_path: Path, source: Path, *args: str, converter: str = "alpaca", timeout: float = 120) -> Run:
    out = tmp_path / "out.parquet"
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", ARROW_DEFAULT_MEMORY_POOL="system")
    cmd = [sys.executable, "-m", "kodolly", "convert", str(source), "--from", converter, "-o", str(out), *args]
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        child = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, preexec_fn=_limit, env=env)
        # this child's own peak (wait4), not RUSAGE_CHILDREN: that is the largest of every child the test
        # process ever reaped (a Ray node removed by another test, a big subprocess before this one)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                child.kill()
                os.wait4(child.pid, 0)
                raise subprocess.TimeoutExpired(cmd, timeout)
            time.sleep(0.02)
        child.returncode = os.waitstatus_to_exitcode(status)
        out_f.seek(0)
        err_f.seek(0)
        proc = subprocess.CompletedProcess(cmd, child.returncode, out_f.read().decode(), err_f.read().decode())
    peak = usage.ru_maxrss / 1024
    rows = pq.read_table(out).to_pylist() if out.exists() else []
    rejects_file = tmp_path / "out.rejects.jsonl"
    rejects = [orjson.loads(line) for line in rejects_file.read_bytes().splitlines()] if rejects_file.exists() else []
    return Run(proc.returncode, proc.stdout, proc.stderr, rows, rejects, peak)
