"""The run config file: a whole ``kodolly convert`` run in one reviewable TOML file.

::

    [[inputs]]
    from = "alpaca"                 # a converter name (kodolly formats), or "auto"
    paths = ["data/koalpaca_v1.1.jsonl"]
    options = {license = "CC BY-NC 4.0"}

    [[inputs]]
    from = "dolly"
    path = "data/ko_dolly.jsonl"
    category = "open_qa"            # optional category override

    [output]
    path = "out/ko-dolly.parquet"   # format from the name, or format = "parquet" | "jsonl" | "datasets"

    [filters.score]
    min = 30                        # keep rows with score > 30
    keep_unscored = false

    [filters.domain]
    exclude = ["예체능", "종교", "보건"]

    [filters.content]
    min_chars = {response = 2}
    min_hangul = {response = 0.3}

    [pii]
    action = "mask"                 # mask | reject | report personal identifiers (kodolly.filters.pii)

    [dedup]
    key = ["instruction", "context", "response"]

    [near_dup]
    threshold = 0.8

    [split]
    train = 0.9
    validation = 0.1

    [engine]
    name = "processes"              # inline | processes | ray (default: processes on a multi-core machine)
    workers = 2

    [limits]                        # the input limits (kodolly.io.limits), keys as the options
    max_depth = 128                 # --max-depth: deepest nesting of one record
    max_record_mb = 64              # --max-record-mb: largest record, in MiB
    max_expansion = 100             # --max-expansion: decompressed / compressed size of a zip member or .gz

The file is checked against ``schemas/run-config.schema.json``; relative paths are relative to
the file. Command-line options override it (:func:`merge`): options given on the command line
replace the same settings of the file, and inputs given on the command line replace its inputs.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import jsonschema

from .errors import ConfigError
from .io import limits as limits_mod
from .corridor.spec import InputGroup, OutputSpec, RunSpec

FILTER_SECTIONS = ("score", "category", "domain", "content")
TOP_SECTIONS = ("pii", "dedup", "near_dup", "split")


@dataclass
class RunConfig:
    """A run, ready to go: input groups, output settings and the filter settings."""

    inputs: list[InputGroup]
    output: str | None = None
    output_format: str | None = None
    dolly_only: bool = False
    rejects: str | None = None
    filters: dict[str, Any] = field(default_factory=dict)  # build_filters settings
    engine: str | None = None
    workers: int | None = None
    batch_size: int | None = None
    engine_options: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, int] | None = None  # kodolly.io.limits.Limits fields; None: the limits in force

    def build_filters(self) -> list[Any]:
        return self.spec().build_filters()

    def spec(self) -> RunSpec:
        """The frozen run spec of this config (what every door runs)."""
        return RunSpec(
            groups=tuple(self.inputs),
            output=OutputSpec(self.output, self.output_format, self.dolly_only, self.rejects),
            filters=dict(self.filters),
            engine=self.engine,
            workers=self.workers,
            batch_size=self.batch_size,
            engine_options=dict(self.engine_options),
            limits=None if self.limits is None else dict(self.limits),
        )


def key_values(pairs: Sequence[str], option: str) -> dict[str, Any]:
    """The ``KEY=VALUE`` pairs of a repeatable command-line option (``-O/--option``, ``--set``); VALUE is
    read as JSON when it parses (``true``, ``3``, ``[1, 2]``), else as text. A pair without ``=`` or
    without a key is an error naming ``option``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} {pair!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def load_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run config file, check it against the schema and make its paths absolute."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not a valid TOML file: {exc}") from None
    validate(data, str(p))
    return resolve_paths(data, p.resolve().parent)


def validate(data: Mapping[str, Any], where: str = "config") -> None:
    """Check a config dict against the schema. In a dict built in Python (or by the command line)
    an input's ``from`` may also be a :class:`~kodolly.converters.Converter` object."""
    from .converters import Converter
    from .manifest import load_schema

    data = dict(data)
    if isinstance(data.get("inputs"), list):
        data["inputs"] = [
            dict(item, **{"from": item["from"].name}) if isinstance(item, Mapping) and isinstance(item.get("from"), Converter) else item
            for item in data["inputs"]
        ]
    try:
        jsonschema.validate(data, load_schema("run-config"))
    except jsonschema.ValidationError as exc:
        at = "/".join(str(part) for part in exc.absolute_path) or "(top)"
        raise ConfigError(f"{where}: {at}: {exc.message}") from None


def resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    def absolute(value: str) -> str:
        if value.startswith("hf://"):  # a Hub source (kodolly.io.hub_source), not a path
            return value
        return value if os.path.isabs(value) else str(base / value)

    data = dict(data)
    inputs = []
    for item in data.get("inputs", []):
        item = dict(item)
        if "path" in item:
            item["path"] = absolute(item["path"])
        if "paths" in item:
            item["paths"] = [absolute(v) for v in item["paths"]]
        inputs.append(item)
    if inputs:
        data["inputs"] = inputs
    if "output" in data:
        out = dict(data["output"])
        for key in ("path", "rejects"):
            if key in out:
                out[key] = absolute(out[key])
        data["output"] = out
    return data


REPLACED_TABLES = frozenset({"split"})  # ratios must add up to 1: an override replaces them all


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` over ``base``: tables merge key by key (except ``split``, which is replaced
    whole), anything else (lists too) replaces."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key not in REPLACED_TABLES:
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def from_dict(data: Mapping[str, Any], *, where: str = "config", strict: bool = False, on_detect: Any = None) -> RunConfig:
    """A :class:`RunConfig` from a checked config dict (file, command line, or both merged).

    An input ``from = "auto"`` is detected file by file (:func:`kodolly.detection.detect_groups`):
    it becomes one group per converter found; ``strict`` makes a file no converter fits an error
    instead of one ``unknown_format`` reject.
    """
    from .detection import detect_groups

    validate(data, where)
    limits = limits_mod.from_settings(data["limits"])._asdict() if "limits" in data else None
    groups = []
    with limits_mod.use(limits):  # detection reads first records as the run will
        for item in data.get("inputs", []):
            paths = [item["path"]] if "path" in item else list(item["paths"])
            converter = item["from"]
            options, category = dict(item.get("options") or {}), item.get("category")
            if converter == "auto":
                groups.extend(detect_groups(paths, options, category, strict=strict, on_detect=on_detect))
                continue
            groups.append(InputGroup(paths, converter, options, category))
    if not groups:
        raise ConfigError(f"{where}: no inputs: give SOURCES with --from, --input NAME:PATH, or [[inputs]] in the config file")
    out = data.get("output", {})
    filters: dict[str, Any] = {}
    for name in FILTER_SECTIONS:
        if name in data.get("filters", {}):
            filters[name] = dict(data["filters"][name])
    for name in TOP_SECTIONS:
        if name in data:
            filters[name] = dict(data[name])
    engine = dict(data.get("engine") or {})
    return RunConfig(
        inputs=groups,
        output=out.get("path"),
        output_format=out.get("format"),
        dolly_only=bool(out.get("dolly_only", False)),
        rejects=out.get("rejects"),
        filters=filters,
        engine=engine.pop("name", None),
        workers=engine.pop("workers", None),
        batch_size=engine.pop("batch_size", None),
        engine_options=engine,
        limits=limits,
    )
