"""The ``ray`` engine: shards converted on the nodes of a Ray cluster (``pip install -e '.[ray]'`` from the clone).

Every node runs the corridor's own code: :func:`~kodolly.corridor.convert_shard` (with the chain's map
half) in one Ray task per shard, and :meth:`FilterChain.reduce` for the rest of the chain. Nothing is
converted twice and nothing is re-implemented here; this module only decides where things run.

Where: ``address`` = ``auto`` (the cluster this machine belongs to), ``HOST:PORT`` (a cluster's GCS),
``ray://HOST:PORT`` (Ray Client), or ``None``: a cluster found as ``auto`` finds it, else a Ray
instance started on this machine for the run (bound to 127.0.0.1) and stopped with it. The run's
tasks and workers end with the run (``ray.shutdown``; Ray also kills a job's workers when its driver
dies). Inputs and the output must be on a path every node and the driver see (one machine, or a
shared filesystem): nodes read their shards' bytes and write the output files there.

Two ways through (:meth:`RayEngine.execute`):

- **in the cluster** (the default chain -- stateless filters, exact dedup, near-dup, split -- or any
  chain whose reduce half is stateless filters around at most one keyed filter with
  ``earliest_per_key`` and at most one ``banded`` filter right after it; :func:`cluster_plan`):

  1. map: one task per shard -> the chunk (kept in the object store) and, as separate objects, one
     part per partition ``0 .. P-1`` for each decided filter: exact dedup's ``(key, position, id)``
     table cut by a hash of the key (:mod:`..keyed`); near-dup's band buckets cut by a hash of
     ``(band, key)`` (:meth:`NearDupFilter.shuffle_pieces`: per partition the bucket codes, and the
     position, check signature and id of each row with a bucket there);
  2. decide: exact dedup, one task per partition (its parts only) -> the losers, "earliest position
     wins", cut by output part. Near-dup, one task per partition (its pieces from every shard, and
     exact dedup's losers, whose rows it leaves out as the one-process chain never shows them to
     near-dup) -> the checked pairs ``(later, earlier, earlier id)`` of its buckets
     (:meth:`NearDupFilter.checked_pairs`) and its counts; then one task over all the pairs -> in
     input order, each row's earliest partner that is kept when its turn comes
     (:meth:`NearDupFilter.earliest_kept`), as losers ``(position, kept id)`` cut by output part;
  3. write: one task per output part: for each of its shards in order, the decisions become the
     decided filters' verdicts, ``FilterChain.reduce`` runs the rest of the chain, and the rows are written by
     the same row writers the other engines use: one file in input order (an output named
     ``x.parquet`` / ``x.jsonl``, or a ``datasets`` folder: byte-identical to ``inline``), or, with
     ``--format parquet`` and a folder, ``P`` zstd part files per split named as on the Hub
     (``train-00000-of-00004.parquet``; concatenated in name order they are the input order).

  No process holds every bucket: a near-dup partition task holds its share of the ``(band, key)``
  buckets (12 bytes a row and band, over ``P``) and the signatures of the rows with a bucket there
  (a row's go to at most ``min(P, bands)`` partitions). The manifest's ``engine.near_dup_partitions``
  records, per partition, the node, rows, buckets, candidate pairs and checked pairs.

  The driver holds object references and one shard's rejects at a time: it writes the rejects file,
  report and manifest through the :class:`~kodolly.corridor.Sink`, checks the tally against the row
  counts in the written files' footers, and moves the files into place (they are written under a
  staging folder beside the output, removed on any failure).
- **on the driver** (any other chain, or no output: ``iter_rows``): :meth:`RayEngine.map` converts the
  shards on the cluster and hands the chunks back in shard order; the driver reduces and writes them.

Faults: a task that raises or whose worker or node dies is retried once by Ray (``max_retries=1``); an
object lost with a node is rebuilt from its lineage (the tasks are pure), so a node lost mid-run does
not change the output. A second failure stops the run with one line naming the input and the shard; a
:class:`~kodolly.errors.KodollyError` (an unreadable input) is not retried. An address that cannot be
reached fails in one line within :data:`CONNECT_SECONDS`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ...errors import ConfigError, KodollyError, ShardError, TallyMismatchError, one_line, require
from .. import keyed
from ..chain import FilterChain
from ..chunks import Chunk
from ..convert import Work, convert_shard
from ..retry import ATTEMPTS, convert_with_retry, shard_failed
from ..shards import Shard

CONNECT_SECONDS = 25.0  # an unreachable cluster fails within this (the issue asks for 30 s)
RETRIES = 1  # a failed task is tried once more (ATTEMPTS = 2 in all, as the other engines)
WINDOW_PER_CPU = 3  # shards in flight per cluster CPU when chunks come back to the driver


# ------------------------------------------------------------------------------------- tasks
# Module-level functions, so a node imports them from the installed kodolly (never shipped as code).


class _Fatal:
    """A :class:`KodollyError` raised on a node (not retried: the run stops with its message)."""

    def __init__(self, exc: KodollyError) -> None:
        self.cls, self.message, self.attrs = type(exc), str(exc), dict(exc.__dict__)

    def rebuild(self) -> KodollyError:
        exc = self.cls.__new__(self.cls)
        Exception.__init__(exc, self.message)
        exc.__dict__.update(self.attrs)
        return exc


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _convert_task(work: Work, shard: Shard) -> Any:
    try:
        return convert_shard(shard, work)
    except KodollyError as exc:
        return _Fatal(exc)


@dataclasses.dataclass(frozen=True)
class ClusterPlan:
    """Which filters of a chain's reduce half are decided in the cluster (chain positions, or ``None``):
    ``keyed`` the one ``earliest_per_key`` filter (exact dedup), ``near`` the one ``banded`` filter
    (near-dup; only right after the keyed one or first, so it sees the rows the driver would give it).
    The rest of the reduce half is stateless (it runs in the write tasks)."""

    keyed: int | None = None
    near: int | None = None

    def returns(self, partitions: int) -> int:
        """The map task's objects: meta, chunk, then one per partition for each decided filter."""
        return 2 + partitions * ((self.keyed is not None) + (self.near is not None))


