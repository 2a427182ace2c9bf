"""The kill test: ``kodolly convert`` killed (SIGKILL), interrupted (Ctrl-C: SIGINT to its process group) and
terminated (SIGTERM) at many moments — at random points of a 200,000-row run (fixed seed; by time and by how much output was
staged) and at every named step of the commit (``KODOLLY_FAULT``) — always over an earlier committed set.

After each: whatever is final-named is the earlier set or the new one, complete and agreeing with its
manifest (hashes, sizes, rows via pyarrow), or — only after SIGKILL inside the commit — files marked
unfinished by the commit journal, which readers refuse; a Ctrl-C leaves no temporary and prints exactly
``kodolly: interrupted`` (exit 130); no process of the run survives; a rerun removes what a kill left and
writes byte-identical files. Runs go concurrently to stay within ~30 s on two cores.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import kodolly
from kodolly.errors import InputError
from kodolly.io.commit import COMMIT_STEPS, journal_path, require_finished
from kodolly.io.writers import file_hash

SET = ["out.manifest.json", "out.parquet", "out.rejects.jsonl", "out.report.html", "out.report.json"]
DATA = ["out.parquet", "out.rejects.jsonl", "out.report.html", "out.report.json"]
SAME = ["out.parquet", "out.rejects.jsonl", "out.report.json"]  # byte for byte as a full run's (the page shows the run's time)
SRC = str(Path(kodolly.__file__).resolve().parents[1])

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PR_SET_PDEATHSIG is Linux's")


def write_input(path: Path, n: int, tag: str = "") -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"instruction": f"질문{tag} {i}", "output": f"답 {i}" if i % 97 else ""}, ensure_ascii=False) + "\n")
    return path


def start(src: Path, cwd: Path, fault: str | None = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("KODOLLY_FAULT", None)
    if fault:
        env["KODOLLY_FAULT"] = fault
    return subprocess.Popen(
        [sys.executable, "-m", "kodolly", "convert", str(src), "--from", "alpaca", "-o", "out.parquet", "--workers", "2", "--no-progress"],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )


def convert_here(src: Path, cwd: Path) -> None:
    """The same command in this process (click's runner): the runs nobody kills, without a Python start-up."""
    from click.testing import CliRunner

    from kodolly.cli import cli

    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, ["convert", str(src), "--from", "alpaca", "-o", "out.parquet", "--workers", "2", "--no-progress"])
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output


