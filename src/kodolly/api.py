"""The public Python API; the CLI is a thin shell over these functions."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from .converters import Converter
from .io.hub_source import with_card_license
from .io.limits import Limits
from .io.limits import use as use_limits
from .io.sources import Input, expand_inputs
from .pipeline import DEFAULT_BATCH_SIZE, Filter, InputGroup, RunResult, process, run
from .registry import get_converter, list_converters
from .tally import Tally, reason_key

PathLike = str | os.PathLike[str]


def convert(
    sources: PathLike | Sequence[PathLike],
    converter: str | Converter = "alpaca",
    output: PathLike | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    category: str | None = None,
    filters: Sequence[Filter] = (),
    output_format: str | None = None,
    dolly_only: bool = False,
    rejects_path: PathLike | None = None,
    progress: bool | None = False,
    groups: Sequence[InputGroup] = (),
    workers: int | None = None,
    limits: Limits | None = None,
) -> RunResult:
    """Convert ``sources`` (files, folders, globs, zips) with a named converter.

    With ``output`` the rows are written there (``.parquet``, ``.jsonl`` or a ``datasets`` folder)
    with ``<name>.rejects.jsonl``, ``<name>.manifest.json`` and ``<name>.report.json`` beside;
    without it the kept rows are returned in ``result.rows``. ``result.tally`` always holds the
    counts. ``filters`` is a filter chain, e.g. ``kodolly.filters.build_filters({...})``;
    ``groups`` adds more :class:`InputGroup` s (sources read with another converter) to the run.
    ``workers``: processes converting JSON Lines inputs (default: the usable cores, at most 2); the
    output is the same whatever the number. ``converter="auto"`` detects each file (and zip member)
    on its own and reads each with the converter that fits (:func:`kodolly.detection.detect_groups`).
    ``limits``: the input limits (:class:`kodolly.io.limits.Limits`).
    """
    sources = _as_list(sources)
    with use_limits(limits):
        if converter == "auto":
            from .detection import detect_groups

            groups = [*detect_groups(sources, options, category), *groups]
            sources, converter = [], groups[0].converter
        return run(
            sources,
            converter,
            output,
            options=options,
            category=category,
            filters=filters,
            output_format=output_format,
            dolly_only=dolly_only,
            rejects_path=rejects_path,
            progress=progress,
            groups=groups,
            workers=workers,
        )


def run_config(
    config: PathLike | Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
    progress: bool | None = False,
    workers: int | None = None,
) -> RunResult:
    """Run a whole conversion described by a run config (a TOML file path, or the same as a dict).

    ``overrides`` (same shape as the file) replace settings of the file; see :mod:`kodolly.config`.
    """
    from . import config as _config

    if isinstance(config, Mapping):
        data = dict(config)
    else:
        data = _config.load_file(config)
    if overrides:
        data = _config.merge(data, overrides)
    cfg = _config.from_dict(data)
    return run(
        [],
        cfg.inputs[0].converter,
        cfg.output,
        filters=cfg.build_filters(),
        output_format=cfg.output_format,
        dolly_only=cfg.dolly_only,
        rejects_path=cfg.rejects,
        progress=progress,
        groups=cfg.inputs,
        workers=workers,
    )


def iter_rows(
    sources: PathLike | Sequence[PathLike],
    converter: str | Converter = "alpaca",
    *,
    options: Mapping[str, Any] | None = None,
    category: str | None = None,
    filters: Sequence[Filter] = (),
    rejects: list[dict[str, Any]] | None = None,
    tally: Tally | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[dict[str, Any]]:
    """Stream the kept rows one by one; rejects are appended to ``rejects`` when a list is given."""
    conv = converter if isinstance(converter, Converter) else get_converter(converter)
    tally = tally if tally is not None else Tally()
    inputs = expand_inputs(_as_list(sources))
    for batch in process(
        inputs, conv, options=with_card_license(options, conv, inputs), category=category,
        filters=filters, tally=tally, batch_size=batch_size,
    ):
        tally.source(conv.name).written += len(batch.rows)
        for rej in batch.rejects:
            tally.source(rej["source"]).rejected[reason_key(rej["reason"])] += 1
        if rejects is not None:
            rejects.extend(batch.rejects)
        yield from batch.rows


def to_dataset(sources: PathLike | Sequence[PathLike], converter: str | Converter = "alpaca", **kwargs: Any):
    """The kept rows as an in-memory ``datasets.Dataset`` with kodolly's features."""
    from .errors import require
    from .rows import ARROW_SCHEMA, rows_to_table

    datasets = require("datasets", "datasets")
    rows = list(iter_rows(sources, converter, **kwargs))
    table = rows_to_table(rows) if rows else ARROW_SCHEMA.empty_table()
    return datasets.Dataset(table)


@dataclass
class Inspection:
    """What ``kodolly inspect`` found: the best converter, all scores, and one converted row."""

    file: str
    converter: str | None
    scores: dict[str, float]
    record: Any
    row: dict[str, Any] | None
    reject: dict[str, Any] | None
    columns: list[str] | None = None  # a parquet / Arrow / datasets input: its columns and types
    kodolly_output: bool = False  # the file holds kodolly rows (read back with the dolly converter)