def _map_task(work: Work, shard: Shard, plan: ClusterPlan, partitions: int) -> tuple:
    """``(meta, chunk, *keyed parts, *near-dup parts)``: a shard converted; the decided filters'
    prepared values cut by hash into one object per partition (in the object store, so a partition
    task fetches only its own and the driver holds none)."""
    try:
        chunk = convert_shard(shard, work)
    except KodollyError as exc:
        return (_Fatal(exc),) + (None,) * (plan.returns(partitions) - 1)
    return _split_keys(chunk, work.chain, plan, partitions, _node_id())


def _split_keys(chunk: Chunk, chain: FilterChain, plan: ClusterPlan, partitions: int, node: str) -> tuple:
    meta = {
        "seq": chunk.shard, "source": chunk.source, "records": chunk.records, "read": chunk.read,
        "rows": len(chunk.table), "node": node, "inputs_read": dict(chunk.inputs_read),
    }
    out: tuple = (meta, chunk)
    if plan.keyed is not None:
        table = keyed.key_table(chunk.shard, chunk.row_item, chunk.payloads.pop(plan.keyed))
        out += tuple(keyed.partition(table, partitions))
    if plan.near is not None:
        prepared = chunk.payloads.pop(plan.near)
        out += tuple(chain.filters[plan.near].shuffle_pieces(prepared, keyed.position(chunk.shard, chunk.row_item), partitions))
    return out


def _decide_task(bounds: list[int], *parts: Any) -> Any:
    """One partition's losers (from every shard's part), cut at ``bounds`` (the position each output
    part starts at)."""
    return _cut(keyed.earliest_wins(parts), bounds)


def _cut(losers: Any, bounds: list[int]) -> Any:
    pieces = keyed.cut(losers, bounds)
    return pieces[0] if len(pieces) == 1 else tuple(pieces)


def _pairs_task(flt: Any, n_dropped: int, *args: Any) -> tuple:
    """One near-dup partition: its buckets from every shard (``args[n_dropped:]``, in shard order)
    -> its checked pairs, and its counts; rows the keyed filter dropped (``args[:n_dropped]``: every
    partition's losers) are left out."""
    dropped = [t.column("pos").to_numpy() for t in args[:n_dropped]]
    pairs, counts = flt.checked_pairs(list(args[n_dropped:]), np.concatenate(dropped) if dropped else np.zeros(0, np.int64))
    return pairs, dict(counts, node=_node_id())


def _near_verdicts_task(flt: Any, bounds: list[int], *pairs: Any) -> Any:
    """Step 3 of near-dup over every partition's checked pairs, in input order: the dropped rows as
    losers ``(pos, kept_id)``, cut at ``bounds``."""
    import pyarrow as pa

    pos, kept = flt.earliest_kept(list(pairs))
    return _cut(pa.table([pa.array(pos, pa.int64()), pa.array(kept, pa.string())], schema=keyed.LOSER_SCHEMA), bounds)


class _Decided:
    """Stands in for the keyed filter in the writers' chain: its verdicts were decided in the cluster
    and are handed over as the filter's payload."""

    stateless = False

    def __init__(self, flt: Any) -> None:
        self.name = flt.name

    def prepare(self, rows: list[dict[str, Any]]) -> list[Any]:  # pragma: no cover - never reached
        raise RuntimeError("decided in the cluster: nothing to prepare")

    def decide(self, verdicts: list[str | None]) -> list[str | None]:
        return verdicts


def _write_task(finish: dict[str, Any], target: dict[str, Any], chunk_refs: list[Any], *losers: Any) -> tuple:
    """Finish the chunks of one output part in order (the cluster's decisions, then the rest of the
    chain) and write their rows; returns ``(meta, rejects of shard 1, ...)``. ``losers``: for each
    decided filter ``(pos, reason, count)`` of ``finish["decided"]``, its next ``count`` tables."""
    import ray

    chain: FilterChain = finish["chain"]
    decided, at = [], 0
    for pos, reason, count in finish["decided"]:
        decided.append((pos, reason, losers[at : at + count]))
        at += count
    writers = _open_writers(target)
    written: list[int] = []
    rejects: list[list[dict[str, Any]]] = []
    try:
        for ref in chunk_refs:
            chunk: Chunk = ray.get(ref)
            chunk.payloads = {pos: keyed.verdicts(chunk.shard, chunk.row_item, tables, reason) for pos, reason, tables in decided}
            chunk = chain.reduce(chunk)
            _write_rows(writers, target, chunk.table)
            written.append(len(chunk.table))
            rejects.append([rej for _item, rej in chunk.rejects])
            del chunk
        outputs = [w.close() for w in writers.values()]
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    meta = {"written": written, "outputs": [o for out in outputs for o in out], "node": _node_id()}
    return (meta, *rejects)


def _open_writers(target: dict[str, Any]) -> dict[str, Any]:
    from ...io.writers import ParquetRowWriter, open_row_writer

    if target["kind"] == "file":
        return {"": open_row_writer(Path(target["path"]), target["format"], dolly_only=target["dolly_only"])}
    folder = Path(target["path"])
    folder.mkdir(parents=True, exist_ok=True)
    return {
        split: ParquetRowWriter(folder / part_name(split, target["part"], target["parts"]), dolly_only=target["dolly_only"])
        for split in target["splits"]
    }


def _write_rows(writers: dict[str, Any], target: dict[str, Any], table: Any) -> None:
    if not len(table):
        return
    if target["kind"] == "file":
        writers[""].write_table(table)
        return
    import pyarrow.compute as pc

    from ...rows import SPLIT_FIELD

    column = table.column(SPLIT_FIELD)
    unknown = set(pc.unique(column).to_pylist()) - set(writers)
    if unknown:
        raise ValueError(f"rows of split(s) {sorted(unknown)} while the run writes {sorted(writers)}")
    for split, writer in writers.items():
        part = table.filter(pc.equal(column, split))
        if len(part):
            writer.write_table(part)


def part_name(split: str, part: int, parts: int) -> str:
    """A part file's name as the Hub names them: ``train-00000-of-00004.parquet``."""
    return f"{split}-{part:05d}-of-{parts:05d}.parquet"


# ------------------------------------------------------------------------------------ engine


class RayEngine:
    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None, partitions: int | None = None) -> None:
        if (address or os.environ.get("RAY_ADDRESS")) is None:
            # a Ray started for this run listens on 127.0.0.1 only (Ray's own switch for one-machine
            # use, read when ray is first imported) and sends no usage report
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        require("ray", "ray")  # without the extra: one line with the pip install that fixes it
        if partitions is not None and (not isinstance(partitions, int) or partitions < 1):
            raise ConfigError(f"partitions must be a whole number >= 1, not {partitions!r}")
        self.workers = workers
        self.address = address
        self.partitions = partitions
        self.n = workers or 1  # set from the cluster's CPUs once connected
        self.nodes: set[str] = set()
        self.slots: list[str] = []
        self.details: dict[str, Any] = {}  # what the manifest's engine entry adds (e.g. near_dup_partitions)
        self._owns_session = False
        self.session: Any = None  # the connected ray module (None: not connected)

    # ----------------------------------------------------------------------------- connecting

    def _connect(self) -> Any:
        if self.session is not None:
            return self.session
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        import ray

        _settle_abandoned(ray)
        if ray.is_initialized():  # the caller's own session (a notebook, a test): used, left running
            self.session = ray
        else:
            if address not in (None, "auto", "local"):
                _reachable(address)
            kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
            if address is None:  # found on this machine, or started here: nothing remote to wait for
                # (in the calling thread: a Ray started from another thread hangs in its first GCS query)
                try:
                    ray.init(num_cpus=self.workers, include_dashboard=False, **kwargs)
                except Exception as exc:  # noqa: BLE001 - one line
                    raise ConfigError(f"cannot start or find a Ray instance on this machine ({one_line(exc)})") from None
            else:
                _init_within(ray, address, kwargs, CONNECT_SECONDS)
            self._owns_session = True
            self.session = ray
        # one slot per CPU of every live node: shard k goes to slot k (round robin, so every node works
        # from the start); soft, so a shard whose node is gone runs elsewhere
        self.slots = [
            node["NodeID"] for node in ray.nodes() if node.get("Alive") for _ in range(int(node.get("Resources", {}).get("CPU", 0)))
        ]
        self.n = self.workers or max(1, len(self.slots))
        return ray

    def placed(self, task: Any, k: int) -> Any:
        """``task`` with shard ``k``'s place: its slot's node, softly (any node if that one is gone)."""
        if not self.slots:
            return task
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(self.slots[k % len(self.slots)], soft=True))

    def close(self) -> None:
        if self.session is not None and self._owns_session:
            self.session.shutdown()
        self.session = None
        self._owns_session = False

    def remote_task(self, fn: Any, **options: Any) -> Any:
        return self.session.remote(max_retries=RETRIES, retry_exceptions=True, **options)(fn)

    # ---------------------------------------------------------------------- chunks to the driver

    def map(self, shards: Iterable[Shard], work: Work) -> Iterator[Chunk]:
        """Convert the shards on the cluster; yield their chunks in shard order (a bounded window)."""
        ray = self._connect()
        task = self.remote_task(_convert_task)
        work_ref = ray.put(work)
        pending: list[tuple[Shard, Any]] = []
        window = WINDOW_PER_CPU * self.n
        for shard in shards:
            if shard.local:  # converted here, in its turn
                for item in pending:
                    yield self._chunk(*item)
                pending = []
                yield convert_with_retry(shard, work, convert_shard)
                continue
            pending.append((shard, self.placed(task, shard.seq).remote(work_ref, shard)))
            if len(pending) > window:
                yield self._chunk(*pending.pop(0))
        for item in pending:
            yield self._chunk(*item)

    def _chunk(self, shard: Shard, ref: Any) -> Chunk:
        out = self.get(shard, ref)
        if isinstance(out, _Fatal):
            raise out.rebuild()
        return out

    def get(self, shard: Shard | None, ref: Any) -> Any:
        """``ray.get``; a task that failed twice (or a node lost twice) stops the run with one line
        naming the shard (``None``: the run's only, empty, output part)."""
        ray = self.session
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None) if isinstance(exc, ray.exceptions.RayTaskError) else None
            cause = cause if cause is not None else exc
            text = f"{type(cause).__name__}: {cause}"
            if shard is None:
                raise ShardError(f"the output failed {ATTEMPTS} times: {text.strip().splitlines()[-1]}") from None
            raise shard_failed(shard, text) from None

    # ------------------------------------------------------------------------- the whole run

    def execute(self, run: Any, sink: Any) -> None:
        """Run ``run`` into ``sink``: in the cluster when the chain and the output allow it (see the
        module docstring), else chunk by chunk through the driver."""
        self._connect()
        plan = cluster_plan(run.chain)
        if plan is None or sink.paths is None or sink.kept is not None or sink.writer is None:
            for chunk in self.map(run.shards(), run.work):
                sink.write(run.chain.reduce(chunk))
            return
        _ClusterRun(self, run, sink, plan).execute()


def cluster_plan(chain: FilterChain) -> ClusterPlan | None:
    """How the reduce half of ``chain`` is decided in the cluster (:class:`ClusterPlan`), or ``None``
    when some filter there needs the driver (a stateful filter with neither ``earliest_per_key`` nor
    ``banded``, a second one of either, or a filter between them that could drop rows)."""
    keyed_pos: int | None = None
    near_pos: int | None = None
    for pos in range(chain.n_map, len(chain.filters)):
        flt = chain.filters[pos]
        before = [p for p in range(chain.n_map, pos) if p != keyed_pos]  # filters that would run first
        if pos in chain.keyed and getattr(flt, "earliest_per_key", False) and keyed_pos is None and near_pos is None:
            keyed_pos = pos
        elif pos in chain.keyed and getattr(flt, "banded", False) and near_pos is None and not before:
            near_pos = pos
        elif not getattr(flt, "stateless", False):
            return None
    return ClusterPlan(keyed_pos, near_pos)


class _ClusterRun:
    """One run decided and written in the cluster (map -> decide (-> near-dup pairs -> verdicts) -> write;
    see the module docstring)."""

    def __init__(self, engine: RayEngine, run: Any, sink: Any, plan: ClusterPlan) -> None:
        self.engine, self.run, self.sink, self.plan = engine, run, sink, plan
        self.ray = engine.session
        paths = sink.paths
        self.parts_mode = paths.format == "parquet" and paths.output.suffix == ""
        self.partitions = engine.partitions or engine.n
        self.staging = paths.output.parent / f".{paths.output.name}.ray-{uuid.uuid4().hex[:12]}"
        self.counts: list[Any] = []
        engine.details.pop("near_dup_partitions", None)

    def execute(self) -> None:
        sink = self.sink
        # the sink's own row writer is replaced by the files the nodes write (moved into place at commit)
        sink.writer.abort()
        # the nodes' files go, at close, to the output set's temporary for the output: the sink commits
        # them with the rejects, report and manifest, as for every engine
        staged = _StagedOutput(self.staging, self.sink.paths.output, sink.out.stage(self.sink.paths.output), parts=self.parts_mode)
        sink.writer = staged
        self.staging.mkdir(parents=True)
        shards, metas, chunks, keys, pieces = self._map()
        groups = self._groups(shards, metas)
        if shards:  # the position each output part starts at, and the end
            bounds = [int(keyed.position(shards[g[0]].seq, 0)) for g in groups] + [int(keyed.position(shards[-1].seq + 1, 0))]
        else:
            bounds = [0, 1]
        losers = self._decide(keys, bounds, len(groups))
        near = self._near(pieces, losers, bounds, len(groups))
        self._write(shards, metas, chunks, groups, losers, near, staged)
        if self.counts:  # what each near-dup partition held and found (the manifest's engine entry)
            self.engine.details["near_dup_partitions"] = [dict(self.engine.get(None, ref), partition=k) for k, ref in enumerate(self.counts)]

    # 1. map
    def _map(self) -> tuple[list[Shard], list[dict[str, Any]], list[Any], list[list[Any]], list[list[Any]]]:
        """Shards, metas, chunk refs, and per partition the refs of every shard's keyed part and near-dup piece."""
        ray, run, plan = self.ray, self.run, self.plan
        p = self.partitions
        task = self.engine.remote_task(_map_task, num_returns=plan.returns(p))
        work_ref = ray.put(run.work)
        shards, meta_refs, chunks = [], [], []
        keys: list[list[Any]] = [[] for _ in range(p)] if plan.keyed is not None else []
        pieces: list[list[Any]] = [[] for _ in range(p)] if plan.near is not None else []
        for shard in run.shards():
            if shard.local:  # converted here (a converter that combines records), then handed to the cluster
                chunk = convert_with_retry(shard, run.work, convert_shard)
                refs = [ray.put(x) for x in _split_keys(chunk, run.chain, plan, p, "driver")]
                del chunk
            else:
                refs = self.engine.placed(task, shard.seq).remote(work_ref, shard, plan, p)
            shards.append(shard.without_bytes())  # the bytes of a stream's range went with the task
            meta_refs.append(refs[0])
            chunks.append(refs[1])
            rest = list(refs[2:])
            for per_partition in (keys, pieces):
                if per_partition:
                    for k in range(p):
                        per_partition[k].append(rest.pop(0))
        metas = []
        for shard, ref in zip(shards, meta_refs):
            meta = self.engine.get(shard, ref)
            if isinstance(meta, _Fatal):
                raise meta.rebuild()
            metas.append(meta)
        return shards, metas, chunks, keys, pieces

    def _groups(self, shards: list[Shard], metas: list[dict[str, Any]]) -> list[list[int]]:
        """Shards (by index) per output part: contiguous runs of about equal rows (no shard: one empty part)."""
        if not shards:
            return [[]]
        n = min(self.partitions, len(shards)) if self.parts_mode else 1
        rows = np.array([m["rows"] for m in metas], dtype=np.float64) + 1.0
        before = np.concatenate(([0.0], np.cumsum(rows)[:-1]))
        part = np.minimum((before * n / rows.sum()).astype(np.int64), n - 1)
        return [list(np.flatnonzero(part == g)) for g in range(n) if (part == g).any()]

    # 2. decide
    def _decide(self, keys: list[list[Any]], bounds: list[int], n_groups: int) -> list[list[Any]]:
        """``losers[partition][group]`` of the keyed filter (each partition task gets its parts only)."""
        if self.plan.keyed is None or not keys or not keys[0]:
            return []
        task = self.engine.remote_task(_decide_task, num_returns=max(1, n_groups))
        out = []
        for parts in keys:
            refs = task.remote(bounds, *parts)
            out.append([refs] if n_groups == 1 else list(refs))
        keys.clear()  # the tasks hold what they need
        return out

    # 2b. near-dup: per partition the checked pairs of its buckets, then one task for the verdicts
    def _near(self, pieces: list[list[Any]], losers: list[list[Any]], bounds: list[int], n_groups: int) -> list[Any]:
        """``near[group]``: the near-dup losers of each output part (one table each)."""
        if self.plan.near is None or not pieces or not pieces[0]:
            return []
        flt = self.ray.put(self.run.chain.filters[self.plan.near])
        dropped = [ref for per_partition in losers for ref in per_partition]  # the keyed filter's losers: out of the shuffle
        task = self.engine.remote_task(_pairs_task, num_returns=2)
        pairs, counts = [], []
        for parts in pieces:
            pair_ref, count_ref = task.remote(flt, len(dropped), *dropped, *parts)
            pairs.append(pair_ref)
            counts.append(count_ref)
        pieces.clear()
        verdicts = self.engine.remote_task(_near_verdicts_task, num_returns=max(1, n_groups)).remote(flt, bounds, *pairs)
        self.counts = counts  # read once the rows are written
        return [verdicts] if n_groups == 1 else list(verdicts)

    # 3. write, and hand the counts and rejects to the sink in position order
    def _write(self, shards, metas, chunks, groups, losers, near, staged: "_StagedOutput") -> None:
        ray, run, sink, plan = self.ray, self.run, self.sink, self.plan
        chain = run.chain
        filters = list(chain.filters)
        decided = []  # (pos, reason, tables per output part) of each filter decided in the cluster

        def exact_losers(g: int) -> list:  # output part g's losers, one table per dedup partition
            return [per_part[g] for per_part in losers]

        def near_losers(g: int) -> list:  # output part g's near-duplicates (one table)
            return [near[g]] if near else []

        for pos, per_group in ((plan.keyed, exact_losers), (plan.near, near_losers)):
            if pos is not None:
                decided.append((pos, chain.filters[pos].duplicate_reason, per_group))
                filters[pos] = _Decided(chain.filters[pos])
        finish = ray.put({"chain": FilterChain(filters), "decided": [(pos, reason, len(tables(0))) for pos, reason, tables in decided]})
        out, dolly_only = sink.paths, getattr(run.spec.output, "dolly_only", False)
        splits = _splits_of(chain) if self.parts_mode else []
        calls = []
        for g, members in enumerate(groups):
            if self.parts_mode:
                target = {"kind": "parts", "path": str(self.staging / out.output.name), "part": g, "parts": len(groups),
                          "splits": splits, "dolly_only": dolly_only}
            else:
                target = {"kind": "file", "path": str(self.staging / out.output.name), "format": out.format, "dolly_only": dolly_only}
            task = self.engine.remote_task(_write_task, num_returns=1 + len(members))
            refs = task.remote(finish, target, [chunks[i] for i in members], *[t for _pos, _reason, tables in decided for t in tables(g)])
            calls.append((members, refs if members else [refs]))
        planned = {d["seq"]: d for d in run.planned}
        for members, refs in calls:
            meta = self.engine.get(shards[members[0]] if members else None, refs[0])
            staged.outputs.extend(meta["outputs"])
            for j, i in enumerate(members):
                shard, m = shards[i], metas[i]
                sink.tally.records += m["records"]
                counts = sink.tally.source(m["source"])
                counts.read += m["read"]
                counts.written += meta["written"][j]
                sink.report.count_written(shard.name, meta["written"][j])  # per input (the report's inputs)
                sink.inputs_read.update(m["inputs_read"])
                rejects = self.engine.get(shard, refs[1 + j])
                sink.write_rejects(rejects)
                if shard.seq in planned:
                    planned[shard.seq]["node"] = m["node"]
                    planned[shard.seq]["written_by"] = meta["node"]
                self.engine.nodes.add(m["node"])
                if sink.bar is not None:
                    sink.bar.update(meta["written"][j] + len(rejects))
                del rejects
        staged.check(sink.tally.written)


def _splits_of(chain: FilterChain) -> list[str]:
    from ...rows import DEFAULT_SPLIT

    for flt in chain.filters:
        ratios = getattr(flt, "ratios", None)
        if flt.name == "split" and ratios:
            return list(ratios)
    return [DEFAULT_SPLIT]


class _StagedOutput:
    """The sink's row writer for files the nodes wrote under a staging folder: :meth:`close` checks
    nothing is missing and moves them into place; :meth:`abort` removes the staging folder."""

    def __init__(self, staging: Path, final: Path, target: Path, *, parts: bool) -> None:
        self.staging, self.final, self.target, self.parts = staging, final, target, parts
        self.outputs: list[dict[str, Any]] = []
        self.rows = 0

    def write_table(self, table: Any) -> None:  # pragma: no cover - the nodes write the rows
        raise RuntimeError("rows of a cluster run are written by the nodes")

    write = write_table

    def check(self, written: int) -> None:
        """The tally from the files: the rows in the written files' footers must be the rows counted."""
        import pyarrow.parquet as pq

        total = 0
        for out in self.outputs:
            path = Path(out["path"])
            if path.suffix == ".parquet" and path.is_file():
                rows = pq.read_metadata(path).num_rows
            else:
                rows = out["rows"]
            if rows != out["rows"]:
                raise TallyMismatchError(f"{path}: {rows} rows in the file, {out['rows']} written by the node")
            total += rows
        if total != written:
            raise TallyMismatchError(f"the written files hold {total} rows, the tally counts {written} written")
        self.rows = total

    def close(self) -> list[dict[str, Any]]:
        staged = self.staging / self.final.name
        _replace(staged, self.target)
        shutil.rmtree(self.staging, ignore_errors=True)
        if not self.parts:
            return [dict(out, path=str(self.final)) for out in self.outputs]
        files = {Path(out["path"]).name: out["xxh3_128"] for out in self.outputs}
        return [{
            "path": str(self.final), "rows": self.rows, "bytes": sum(out["bytes"] for out in self.outputs),
            "files": dict(sorted(files.items())),
        }]

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _replace(src: Path, dst: Path) -> None:
    """Move a finished file or folder into place (an existing folder is replaced once the new one is in)."""
    if src.is_dir() and dst.is_file():  # a row writer's empty temporary where the parts folder goes
        dst.unlink()
    if dst.is_dir() and src.is_dir():
        old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)


