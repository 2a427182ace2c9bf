"""The corridor: one run core, the engine a choice at the door.

::

    plan    inputs -> shards              (shards.py: JSONL and CSV byte ranges, item ranges, whole inputs, whole groups)
    map     convert_shard(shard, work)    (convert.py; columnar.py is its fast path) -> Chunk (chunks.py)
            read -> convert -> normalise -> check -> chain.map_* (stateless filters, keyed prepare)
    reduce  chain.reduce(chunk)           (chain.py: keyed decide, other filters), in position order
    sink    Sink.write(chunk)             (sink.py: writer, rejects, tally, report, manifest, commit)
    engines engines/inline.py | engines/processes.py | engines/ray.py  (get_engine, one module each)

A run is described by a frozen :class:`RunSpec` (spec.py), built alike by the CLI, the run config and
the Python API, and executed by :func:`execute` (run.py).
"""

from __future__ import annotations

from .chain import Filter, FilterChain
from .chunks import Chunk, reject_record
from .convert import GroupWork, Work, check_category, convert_records, convert_shard
from .engines import ENGINES, Engine, default_engine, default_workers, get_engine
from .run import PreparedRun, execute, iter_chunks, prepare
from .shards import Shard, plan_shards
from .sink import RunResult, Sink
from .spec import InputGroup, OutputSpec, RunSpec, make_spec

__all__ = [
    "Chunk",
    "ENGINES",
    "Engine",
    "Filter",
    "FilterChain",
    "GroupWork",
    "InputGroup",
    "OutputSpec",
    "PreparedRun",
    "RunResult",
    "RunSpec",
    "Shard",
    "Sink",
    "Work",
    "check_category",
    "convert_records",
    "convert_shard",
    "default_engine",
    "default_workers",
    "execute",
    "get_engine",
    "iter_chunks",
    "make_spec",
    "plan_shards",
    "prepare",
    "reject_record",
]
