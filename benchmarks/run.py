"""Benchmark: kodolly against pandas, datasets and polars doing the same job on the same data.

    python benchmarks/run.py                      # 1,000,000 Alpaca rows, every pipeline
    python benchmarks/run.py --rows 50000         # a quick run
    python benchmarks/run.py --only kodolly,polars,floor
    python benchmarks/run.py --converters         # each converter on its generated input, 1 and 2 workers
    python benchmarks/run.py --near-dup 0.8       # `kodolly convert --near-dup 0.8` at 1M and 200k rows + quality

The job: parse the Alpaca JSONL, NFC + whitespace normalisation, drop rows with an empty instruction or
output, exact dedup (first occurrence kept), zstd parquet. Each pipeline runs as its own subprocess, one
after another; wall time, CPU time (the whole process tree, and its main process alone), rows/s (input
rows per second) and peak memory are reported, with the ratio of kodolly's time to each, and the output
row counts are compared. The ``floor`` is no such pipeline: ``pyarrow.json.read_json`` + zstd
``write_table`` with nothing in between (it keeps every input row), the least any of them could cost.
Memory: the peak of the PSS summed over the pipeline's processes (forked workers share pages with their
parent; PSS counts them once), sampled every 0.1 s, and the largest single-process ru_maxrss.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import generate  # noqa: E402

PIPELINES = {
    "kodolly": [HERE / "kodolly_job.py"],
    "pandas": [HERE / "baselines" / "pandas_job.py"],
    "datasets": [HERE / "baselines" / "datasets_job.py"],
    "polars": [HERE / "baselines" / "polars_job.py"],
    "floor": [HERE / "baselines" / "floor_job.py"],
}
NOT_THE_JOB = {"floor"}  # keeps every row: its count is checked against the input, not the others'
TARGETS = {"polars": 0.6, "floor": 1.3}  # issue 13: kodolly's wall time at most this share of theirs
# (converter, generator shape) of each --converters run
CONVERTER_RUNS = (
    ("alpaca", "alpaca-jsonl"), ("alpaca", "alpaca-json"), ("dolly", "dolly-jsonl"), ("sharegpt", "sharegpt-jsonl"),
    ("sharegpt", "sharegpt-json"), ("korquad1", "korquad1"), ("korquad2", "korquad2"), ("aihub", "aihub-zip"),
    ("hansol", "hansol-csv"),
)
TALLY = re.compile(r"tally OK: read (\d+) = written (\d+) \+ rejected (\d+)")


def _tree_memory(ps, cpu: dict[int, float] | None = None) -> int:
    """PSS summed over a process and its children (shared pages counted once), RSS where PSS is unknown.
    ``cpu``, when given, gets each child's CPU seconds so far (by pid)."""
    import psutil

    total = 0
    try:
        procs = [ps] + ps.children(recursive=True)
    except psutil.Error:
        return 0
    if cpu is not None:
        for p in procs[1:]:
            try:
                times = p.cpu_times()
                cpu[p.pid] = times.user + times.system
            except psutil.Error:
                pass
    for p in procs:
        try:
            info = p.memory_full_info()
            total += getattr(info, "pss", 0) or info.rss
        except psutil.Error:
            pass
    return total