# ------------------------------------------------------------------------------- connecting


def _host_port(address: str) -> tuple[str, int]:
    rest = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        if address.startswith("ray://") and rest and ":" not in rest:
            return rest, 10001  # Ray Client's default port
        raise ConfigError(f"--address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    return host.strip("[]"), int(port)


def _reachable(address: str) -> None:
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=min(10.0, CONNECT_SECONDS)):
            pass
    except OSError as exc:
        raise ConfigError(f"--address {address}: cannot reach a Ray cluster there ({exc.strerror or exc})") from None


_abandoned: list[threading.Thread] = []  # connects given up on by _init_within, perhaps still running
SETTLE_SECONDS = 120.0  # how long the next connect waits for such a connect to end


def _settle_abandoned(ray: Any, seconds: float = SETTLE_SECONDS) -> None:
    """A connect that :func:`_init_within` gave up on keeps running in its thread and may still finish,
    leaving this process half-connected (Ray Client's global state): the next ``ray.init`` then fails.
    Before connecting again, wait for such a connect to end and shut down what it made."""
    while _abandoned:
        thread = _abandoned.pop()
        thread.join(seconds)
        if not thread.is_alive():
            _undo_connect(ray)


def _undo_connect(ray: Any) -> None:
    """Shut down what a connect made, if anything (a session, or Ray Client's half-set context)."""
    try:
        ray.shutdown()
    except Exception:  # noqa: BLE001 - nothing was connected: nothing to undo
        pass


