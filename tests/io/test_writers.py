"""Writers on a full disk: one line naming the file, every temporary removed, nothing final-named.

The full disk is a real 64 KiB tmpfs mounted in a private mount namespace (``unshare``) around the run.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kodolly

SRC = str(Path(kodolly.__file__).resolve().parents[1])


def _can_mount_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    flags = ["-m"] if os.geteuid() == 0 else ["-r", "-m"]
    probe = subprocess.run(["unshare", *flags, "sh", "-c", "mount -t tmpfs -o size=64k kt /mnt 2>/dev/null || mount -t tmpfs -o size=64k kt /tmp"],
                           capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs unshare and a tmpfs mount in a private mount namespace")


def run_on_full_disk(full: Path, args: list[str], cwd: Path) -> tuple[int, str, list[str]]:
    """Run ``kodolly ARGS`` with a 64 KiB tmpfs at ``full``; returns exit code, stderr, what the tmpfs holds after."""
    full.mkdir()
    flags = "-m" if os.geteuid() == 0 else "-r -m"
    cmd = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "kodolly", *args])
    script = f"mount -t tmpfs -o size=64k kt {shlex.quote(str(full))} || exit 99; {cmd} 2>err.txt; echo $? > rc.txt; ls -A {shlex.quote(str(full))} > left.txt"
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run(["unshare", *flags.split(), "sh", "-c", script], cwd=cwd, env=env, check=True, timeout=120)
    return int((cwd / "rc.txt").read_text()), (cwd / "err.txt").read_text(), (cwd / "left.txt").read_text().split()


def write_input(path: Path, n: int, empty_every: int) -> Path:
    lines = [json.dumps({"instruction": f"질문 {i} " * 5, "output": "" if i % empty_every == 0 else f"답 {i}"}, ensure_ascii=False) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_rejects_on_a_full_disk(tmp_path):
    src = write_input(tmp_path / "in.jsonl", 3000, 1)  # every record is a reject: ~600 KB of rejects
    full = tmp_path / "full"
    rc, err, left = run_on_full_disk(full, ["convert", str(src), "--from", "alpaca", "-o", "o/out.parquet", "--rejects", str(full / "r.jsonl"), "--no-progress"], tmp_path)
    assert (rc, err, left) == (1, f"kodolly: error: {full / 'r.jsonl'}: no space left on device\n", [])
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == []


@pytest.mark.parametrize("name", ["out.parquet", "out.jsonl"])
def test_output_on_a_full_disk(tmp_path, name):
    src = write_input(tmp_path / "in.jsonl", 20_000, 50)
    full = tmp_path / "full"
    rc, err, left = run_on_full_disk(full, ["convert", str(src), "--from", "alpaca", "-o", str(full / name), "--rejects", "o/r.jsonl", "--no-progress"], tmp_path)
    assert (rc, err, left) == (1, f"kodolly: error: {full / name}: no space left on device\n", [])
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == []


def test_a_full_spool_in_dev_shm_is_one_line_and_leaves_nothing(tmp_path):
    """Workers hand their chunks back through /dev/shm: a tiny tmpfs there fails the first hand-over."""
    import re

    src = tmp_path / "in.jsonl"
    with open(src, "w", encoding="utf-8") as fh:  # two 8 MiB chunks: the worker pool is used
        for i in range(150_000):
            fh.write(json.dumps({"instruction": f"질문 {i} " * 4, "output": f"답 {i} " * 4}, ensure_ascii=False) + "\n")
    flags = "-m" if os.geteuid() == 0 else "-r -m"
    cmd = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "kodolly", "convert", str(src), "--from", "alpaca", "-o", "o/out.parquet", "--workers", "2", "--no-progress"])
    script = f"mount -t tmpfs -o size=64k kt /dev/shm || exit 99; {cmd} 2>err.txt; echo $? > rc.txt; ls -A /dev/shm > left.txt"
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run(["unshare", *flags.split(), "sh", "-c", script], cwd=tmp_path, env=env, check=True, timeout=120)
    err = (tmp_path / "err.txt").read_text()
    assert int((tmp_path / "rc.txt").read_text()) == 1
    assert re.fullmatch(r"kodolly: error: /dev/shm/kodolly-\d+-\w+/\d+-\d+\.arrow: no space left on device\n", err), err
    assert (tmp_path / "left.txt").read_text() == ""  # the spool folder is removed too
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == []
