"""The public Python API; the CLI is a thin shell over these functions."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from .converters import Converter
from .errors import InputError
from .io.limits import Limits
from .io.limits import use as use_limits
from .io.readers import BadRecord, read_records
from .io.sources import expand_inputs
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
    output is the same whatever the number. ``limits``: the input limits (:class:`kodolly.io.limits.Limits`).
    """
    with use_limits(limits):
        return run(
            _as_list(sources),
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
    for batch in process(
        expand_inputs(_as_list(sources)), conv, options=options, category=category,
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


def inspect_file(path: PathLike) -> Inspection:
    """Name the converter that fits ``path`` (from its first record's keys) and convert one row."""
    inputs = expand_inputs([path])
    inp = inputs[0]
    scores: dict[str, float] = {}
    first: dict[str, Any] = {}
    envelope: bool | None = None
    # Converters that read records inside an envelope ("data.item") go first: once one of them is
    # sure, the others would only see the whole file as one record, read whole (GBs for KorQuAD 2).
    for conv in sorted(list_converters(), key=lambda c: not c.record_paths):
        if conv.detect is None:
            continue
        if not conv.record_paths and scores and max(scores.values()) >= 0.9:
            envelope = _is_object_envelope(inp) if envelope is None else envelope
            if envelope:
                continue
        record = _first_record(inp, conv)
        if record is None:
            continue
        score = conv.detect(record)
        if score > 0:
            scores[conv.name] = score
            first[conv.name] = record
    if not scores:
        probe = _first_record(inp, None)
        return Inspection(inp.name, None, {}, probe, None, None)
    best = max(scores, key=lambda name: (scores[name], name))
    rejects: list[dict[str, Any]] = []
    conv = get_converter(best)
    row = None
    for batch in process([inp], conv, tally=Tally(), batch_size=1):
        rejects.extend(batch.rejects)
        if batch.rows:
            row = batch.rows[0]
            break
    return Inspection(inp.name, best, dict(sorted(scores.items(), key=lambda kv: -kv[1])), first[best], row, None if row else (rejects[0] if rejects else None))


def _first_record(inp, conv: Converter | None) -> Any:
    try:
        for record, _loc in read_records(inp, conv.record_paths if conv else ()):
            return None if isinstance(record, BadRecord) else record
    except InputError:
        raise
    return None


def _is_object_envelope(inp) -> bool:
    """Whether the input is one JSON object (not an array, not JSON Lines)."""
    from .io.readers import BLANK, looks_like_jsonl, sniff

    if inp.suffix in (".jsonl", ".ndjson", ".csv", ".tsv"):
        return False
    head = sniff(inp).data_head.lstrip(b"\xef\xbb\xbf" + BLANK)
    return head.startswith(b"{") and not looks_like_jsonl(head)


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