def inspect_file(path: PathLike) -> Inspection:
    """Name the converter that fits ``path`` (from its first record's keys) and convert one row."""
    return inspect_input(expand_inputs([path])[0])


def inspect_input(inp: Input) -> Inspection:
    """:func:`inspect_file` for one input (a file or a zip member)."""
    from .detection import detect_input
    from .io import tables
    from .rows import ROW_FIELDS

    found = detect_input(inp)
    columns = [f"{field.name}: {field.type}" for field in tables.schema_of(inp)] if tables.is_columnar(inp) else None
    ours = isinstance(found.probe, dict) and set(ROW_FIELDS) - {"score"} <= set(found.probe)
    if found.converter is None:
        return Inspection(inp.name, None, {}, found.probe, None, None, columns, ours)
    rejects: list[dict[str, Any]] = []
    row = None
    for batch in process([inp], get_converter(found.converter), tally=Tally(), batch_size=1):
        rejects.extend(batch.rejects)
        if batch.rows:
            row = batch.rows[0]
            break
    return Inspection(inp.name, found.converter, found.scores, found.probe, row,
                      None if row else (rejects[0] if rejects else None), columns, ours)


@dataclass
class HeadItem:
    """One record of :func:`head`: where it is, and the record (or the reject that says why it is none)."""

    file: str
    index: int
    line: int | None
    record: Any = None
    reject: dict[str, Any] | None = None


def head(source: PathLike, n: int = 5, converter: str | Converter | None = None, *, rows: bool = False) -> list[HeadItem]:
    """The first ``n`` records of ``source`` (a file, folder, zip, glob, hf:// source; inputs or
    kodolly outputs) as the converter reads them -- records inside a JSON envelope where that
    converter finds them; ``converter`` is detected per file when not given. With ``rows`` the
    converted rows (normalised, as they would be written) instead, and rejects with their reason."""
    from .detection import detect_input
    from .io.readers import BadRecord, read_records

    out: list[HeadItem] = []
    for inp in expand_inputs([source]):
        if len(out) >= n:
            break
        conv = converter if isinstance(converter, Converter) else get_converter(converter) if converter else None
        if conv is None:
            found = detect_input(inp).converter
            conv = get_converter(found) if found else None
        if rows:
            if conv is None:
                out.append(HeadItem(inp.name, 0, None, reject={"reason": "unknown_format", "detail": "no converter recognises this file; name one with --from"}))
                continue
            for batch in process([inp], conv, tally=Tally(), batch_size=1):
                for rej in batch.rejects:
                    out.append(HeadItem(rej["file"], rej["index"], rej["line"], reject={k: rej[k] for k in ("reason", "detail", "part")}))
                for row in batch.rows:
                    meta = row["meta"]
                    out.append(HeadItem(meta.get("file", inp.name), meta.get("index", -1), meta.get("line"), record=row))
                if len(out) >= n:
                    break
            continue
        records = read_records(inp, conv.record_paths if conv else ())
        try:
            for record, loc in records:
                if isinstance(record, BadRecord):
                    out.append(HeadItem(loc.file, loc.index, loc.line, reject={"reason": record.reason, "detail": record.detail, "raw": record.raw}))
                else:
                    out.append(HeadItem(loc.file, loc.index, loc.line, record=record))
                if len(out) >= n:
                    break
        finally:
            records.close()
    return out[:n]


def formats() -> list[Converter]:
    """Every registered converter (built-in and from plugins)."""
    return list_converters()


def build_dpo(inputs: PathLike | Sequence[PathLike], output: PathLike | None = None, **options: Any):
    """DPO pairs from kodolly rows: see :func:`kodolly.dpo.build_dpo` (options as in ``DpoOptions``)."""
    from .dpo import build_dpo as _build_dpo

    return _build_dpo(_as_list(inputs), output, **options)


def _as_list(sources: PathLike | Sequence[PathLike]) -> list[PathLike]:
    if isinstance(sources, (str, os.PathLike)):
        return [sources]
    return list(sources)


def publish(output: PathLike, folder: PathLike, **kwargs: Any):
    """Build a Hub-ready folder (shards + dataset card + manifest) from a kodolly output.

    See :func:`kodolly.hub.build_folder` for the options; needs the ``hub`` extra.
    """
    from .hub import build_folder

    return build_folder(output, folder, **kwargs)


def push(folder: PathLike, repo_id: str, **kwargs: Any):
    """Upload a Hub folder as one commit, guarded by its sources' licences (token from ``HF_TOKEN``).

    See :func:`kodolly.hub.push` for the options; needs the ``hub`` extra.
    """
    from .hub import push as _push

    return _push(folder, repo_id, **kwargs)


def export_dataset(output: PathLike, dest: PathLike, *, target: str, **kwargs: Any):
    """Write a kodolly output in the layout LLaMA-Factory or axolotl reads (:func:`kodolly.export.export`)."""
    from .export import export

    return export(output, dest, target=target, **kwargs)
