"""Running ``kodolly convert`` in a child process under a memory limit, for the runaway-input tests."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
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


# The child measures its own child: ru_maxrss of a process forked from the (large) test process
# would count the pages it shared with it before exec.
_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call([sys.executable, '-m', 'kodolly', *sys.argv[2:]])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


def convert_limited(tmp_path: Path, source: Path, *args: str, converter: str = "alpaca", timeout: float = 120) -> Run:
    """``kodolly convert SOURCE`` in a child under the memory limit, with its peak RSS (its workers included)."""
    out = tmp_path / "out.parquet"
    peak_file = tmp_path / "peak_rss_kb"
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(peak_file), "convert", str(source), "--from", converter, "-o", str(out), *args],
        capture_output=True, text=True, timeout=timeout, preexec_fn=_limit, env=env,
    )
    rows = pq.read_table(out).to_pylist() if out.exists() else []
    rejects_file = tmp_path / "out.rejects.jsonl"
    rejects = [orjson.loads(line) for line in rejects_file.read_bytes().splitlines()] if rejects_file.exists() else []
    return Run(proc.returncode, proc.stdout, proc.stderr, rows, rejects, int(peak_file.read_text()) / 1024)