def measure(cmd: list[str], env: dict[str, str] | None = None, json_result: bool = True) -> dict:
    """Run ``cmd``: wall seconds, CPU seconds (user + system of the process and the children it
    waited for, from wait4), peak memory of its process tree (PSS, sampled every 0.1 s) and the
    largest ru_maxrss in the tree. ``json_result``: the last line of its output is a JSON object
    to merge into the result (else the output is returned as ``stdout``)."""
    import psutil

    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, env=env, cwd=HERE.parent)
        ps = psutil.Process(proc.pid)
        peak = 0
        child_cpu: dict[int, float] = {}
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, _tree_memory(ps, child_cpu))
            time.sleep(0.1)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
    result = {"wall": wall, "peak_rss": peak, "maxrss": usage.ru_maxrss * 1024, "code": proc.returncode,
              "cpu": usage.ru_utime + usage.ru_stime, "stdout": out.decode("utf-8", "replace"),
              "children_cpu": sum(child_cpu.values())}  # as last sampled (up to 0.1 s before each exits)
    result["main_cpu"] = result["cpu"] - result["children_cpu"]
    if not json_result:
        if proc.returncode != 0:
            result["error"] = err.decode("utf-8", "replace")[-2000:].strip()
        return result
    lines = out.decode("utf-8", "replace").strip().splitlines()
    try:
        result.update(json.loads(lines[-1]))
    except (IndexError, json.JSONDecodeError):
        result["error"] = (err.decode("utf-8", "replace")[-2000:] or out.decode("utf-8", "replace")[-2000:]).strip()
    if proc.returncode != 0 and "error" not in result:
        result["error"] = err.decode("utf-8", "replace")[-2000:].strip()
    return result


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        mem, load = 0, ["?"] * 3
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, load average {' '.join(load)}"


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def run_pipelines(rows: int, names: list[str], workers: int | None) -> int:
    src = generate.ensure("alpaca-jsonl", rows)
    size = src.stat().st_size
    print(f"input: {src} ({rows:,} rows, {size / 1e6:,.0f} MB)")
    print(f"machine: {machine()}")
    subprocess.run(["cat", str(src)], stdout=subprocess.DEVNULL, check=True)  # into the page cache
    results = {}
    with tempfile.TemporaryDirectory(prefix="kodolly-bench-") as tmp:
        for name in names:
            out = Path(tmp) / f"{name}.parquet"
            cmd = [sys.executable, str(PIPELINES[name][0]), str(src), str(out)]
            if name == "kodolly" and workers is not None:
                cmd.append(str(workers))
            env = dict(os.environ, PYTHONPATH=str(HERE / "baselines"), OMP_NUM_THREADS="1")
            print(f"running {name} ...", flush=True)
            results[name] = r = measure(cmd, env)
            if "error" in r:
                print(f"  {name} FAILED (exit {r['code']}):\n{r['error']}")
            else:
                print(f"  {name}: {r['wall']:.1f} s, CPU {r['cpu']:.1f} s (main {r['main_cpu']:.1f}), {r['rows']:,} rows out,"
                      f" peak PSS {mib(r['peak_rss'])} MiB; load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}", flush=True)
    print()
    base = results.get("kodolly")
    print(f"machine at the end: {machine()}")
    print(f"{'pipeline':<10}{'wall s':>9}{'CPU s':>8}{'main':>7}{'rows/s':>11}{'peak PSS MiB':>14}{'max 1-proc MiB':>16}{'rows out':>11}{'kodolly/x':>11}")
    for name, r in results.items():
        if "error" in r:
            print(f"{name:<10}{'failed':>9}")
            continue
        ratio = f"{base['wall'] / r['wall']:.2f}" if base and "error" not in base else "-"
        print(f"{name:<10}{r['wall']:>9.1f}{r['cpu']:>8.1f}{r['main_cpu']:>7.1f}{rows / r['wall']:>11,.0f}{mib(r['peak_rss']):>14}"
              f"{mib(r['maxrss']):>16}{r['rows']:>11,}{ratio:>11}")
    print("CPU s: user + system of the process tree; main: its main process alone")
    ok = all("error" not in r for r in results.values())
    if base and "error" not in base:
        for name, target in TARGETS.items():
            r = results.get(name)
            if r and "error" not in r:
                ratio = base["wall"] / r["wall"]
                print(f"kodolly / {name}: {ratio:.2f} of its wall time (target <= {target}: {'met' if ratio <= target else 'NOT met'})")
    counts = {name: r["rows"] for name, r in results.items() if "rows" in r and name not in NOT_THE_JOB}
    if len(set(counts.values())) > 1:
        print(f"\nROW COUNTS DIFFER: {counts}")
        ok = False
    elif counts:
        print(f"\nall pipelines kept the same {next(iter(counts.values())):,} rows")
    for name in NOT_THE_JOB & set(results):
        r = results[name]
        if "rows" in r and r["rows"] != rows:
            print(f"{name} wrote {r['rows']:,} rows, not the {rows:,} it read")
            ok = False
    if base and "rejected" in base:
        print(f"kodolly rejects: {base['rejected']}")
    return 0 if ok else 1


def run_converters(rows: int, korquad2_rows: int, only: set[str] | None = None) -> int:
    """Each converter on its generated input with 1 and with 2 workers: items read per second of
    wall time and of CPU time (the machine may be shared), peak PSS of the process tree, and the
    ratio of the 2-worker time to the 1-worker time."""
    print(f"machine: {machine()}")
    print(f"{'converter':<10}{'input':<28}{'items':>11}{'out':>11}{'w1 s':>7}{'w1 cpu':>7}{'w1 it/s':>9}{'w1 it/cpu':>10}{'w2 s':>7}{'w2 cpu':>7}"
          f"{'w2 it/s':>9}{'w2 it/cpu':>10}{'w2/w1':>6}{'peak1':>6}{'peak2':>6}{'load':>6}")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="kodolly-bench-") as tmp:
        for name, shape in CONVERTER_RUNS:
            if only and name not in only and shape not in only:
                continue
            src = generate.ensure(shape, korquad2_rows if shape == "korquad2" else rows)
            subprocess.run(["cat", str(src)], stdout=subprocess.DEVNULL, check=True)  # into the page cache
            runs = []
            for workers in (1, 2):
                out = Path(tmp) / f"{name}-{workers}.parquet"
                cmd = [sys.executable, "-m", "kodolly", "convert", str(src), "--from", name, "-o", str(out), "--no-progress",
                       "--workers", str(workers)]
                r = measure(cmd, dict(os.environ, OMP_NUM_THREADS="1"), json_result=False)
                tally = TALLY.search(r.get("stdout", ""))
                if "error" in r or tally is None:
                    print(f"{name:<10}{src.name:<28}FAILED ({workers} workers): {r.get('error', r.get('stdout', ''))[-400:]}")
                    failed += 1
                    break
                r["read"], r["written"] = int(tally.group(1)), int(tally.group(2))
                runs.append(r)
            if len(runs) < 2:
                continue
            one, two = runs
            print(f"{name:<10}{src.name:<28}{one['read']:>11,}{one['written']:>11,}{one['wall']:>7.1f}{one['cpu']:>7.1f}"
                  f"{one['read'] / one['wall']:>9,.0f}{one['read'] / one['cpu']:>10,.0f}{two['wall']:>7.1f}{two['cpu']:>7.1f}"
                  f"{two['read'] / two['wall']:>9,.0f}{two['read'] / two['cpu']:>10,.0f}"
                  f"{two['wall'] / one['wall']:>6.2f}{mib(one['peak_rss']):>6}{mib(two['peak_rss']):>6}{os.getloadavg()[0]:>6.1f}", flush=True)
    print("w1/w2: 1 or 2 workers; s = wall seconds, cpu = CPU seconds of the process tree, it/s = items read per wall second,"
          " it/cpu = per CPU second of the tree; peak = MiB PSS of the process tree; load = 1-minute load average after the runs")
    return 1 if failed else 0


def run_near_dup(rows: int, threshold: float, workers: int | None, originals: int) -> int:
    """`kodolly convert --near-dup T` (the CLI, default filter chain plus near-dup) on the generated
    Alpaca rows at ``rows`` and at a fifth of them, then precision/recall on the planted set."""
    from benchmarks import near_dup_quality

    print(f"machine: {machine()}")
    sizes = [rows, rows // 5] if rows >= 10 else [rows]
    print("CPU s: user + system of the whole process tree (main, workers); main: the main process alone.")
    print(f"{'rows':>10}{'wall s':>9}{'rows/s':>10}{'CPU s':>8}{'main':>7}{'peak PSS MiB':>14}{'largest MiB':>13}{'written':>10}{'near-dup':>10}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="kodolly-bench-") as tmp:
        for n in sizes:
            src = generate.ensure("alpaca-jsonl", n)
            subprocess.run(["cat", str(src)], stdout=subprocess.DEVNULL, check=True)  # into the page cache
            out = Path(tmp) / f"near-{n}.parquet"
            cmd = [sys.executable, "-m", "kodolly", "convert", str(src), "--from", "alpaca", "-o", str(out),
                   "--near-dup", str(threshold), "--no-progress"]
            if workers is not None:
                cmd += ["--workers", str(workers)]
            r = measure(cmd, dict(os.environ, OMP_NUM_THREADS="1"))
            if r["code"] != 0:
                print(f"{n:>10,} FAILED (exit {r['code']}): {r.get('error', '')[-1500:]}")
                ok = False
                continue
            report = json.loads(out.with_name(out.stem + ".report.json").read_text("utf-8"))
            tally = report["counts"]
            written = tally.get("written", "?")
            near = tally.get("by_reason", {}).get("near_duplicate_of", 0)
            print(f"{n:>10,}{r['wall']:>9.1f}{n / r['wall']:>10,.0f}{r['cpu']:>8.1f}{r['main_cpu']:>7.1f}{mib(r['peak_rss']):>14}{mib(r['maxrss']):>13}"
                  f"{written:>10,}{near:>10,}", flush=True)
    print()
    near_dup_quality.main(["--originals", str(originals)])
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", default=",".join(PIPELINES), help="comma-separated: " + ", ".join(PIPELINES))
    parser.add_argument("--workers", type=int, help="kodolly worker processes (default: kodolly's default)")
    parser.add_argument("--converters", action="store_true", help="rows/s of every converter on its own generated input, 1 and 2 workers")
    parser.add_argument("--korquad2-rows", type=int, default=2000, help="questions of the generated KorQuAD 2 input (--converters)")
    parser.add_argument("--sources", help="--converters: only these converters or shapes (comma-separated)")
    parser.add_argument("--near-dup", type=float, metavar="T", help="kodolly convert --near-dup T at --rows and --rows/5, and quality on the planted set")
    parser.add_argument("--originals", type=int, default=5000, help="originals in the planted near-dup set (with --near-dup)")
    args = parser.parse_args(argv)
    if args.near_dup is not None:
        return run_near_dup(args.rows, args.near_dup, args.workers, args.originals)
    if args.converters:
        only = {x.strip() for x in args.sources.split(",")} if args.sources else None
        return run_converters(args.rows, args.korquad2_rows, only)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(PIPELINES)
    if unknown:
        parser.error(f"unknown pipeline(s): {', '.join(sorted(unknown))}")
    return run_pipelines(args.rows, names, args.workers)


if __name__ == "__main__":
    raise SystemExit(main())
