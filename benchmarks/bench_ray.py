"""Benchmark: ``kodolly convert --engine ray`` on a local two-node Ray cluster against ``--engine processes``,
in the same run, on generated Alpaca rows (benchmarks/generate.py), with the driver's peak memory.

    python benchmarks/bench_ray.py                         # 200,000 and 1,000,000 rows
    python benchmarks/bench_ray.py --rows 50000 --object-store-mb 300
    python benchmarks/bench_ray.py --rows 200000 --near-dup 0.8 --planted   # near-dup in the cluster

``--near-dup T`` adds ``--near-dup T`` to both runs (the ray run then shuffles the band buckets to its
partition tasks); ``--planted`` converts the planted near-duplicate set of benchmarks/near_dup_quality.py
(``--rows`` rows of it, cached as benchmarks/data/planted-<rows>.jsonl) instead of the generated
Alpaca rows (which hold no near-duplicates). CPU: for ``processes`` the user + system seconds of the
run's process tree (wait4); for ``ray`` the driver's tree plus the CPU the cluster's processes (all
Ray processes of both nodes, children of this script) used during the run, sampled every 0.1 s
during it with psutil (see :class:`ClusterCpu`: a lower bound).

The cluster is ``ray.cluster_utils.Cluster`` (as the tests use): a head and one worker node, one CPU
each, bound to 127.0.0.1, started once before the runs. Each run is its own ``kodolly convert``
subprocess with the default filter chain (content checks, exact dedup, split) and a zstd parquet
output; both engines must write byte-identical parquet and rejects files. Memory is measured as in
benchmarks/run.py: the peak PSS summed over the run's process tree (for ``ray``: the driver only; the
nodes are the cluster's processes) and the largest ru_maxrss.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.run import machine, measure, mib  # noqa: E402


def data_file(rows: int) -> Path:
    path = HERE / "data" / f"alpaca-{rows}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--rows", str(rows), "--shape", "alpaca-jsonl", "-o", str(path)], check=True)
    return path


def planted_file(rows: int) -> Path:
    """``rows`` rows of the planted near-duplicate set, as Alpaca JSON Lines (made once)."""
    path = HERE / "data" / f"planted-{rows}.jsonl"
    if not path.exists():
        import orjson

        from benchmarks.near_dup_quality import planted_records

        # in a child process: the generator's few GB would otherwise count in every later run's ru_maxrss
        # (Linux carries a process's peak RSS over fork and exec)
        code = (
            "import sys, orjson; sys.path.insert(0, sys.argv[1]); from benchmarks.near_dup_quality import planted_records; "
            "rows = int(sys.argv[2]); records = planted_records(int(rows / 1.58) + 10, seed=14)[:rows]; "
            "open(sys.argv[3], 'wb').write(b'\\n'.join(orjson.dumps({k: r[k] for k in ('id', 'instruction', 'input', 'output')}) for r in records) + b'\\n')"
        )
        tmp = path.with_suffix(".tmp")
        subprocess.run([sys.executable, "-c", code, str(HERE.parent), str(rows), str(tmp)], check=True)
        tmp.replace(path)
    return path


class ClusterCpu:
    """The CPU seconds the cluster's processes (this script's children before a run, and every process
    they start: the Ray workers) use during a run, sampled every 0.1 s from a thread (a job's workers end
    with its driver, so they are read while they live; up to 0.1 s of each is missed: a lower bound)."""

    def __init__(self) -> None:
        import psutil

        self.peak = 0
        self.roots = psutil.Process().children()
        self.base = self._read()
        self.seen = dict(self.base)
        self.peak = 0  # the largest RSS of one cluster process during the run (bytes), from here on
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _read(self) -> dict[int, float]:
        import psutil

        out = {}
        for root in self.roots:
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.Error:
                continue
            for p in procs:
                try:
                    t = p.cpu_times()
                    out[p.pid] = t.user + t.system
                    self.peak = max(self.peak, p.memory_info().rss)
                except psutil.Error:
                    pass
        return out

    def _loop(self) -> None:
        while not self.done.wait(0.1):
            self.seen.update(self._read())

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        self.seen.update(self._read())
        return sum(v - self.base.get(pid, 0.0) for pid, v in self.seen.items())


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def start_cluster(object_store_mb: int):
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # nodes on 127.0.0.1 (see tests/support.py)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    from ray.cluster_utils import Cluster

    args = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": object_store_mb << 20}
    cluster = Cluster(initialize_head=True, head_node_args=dict(args, include_dashboard=False))
    cluster.add_node(**args)
    cluster.wait_for_nodes()
    return cluster


def convert(src: Path, out: Path, engine: list[str]) -> dict:
    cmd = [sys.executable, "-m", "kodolly", "convert", str(src), "--from", "alpaca", "-o", str(out), "--no-progress", *engine]
    result = measure(cmd)
    if result["code"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {result['code']}")
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--object-store-mb", type=int, default=1024, help="object store per node (default 1024)")
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--near-dup", type=float, default=None, metavar="T", help="add --near-dup T to both runs")
    ap.add_argument("--planted", action="store_true", help="the planted near-duplicate set instead of generated Alpaca rows")
    args = ap.parse_args(argv)
    files = {rows: (planted_file(rows) if args.planted else data_file(rows)) for rows in args.rows}
    extra = ["--near-dup", str(args.near_dup)] if args.near_dup is not None else []
    print(machine())
    print(f"cluster: 2 nodes x 1 CPU on this one machine, object store {args.object_store_mb} MiB per node; processes: 2 workers; "
          f"filters: default chain{' + near-dup ' + str(args.near_dup) if extra else ''}")
    cluster = start_cluster(args.object_store_mb)
    try:
        print(f"{'rows':>10}{'engine':>11}{'wall s':>9}{'rows/s':>10}{'CPU s':>8}{'driver':>8}{'cluster':>8}{'peak PSS':>10}{'maxrss':>8}"
              f"{'written':>9}  load before/after  same output")
        for rows, src in files.items():
            with tempfile.TemporaryDirectory(prefix="kodolly-bench-ray-", dir=HERE / "data") as tmp:
                a, b = Path(tmp) / "processes.parquet", Path(tmp) / "ray.parquet"
                load0 = loadavg()
                proc = convert(src, a, ["--engine", "processes", "--workers", "2", *extra])
                proc.update(load=f"{load0} / {loadavg()}", driver=proc["cpu"], cluster=0.0)
                load0, sampler = loadavg(), ClusterCpu()
                ray = convert(src, b, ["--engine", "ray", "--address", cluster.address, "--partitions", str(args.partitions), *extra])
                ray.update(load=f"{load0} / {loadavg()}", driver=ray["cpu"], cluster=sampler.stop())
                print(f"    ray: largest cluster process (a Ray worker) RSS {mib(sampler.peak)} MiB during the run", flush=True)
                ray["cpu"] = ray["driver"] + ray["cluster"]
                same = a.read_bytes() == b.read_bytes() and (Path(tmp) / "processes.rejects.jsonl").read_bytes() == (Path(tmp) / "ray.rejects.jsonl").read_bytes()
                for name, r, path in (("processes", proc, a), ("ray", ray, b)):
                    import pyarrow.parquet as pq

                    written = pq.read_metadata(path).num_rows
                    print(f"{rows:>10,}{name:>11}{r['wall']:>9.1f}{rows / r['wall']:>10,.0f}{r['cpu']:>8.1f}{r['driver']:>8.1f}{r['cluster']:>8.1f}"
                          f"{mib(r['peak_rss']):>10}{mib(r['maxrss']):>8}{written:>9,}  {r['load']}  {same if name == 'ray' else ''}", flush=True)
                if extra:
                    import json

                    manifest = json.loads((Path(tmp) / "ray.manifest.json").read_text())
                    for part in manifest["engine"].get("near_dup_partitions", []):
                        print(f"    near-dup partition {part['partition']}: {part['rows']:,} rows, {part['buckets']:,} buckets, "
                              f"{part['candidates']:,} candidate pairs, {part['pairs']:,} checked pairs (node {part['node'][:8]})")
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