def session(sid: int) -> list[int]:
    """Live processes (not zombies) of the session ``sid`` (the run was started as its leader)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry))
    return found


def wait_gone(sid: int, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := session(sid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def agrees(folder: Path) -> dict:
    """The set in ``folder`` is complete and agrees with its manifest; returns the manifest."""
    manifest = json.loads((folder / "out.manifest.json").read_text("utf-8"))
    out = manifest["output"]["files"][0]
    assert (folder / "out.parquet").stat().st_size == out["bytes"] and file_hash(folder / "out.parquet") == out["xxh3_128"]
    assert pq.read_metadata(folder / "out.parquet").num_rows == out["rows"] == manifest["counts"]["written"]
    for key in ("rejects", "report", "report_html"):
        assert file_hash(folder / Path(manifest[key]["path"]).name) == manifest[key]["xxh3_128"]
    assert len((folder / "out.rejects.jsonl").read_bytes().splitlines()) == manifest["counts"]["rejected"]
    return manifest


class Sets:
    """The earlier set (a small run) and the set a full run of the input writes, to compare with."""

    def __init__(self, earlier: Path, full: Path) -> None:
        self.earlier = {n: (earlier / n).read_bytes() for n in SET}
        self.full = {n: (full / n).read_bytes() for n in SAME}
        self.earlier_dir = earlier

    def lay_earlier(self, folder: Path) -> None:
        folder.mkdir()
        for n in SET:
            (folder / n).write_bytes(self.earlier[n])

    def final_state(self, folder: Path) -> str:
        """``earlier``, ``new`` or ``unfinished`` (checked in full); fails on anything else."""
        final = [n for n in names(folder) if not n.startswith(".")]
        if "out.manifest.json" in final:
            assert final == SET
            agrees(folder)
            if {n: (folder / n).read_bytes() for n in SET} == self.earlier:
                return "earlier"
            assert {n: (folder / n).read_bytes() for n in SAME} == self.full
            return "new"
        assert set(final) <= set(DATA)
        assert journal_path(folder / "out.manifest.json").exists()
        if "out.parquet" in final:
            with pytest.raises(InputError, match="an unfinished kodolly output"):
                require_finished(folder / "out.parquet")
        return "unfinished"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("kill")
    big = write_input(base / "big.jsonl", 200_000)
    small = write_input(base / "small.jsonl", 3_000, "s")
    for name in ("earlier", "full-big", "full-small"):
        (base / name).mkdir()
    proc = start(big, base / "full-big")
    convert_here(write_input(base / "earlier.jsonl", 500, "e"), base / "earlier")
    convert_here(small, base / "full-small")
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    return base, big, small, Sets(base / "earlier", base / "full-big"), Sets(base / "earlier", base / "full-small")


def _staged_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob(".out.parquet.kodolly-*.tmp") if p.is_file())


def test_random_kills_and_interrupts_leave_a_whole_set_and_no_process(runs):
    base, big, _small, sets, _ = runs
    full_size = len(sets.full["out.parquet"])
    rng = random.Random(18)
    trials = []
    for i in range(8):
        sig = (signal.SIGKILL, signal.SIGINT, signal.SIGKILL, signal.SIGTERM)[i % 4]
        # half by time after the run has opened its output (start-up, reading, the worker pool starting),
        # half by how much of the output was staged (mid-run, up to the end)
        target = ("time", rng.uniform(0.0, 0.6)) if i < 4 else ("bytes", rng.uniform(0.1, 1.0) * full_size)
        folder = base / f"trial-{i}"
        sets.lay_earlier(folder)
        trials.append({"folder": folder, "sig": sig, "target": target, "proc": start(big, folder), "ready": None, "sent": False})
    deadline = time.monotonic() + 120
    while any(t["proc"].poll() is None and not t["sent"] for t in trials) and time.monotonic() < deadline:
        for t in trials:
            if t["sent"] or t["proc"].poll() is not None:
                continue
            if t["ready"] is None and (t["folder"] / ".out.manifest.json.lock").exists():
                t["ready"] = time.monotonic()
            if t["ready"] is None:
                continue
            kind, value = t["target"]
            if (kind == "time" and time.monotonic() - t["ready"] >= value) or (kind == "bytes" and _staged_bytes(t["folder"]) >= value):
                t["workers"] = len(session(t["proc"].pid)) - 1
                if t["sig"] == signal.SIGINT:
                    os.killpg(t["proc"].pid, signal.SIGINT)  # what Ctrl-C in a terminal does
                else:
                    t["proc"].send_signal(t["sig"])
                t["sent"] = True
        time.sleep(0.005)
    states = []
    for t in trials:
        rc = t["proc"].wait(timeout=60)
        err = t["proc"].stderr.read().decode()
        assert wait_gone(t["proc"].pid) == [], f"processes of the run survive: {t}"
        state = sets.final_state(t["folder"])
        hidden = [n for n in names(t["folder"]) if n.startswith(".")]
        if t["sig"] == signal.SIGINT:
            assert (rc, err) in ((130, "kodolly: interrupted\n"), (0, "")), (rc, err)
            assert hidden == [] and state in ("earlier", "new")
        elif t["sig"] == signal.SIGTERM:  # kill PID, timeout, a service manager: cleaned up like Ctrl-C
            assert (rc, err) in ((143, "kodolly: terminated\n"), (0, "")), (rc, err)
            assert hidden == [] and state in ("earlier", "new")
        else:
            assert rc in (-signal.SIGKILL, 0), (rc, err)
        states.append((t["sig"].name, t["target"][0], state, t.get("workers", 0), rc))
    # the trials did hit running work: some were stopped while worker processes existed, before the commit
    assert any(s[2] == "earlier" and s[3] >= 1 for s in states), states
    assert any(s[0] == "SIGINT" and s[2] == "earlier" and s[4] == 130 for s in states), states
    assert any(s[0] == "SIGTERM" and s[2] == "earlier" and s[4] == 143 for s in states), states

    # a rerun over what a SIGKILL left (its temporaries, its lock): all gone, the same bytes as a full run
    killed = next(t for t in trials if t["sig"] == signal.SIGKILL and any(n.startswith(".out.parquet.kodolly-") for n in names(t["folder"])))
    rerun = start(big, killed["folder"])
    assert rerun.wait(timeout=120) == 0
    assert names(killed["folder"]) == SET
    assert sets.final_state(killed["folder"]) == "new"


EXPECT_AFTER_KILL = {
    # step: (final-named files left, the set state)
    "staged": (SET, "earlier"),
    "journal": (SET, "earlier"),  # the earlier manifest still matches: committed
    "old-manifest-removed": (DATA, "unfinished"),
    "old-set-removed": ([], "unfinished"),
    "renamed-rejects": (["out.rejects.jsonl"], "unfinished"),
    "renamed-report": (["out.rejects.jsonl", "out.report.json"], "unfinished"),
    "renamed-report-html": (["out.rejects.jsonl", "out.report.html", "out.report.json"], "unfinished"),
    "renamed-output": (DATA, "unfinished"),
    "manifest": (SET, "new"),
    "done": (SET, "new"),
}


def test_kills_and_interrupts_at_every_commit_step(runs):
    base, _big, small, _, sets = runs
    assert list(EXPECT_AFTER_KILL) == list(COMMIT_STEPS)
    cases = [(step, "KILL") for step in COMMIT_STEPS] + [(step, "INT") for step in ("staged", "old-set-removed", "renamed-output")]
    procs = {}
    for step, sig in cases:
        folder = base / f"step-{step}-{sig}"
        sets.lay_earlier(folder)
        procs[(step, sig)] = (folder, start(small, folder, fault=f"{step}:{sig}"))
    for (step, sig), (folder, proc) in procs.items():
        rc = proc.wait(timeout=120)
        err = proc.stderr.read().decode()
        assert wait_gone(proc.pid) == []
        final = [n for n in names(folder) if not n.startswith(".")]
        if sig == "KILL":
            assert rc == -signal.SIGKILL, (step, rc, err)
            assert (final, sets.final_state(folder)) == EXPECT_AFTER_KILL[step], step
            hidden = {n for n in names(folder) if n.startswith(".")}
            journal_expected = COMMIT_STEPS.index("journal") <= COMMIT_STEPS.index(step) <= COMMIT_STEPS.index("manifest")
            assert ".out.manifest.json.lock" in hidden and (".out.manifest.json.commit" in hidden) == journal_expected, (step, hidden)
        else:  # Ctrl-C inside the commit waits for its end: the new set is committed, nothing else is left
            assert (rc, err) == (130, "kodolly: interrupted\n"), step
            assert names(folder) == SET and sets.final_state(folder) == "new", step
    # reruns over every state a kill left: all replaced by the complete new set, byte for byte
    for key, (folder, _proc) in procs.items():
        if key[1] == "KILL":
            convert_here(small, folder)
            assert names(folder) == SET, key
            assert sets.final_state(folder) == "new", key


def test_workers_die_with_their_parent_when_it_is_killed(runs, tmp_path):
    """The parent-death signal alone (no cleanup runs on SIGKILL): the workers are gone within seconds."""
    _base, big, _small, _sets, _ = runs
    proc = start(big, tmp_path)
    deadline = time.monotonic() + 60
    while len(session(proc.pid)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = [pid for pid in session(proc.pid) if pid != proc.pid]
    assert len(workers) == 2, "the run did not start its two workers"
    proc.kill()
    proc.wait()
    assert wait_gone(proc.pid, timeout=10) == []
    shutil.rmtree(tmp_path, ignore_errors=True)
