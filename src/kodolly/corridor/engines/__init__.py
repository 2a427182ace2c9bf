"""Engines: where :func:`~kodolly.corridor.convert_shard` runs. One module per engine.

An engine module defines ``create(workers: int | None, **options) -> Engine``. An :class:`Engine`
maps shards to converted chunks and hands them back **in shard order** (``chunk.shard`` ascending);
the driver then runs the chain's ``reduce`` and the sink. A new engine is one module here plus one
line in :data:`ENGINES`.

An engine may also take over the whole run (e.g. keyed filters decided in a cluster, part files
written by the nodes) by defining ``execute(run, sink) -> None`` (see :func:`kodolly.corridor.run.execute`).
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Iterable, Iterator, Protocol

from ...errors import ConfigError, MissingExtraError
from ..chunks import Chunk
from ..convert import Work
from ..shards import Shard

ENGINES: dict[str, str] = {
    "inline": "kodolly.corridor.engines.inline",
    "processes": "kodolly.corridor.engines.processes",
    "ray": "kodolly.corridor.engines.ray",
}
EXTRAS = {"ray": "ray"}  # engine -> the extra that installs what it needs


class Engine(Protocol):
    name: str

    def map(self, shards: Iterable[Shard], work: Work) -> Iterator[Chunk]:
        """Convert the shards (:func:`convert_shard`) and yield their chunks in shard order."""
        ...

    def close(self) -> None:
        """Stop whatever the engine started (processes, connections)."""
        ...


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    """Worker processes when not given: the usable cores, at most 2 (beyond that the single writing
    process is the limit)."""
    return max(1, min(2, usable_cores()))


def default_engine() -> str:
    """``processes`` on a machine with more than one usable core, else ``inline``."""
    return "processes" if usable_cores() > 1 else "inline"


def get_engine(name: str | None = None, *, workers: int | None = None, **options: Any) -> Engine:
    """The engine called ``name`` (``None``: :func:`default_engine`). A missing engine module or
    extra fails with one line saying how to get it."""
    name = name or default_engine()
    module_name = ENGINES.get(name)
    if module_name is None:
        raise ConfigError(f"unknown engine {name!r} (engines: {', '.join(ENGINES)})")
    try:
        module = importlib.import_module(module_name)
        return module.create(workers, **options)
    except ModuleNotFoundError as exc:  # the engine's own module, or a package it needs
        extra = EXTRAS.get(name)
        if exc.name == module_name:
            raise ConfigError(f"engine {name!r} is not part of this kodolly build") from None
        if extra is not None:
            raise MissingExtraError((exc.name or name).split(".")[0], extra) from None
        raise


__all__ = ["ENGINES", "Engine", "default_engine", "default_workers", "get_engine", "usable_cores"]
