"""Benchmark: ``kodolly convert --engine ray`` on a local two-node Ray cluster against ``--engine processes``,
in the same run, on generated Alpaca rows (benchmarks/generate.py), with the driver's peak memory.

    python benchmarks/bench_ray.py                         # 200,000 and 1,000,000 rows
    python benchmarks/bench_ray.py --rows 50000 --object-store-mb 300

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
    args = ap.parse_args(argv)
    files = {rows: data_file(rows) for rows in args.rows}
    print(machine())
    print(f"cluster: 2 nodes x 1 CPU, object store {args.object_store_mb} MiB per node; processes: 2 workers")
    cluster = start_cluster(args.object_store_mb)
    try:
        print(f"{'rows':>10}{'engine':>11}{'wall s':>9}{'rows/s':>10}{'peak PSS':>11}{'maxrss':>10}{'ray/proc':>10}  same output")
        for rows, src in files.items():
            with tempfile.TemporaryDirectory(prefix="kodolly-bench-ray-", dir=HERE / "data") as tmp:
                a, b = Path(tmp) / "processes.parquet", Path(tmp) / "ray.parquet"
                proc = convert(src, a, ["--engine", "processes", "--workers", "2"])
                ray = convert(src, b, ["--engine", "ray", "--address", cluster.address, "--partitions", str(args.partitions)])
                same = a.read_bytes() == b.read_bytes() and (Path(tmp) / "processes.rejects.jsonl").read_bytes() == (Path(tmp) / "ray.rejects.jsonl").read_bytes()
                for name, r in (("processes", proc), ("ray", ray)):
                    ratio = f"{ray['wall'] / proc['wall']:.2f}x" if name == "ray" else ""
                    print(f"{rows:>10,}{name:>11}{r['wall']:>9.1f}{rows / r['wall']:>10,.0f}{mib(r['peak_rss']):>11}{mib(r['maxrss']):>10}{ratio:>10}  {same if name == 'ray' else ''}", flush=True)
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
