"""The run spec: one frozen description of a run, built alike by the CLI, the TOML run config and the API.

A :class:`RunSpec` holds the input groups (sources, converter, options, category override), the
filter settings (the shape :func:`kodolly.filters.build_filters` takes) or, from Python, a chain of
filter objects, the output, and the engine. :meth:`RunSpec.as_dict` is stored in the manifest
(``run_spec``); :meth:`RunSpec.from_dict` reads it back, so ``kodolly convert --replay MANIFEST``
runs the same thing again.

One set of defaults for every door: ``filters={}`` (the default) means the default chain --
content checks, exact dedup, every row in ``train`` -- in the CLI, the run config and the API.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..converters import Converter
from ..errors import ConfigError

SPEC_VERSION = 1


@dataclass(frozen=True)
class InputGroup:
    """One group of a run: sources read with one converter, its options and category override.

    A run takes several groups; they share the filters (and so the dedup state) and are counted per
    source in one tally.
    """

    sources: Sequence[str | os.PathLike[str]]
    converter: str | Converter
    options: Mapping[str, Any] | None = None
    category: str | None = None


@dataclass(frozen=True)
class OutputSpec:
    """Where a run writes: ``path`` (``None``: nothing is written), its format (default: from the
    name), Dolly columns only, and the rejects file (default: beside the output)."""

    path: str | os.PathLike[str] | None = None
    format: str | None = None
    dolly_only: bool = False
    rejects: str | os.PathLike[str] | None = None


@dataclass(frozen=True)
class RunSpec:
    """A whole run. ``filters`` are filter settings (``build_filters``); ``None`` means the filter
    objects in ``chain`` are used as given (API only; such a run cannot be replayed from its
    manifest). ``engine``: ``inline``, ``processes`` or ``ray`` (``None``: the default for this
    machine); ``workers``: worker processes / cluster tasks; ``batch_size``: at most this many
    records per shard where an input can be cut (``None``: cut by bytes only) -- the output does not
    depend on it."""

    groups: tuple[InputGroup, ...]
    output: OutputSpec = field(default_factory=OutputSpec)
    filters: Mapping[str, Any] | None = field(default_factory=dict)
    chain: tuple[Any, ...] = ()
    engine: str | None = None
    workers: int | None = None
    batch_size: int | None = None
    engine_options: Mapping[str, Any] = field(default_factory=dict)
    limits: Mapping[str, int] | None = None  # kodolly.io.limits.Limits fields; None: the limits in force

    def build_filters(self) -> list[Any]:
        """The filter chain of this run (fresh filter objects from the settings, or ``chain``)."""
        if self.filters is None:
            return list(self.chain)
        from ..filters import build_filters

        return build_filters(self.filters)

    def as_dict(self) -> dict[str, Any]:
        """The spec as plain JSON values (for the manifest)."""
        return {
            "spec_version": SPEC_VERSION,
            "groups": [
                {
                    "sources": [os.path.abspath(os.fspath(s)) for s in g.sources],
                    "converter": g.converter.name if isinstance(g.converter, Converter) else g.converter,
                    "options": dict(g.options or {}),
                    "category": g.category,
                }
                for g in self.groups
            ],
            "filters": None if self.filters is None else _plain(self.filters),
            "custom_filters": [getattr(f, "name", type(f).__name__) for f in self.chain] if self.filters is None else [],
            "output": {
                "path": _abs(self.output.path),
                "format": self.output.format,
                "dolly_only": self.output.dolly_only,
                "rejects": _abs(self.output.rejects),
            },
            "engine": self.engine,
            "workers": self.workers,
            "batch_size": self.batch_size,
            "engine_options": _plain(self.engine_options),
            "limits": None if self.limits is None else dict(self.limits),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "run spec") -> "RunSpec":
        """A spec back from :meth:`as_dict` (e.g. a manifest's ``run_spec``)."""
        if data.get("filters") is None:
            names = ", ".join(data.get("custom_filters") or []) or "none"
            raise ConfigError(f"{where}: the run used filter objects given in Python ({names}); it cannot be replayed from its manifest")
        out = data.get("output") or {}
        return cls(
            groups=tuple(InputGroup(list(g["sources"]), g["converter"], dict(g.get("options") or {}), g.get("category")) for g in data["groups"]),
            output=OutputSpec(out.get("path"), out.get("format"), bool(out.get("dolly_only")), out.get("rejects")),
            filters=dict(data["filters"]),
            engine=data.get("engine"),
            workers=data.get("workers"),
            batch_size=data.get("batch_size"),
            engine_options=dict(data.get("engine_options") or {}),
            limits=dict(data["limits"]) if data.get("limits") else None,
        )


def make_spec(
    sources: Sequence[str | os.PathLike[str]],
    converter: str | Converter,
    output: str | os.PathLike[str] | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    category: str | None = None,
    filters: Mapping[str, Any] | Sequence[Any] | None = None,
    output_format: str | None = None,
    dolly_only: bool = False,
    rejects_path: str | os.PathLike[str] | None = None,
    groups: Sequence[InputGroup] = (),
    engine: str | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    engine_options: Mapping[str, Any] | None = None,
    limits: Any = None,
) -> RunSpec:
    """A spec from the arguments of :func:`kodolly.convert`. ``filters``: ``None`` or a mapping =
    filter settings (``None`` = the defaults); a sequence = filter objects used as given."""
    all_groups = ([InputGroup(list(sources), converter, options, category)] if sources else []) + list(groups)
    if not all_groups:
        raise ConfigError("nothing to convert: no sources given")
    if filters is None or isinstance(filters, Mapping):
        settings, chain = dict(filters or {}), ()
    else:
        settings, chain = None, tuple(filters)
    return RunSpec(
        groups=tuple(all_groups),
        output=OutputSpec(output, output_format, dolly_only, rejects_path),
        filters=settings,
        chain=chain,
        engine=engine,
        workers=workers,
        batch_size=batch_size,
        engine_options=dict(engine_options or {}),
        limits=None if limits is None else dict(limits._asdict() if hasattr(limits, "_asdict") else limits),
    )


def _abs(path: Any) -> str | None:
    return None if path is None else os.path.abspath(os.fspath(path))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
