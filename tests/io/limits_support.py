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


# ``kodolly`` that writes its own peak RSS (kB) at exit to $KODOLLY_TEST_PEAK: VmHWM of this program's image,
# or of a worker it forked. Not ru_maxrss from wait4/RUSAGE_CHILDREN: a child forked from the test process
# keeps the test process's size (hundreds of MB late in a full run) as its maxrss across exec.
_MEASURED = """
import atexit, os, resource, sys
def _peak():
    hwm = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    open(os.environ["KODOLLY_TEST_PEAK"], "w").write(str(max(hwm, workers)))
atexit.register(_peak)
sys.argv[0] = "kodolly"
from kodolly.cli import main
main()
"""


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def convert_limited(tmp_path: Path, source: Path, *args: str, converter: str = "alpaca", timeout: float = 120) -> Run:
    out = tmp_path / "out.parquet"
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", ARROW_DEFAULT_MEMORY_POOL="system")
    peak_file = tmp_path / "peak-rss-kb"
    env["KODOLLY_TEST_PEAK"] = str(peak_file)
    cmd = [sys.executable, "-c", _MEASURED, "convert", str(source), "--from", converter, "-o", str(out), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=_limit, env=env)
    peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
    rows = pq.read_table(out).to_pylist() if out.exists() else []
    rejects_file = tmp_path / "out.rejects.jsonl"
    rejects = [orjson.loads(line) for line in rejects_file.read_bytes().splitlines()] if rejects_file.exists() else []
    return Run(proc.returncode, proc.stdout, proc.stderr, rows, rejects, peak)
