"""The map stage alone on a local two-node Ray cluster: one Ray task per shard (what ``--engine ray`` does)
against Ray Data (``from_items(shards).map_batches(...)`` over Arrow tables), both running the corridor's
``convert_shard`` on the same shards and keeping the converted rows in the object store.

    python benchmarks/bench_ray_map.py --rows 200000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.bench_ray import data_file, start_cluster  # noqa: E402


def _convert_table(batch, work):
    """Ray Data UDF: a batch of pickled shards -> the converted rows (one Arrow table)."""
    import pickle

    import pyarrow as pa

    from kodolly.corridor import convert_shard

    tables = [convert_shard(pickle.loads(blob), work).table for blob in batch["shard"]]
    return pa.concat_tables(tables)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--data-first", action="store_true", help="time Ray Data first (the first pays the workers' start)")
    args = ap.parse_args(argv)
    src = data_file(args.rows)
    cluster = start_cluster(1024)
    import pickle

    import ray

    from kodolly.corridor import make_spec, prepare
    from kodolly.corridor.engines.ray import _convert_task

    try:
        ray.init(address=cluster.address, log_to_driver=False)
        run = prepare(make_spec([src], "alpaca", None))
        shards = list(run.shards())
        work_ref = ray.put(run.work)
        print(f"{args.rows:,} rows, {len(shards)} shards")

        def tasks() -> None:
            task = ray.remote(max_retries=1, scheduling_strategy="SPREAD")(_convert_task)
            t = time.perf_counter()
            refs = [task.remote(work_ref, s) for s in shards]
            ray.wait(refs, num_returns=len(refs), fetch_local=False)
            print(f"ray tasks   {time.perf_counter() - t:6.1f} s")

        def data() -> None:
            import ray.data

            ray.data.DataContext.get_current().execution_options.preserve_order = True
            t = time.perf_counter()
            ds = ray.data.from_items([{"shard": pickle.dumps(s)} for s in shards], override_num_blocks=len(shards))
            ds = ds.map_batches(_convert_table, fn_kwargs={"work": run.work}, batch_size=1, batch_format="pyarrow")
            rows = ds.materialize().count()
            print(f"ray data    {time.perf_counter() - t:6.1f} s  ({rows:,} rows)")

        for step in ((data, tasks) if args.data_first else (tasks, data)):
            step()
    finally:
        ray.shutdown()
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
