"""Running ``kodolly convert`` in a child process under a memory limit, for the runaway-input tests."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
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
    """``kodolly convert SOURCE`` in a child under the memory limit, with the child's own peak RSS
    (``os.wait4``: that child and the workers it waited for, not earlier children of the test run)."""
    out = tmp_path / "out.parquet"
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    with open(tmp_path / "stdout.txt", "w+") as stdout, open(tmp_path / "stderr.txt", "w+") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kodolly", "convert", str(source), "--from", converter, "-o", str(out), *args],
            stdout=stdout, stderr=stderr, preexec_fn=_limit, env=env,
        )
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        out_text, err_text = stdout.read(), stderr.read()
    rows = pq.read_table(out).to_pylist() if out.exists() else []
    rejects_file = tmp_path / "out.rejects.jsonl"
    rejects = [orjson.loads(line) for line in rejects_file.read_bytes().splitlines()] if rejects_file.exists() else []
    return Run(proc.returncode, out_text, err_text, rows, rejects, usage.ru_maxrss / 1024)