SERVER_INIT_ATTEMPTS = 3  # a Ray Client server that failed to start for this client is asked this often in all


def _init_within(ray: Any, address: str, kwargs: dict[str, Any], seconds: float) -> None:
    """``ray.init`` that gives up after ``seconds`` (a port that answers but is no Ray cluster).

    A Ray Client connect whose server side failed to start ("Initialization failure from server": the
    head's proxy forks a server process per client, and that process sometimes dies at once, ray-project/ray
    #63202) is tried again, up to :data:`SERVER_INIT_ATTEMPTS` times within the same ``seconds``: each try
    gets a new server process."""
    deadline = time.monotonic() + seconds
    for attempt in range(1, SERVER_INIT_ATTEMPTS + 1):
        error = _init_once(ray, address, kwargs, seconds, max(0.0, deadline - time.monotonic()))
        if error is None:
            return
        _undo_connect(ray)  # a failed Ray Client init can leave its context half set: the next init would fail
        if not _server_failed_to_start(error) or attempt == SERVER_INIT_ATTEMPTS or time.monotonic() >= deadline:
            raise ConfigError(f"--address {address}: cannot connect to Ray ({one_line(error)})") from None


def _init_once(ray: Any, address: str, kwargs: dict[str, Any], seconds: float, remaining: float) -> BaseException | None:
    """One ``ray.init`` in a thread, waited for ``remaining`` seconds: the error it raised, or None."""
    result: dict[str, BaseException | None] = {}

    def connect() -> None:
        quiet = logging.getLogger("ray._private.worker")  # "SIGTERM handler is not set ...": not in the main thread
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            ray.init(address=address, **kwargs)
            result["error"] = None
        except BaseException as exc:  # noqa: BLE001 - reported by the caller, in its thread
            result["error"] = exc
        finally:
            quiet.setLevel(level)

    thread = threading.Thread(target=connect, name="kodolly-ray-connect", daemon=True)
    thread.start()
    thread.join(remaining)
    if thread.is_alive():
        _abandoned.append(thread)
        raise ConfigError(f"--address {address}: no Ray cluster answered within {seconds:.0f} s")
    return result.get("error")


def _server_failed_to_start(error: BaseException) -> bool:
    return isinstance(error, ConnectionAbortedError) and str(error).startswith("Initialization failure from server")


def create(workers: int | None = None, **options: Any) -> RayEngine:
    unknown = set(options) - {"address", "partitions"}
    if unknown:
        raise ConfigError(f"engine ray: unknown option(s) {', '.join(sorted(unknown))} (options: address, partitions)")
    return RayEngine(workers, **options)


__all__ = ["ClusterPlan", "RayEngine", "cluster_plan", "create", "part_name"]
