"""The public Python API; the CLI is a thin shell over these functions."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from .converters import Converter
from .corridor import Filter, InputGroup, RunResult, RunSpec, Sink, execute, iter_chunks, make_spec, prepare
from .io.limits import Limits
from .io.readers import BadRecord, read_records
from .io.sources import Input, expand_inputs
from .registry import get_converter, list_converters
from .tally import Tally

PathLike = str | os.PathLike[str]
Filters = Mapping[str, Any] | Sequence[Filter] | None


def convert(
    sources: PathLike | Sequence[PathLike],
    converter: str | Converter = "alpaca",
    output: PathLike | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    category: str | None = None,
    filters: Filters = None,
    output_format: str | None = None,
    dolly_only: bool = False,
    rejects_path: PathLike | None = None,
    progress: bool | None = False,
    groups: Sequence[InputGroup] = (),
    engine: str | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    limits: Limits | None = None,
    html_report: bool = False,
    tokenizer: PathLike | None = None,
) -> RunResult:
    """Convert ``sources`` (files, folders, globs, zips) with a named converter.

    With ``output`` the rows are written there (``.parquet``, ``.jsonl`` or a ``datasets`` folder)
    with ``<name>.rejects.jsonl``, ``<name>.manifest.json`` and ``<name>.report.json`` beside;
    without it the kept rows are returned in ``result.rows``. ``result.tally`` always holds the
    counts. ``filters``: filter settings as ``kodolly.filters.build_filters`` takes them (``None``,
    the default, = the same defaults as ``kodolly convert``: content checks, exact dedup, all rows in
    ``train``), or a sequence of filter objects used as given (``[]``: no filter at all).
    ``groups`` adds more :class:`InputGroup` s (sources read with another converter) to the run.
    ``engine``: ``inline``, ``processes`` (default on a multi-core machine) or ``ray``; ``workers``:
    its worker count; ``batch_size``: at most this many records per shard. The output is the same
    whatever the engine, the worker count and the batch size. ``limits``: the input limits
    (:class:`kodolly.io.limits.Limits`; default: those in force). ``converter="auto"`` detects each
    file (and zip member) on its own and reads each with the converter that fits
    (:func:`kodolly.detection.detect_groups`). ``html_report=True`` also writes ``<name>.report.html``
    (the run's page; ``kodolly convert`` does by default), with token counts by the local ``tokenizer`` folder.
    """
    sources = _as_list(sources)
    if converter == "auto":
        from .detection import detect_groups
        from .io import limits as limits_mod

        with limits_mod.use(limits):  # detection reads first records as the run will
            groups = [*detect_groups(sources, options, category), *groups]
        sources, converter = [], groups[0].converter
    spec = make_spec(
        sources, converter, output, options=options, category=category, filters=filters,
        output_format=output_format, dolly_only=dolly_only, rejects_path=rejects_path, groups=groups,
        engine=engine, workers=workers, batch_size=batch_size, limits=limits,
    )
    return run_spec(spec, progress=progress, html_report=html_report, tokenizer=tokenizer)


def run_spec(spec: RunSpec, *, progress: bool | None = False, html_report: bool = False, tokenizer: PathLike | None = None) -> RunResult:
    """Run a :class:`~kodolly.corridor.RunSpec` (what :func:`convert`, :func:`run_config` and
    ``kodolly convert`` build) to the end; ``html_report``/``tokenizer`` as in :func:`convert`."""
    return execute(spec, progress=progress, html=_html_options(html_report, tokenizer))


def _html_options(html_report: bool, tokenizer: PathLike | None):
    if tokenizer is not None and not html_report:
        from .errors import ConfigError

        raise ConfigError("--tokenizer counts tokens for the HTML report: it needs the report (drop --no-html-report)")
    if not html_report:
        return None
    from .report_html import HtmlOptions

    return HtmlOptions(tokenizer=os.fspath(tokenizer) if tokenizer is not None else None)


def build_html_report(output: PathLike, *, tokenizer: PathLike | None = None):
    """Build ``<out>.report.html`` again from a kodolly output, its rejects, report and manifest (the same
    page the run wrote, unless ``tokenizer`` adds token counts); it is recorded in the manifest. Returns its path."""
    from . import report_html

    return report_html.build_html_report(output, tokenizer=os.fspath(tokenizer) if tokenizer is not None else None)


def replay(manifest: PathLike, *, progress: bool | None = False, html_report: bool = False, **changes: Any) -> RunResult:
    """Run again the run a manifest records (its ``run_spec``); ``changes`` replace spec fields
    (``engine``, ``workers``, ``batch_size``)."""
    import dataclasses
    import json

    from .errors import ConfigError

    path = os.fspath(manifest)
    try:
        data = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable manifest ({exc})") from None
    if "run_spec" not in data:
        raise ConfigError(f"{path}: the manifest holds no run_spec (written by an older kodolly); it cannot be replayed")
    spec = RunSpec.from_dict(data["run_spec"], where=path)
    if changes:
        spec = dataclasses.replace(spec, **{k: v for k, v in changes.items() if v is not None})
    return run_spec(spec, progress=progress, html_report=html_report)


def run_config(
    config: PathLike | Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
    progress: bool | None = False,
    engine: str | None = None,
    workers: int | None = None,
) -> RunResult:
    """Run a whole conversion described by a run config (a TOML file path, or the same as a dict).

    ``overrides`` (same shape as the file) replace settings of the file; see :mod:`kodolly.config`.
    """
    from . import config as run_config_file

    if isinstance(config, Mapping):
        data = dict(config)
    else:
        data = run_config_file.load_file(config)
    if overrides:
        data = run_config_file.merge(data, overrides)
    spec = run_config_file.from_dict(data).spec()
    if engine is not None or workers is not None:
        import dataclasses

        spec = dataclasses.replace(spec, engine=engine or spec.engine, workers=workers or spec.workers)
    return run_spec(spec, progress=progress)


def iter_rows(
    sources: PathLike | Sequence[PathLike],
    converter: str | Converter = "alpaca",
    *,
    options: Mapping[str, Any] | None = None,
    category: str | None = None,
    filters: Filters = None,
    rejects: list[dict[str, Any]] | None = None,
    tally: Tally | None = None,
    batch_size: int | None = None,
    engine: str | None = None,
    workers: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Stream the kept rows one by one (same filters and defaults as :func:`convert`); rejects are
    appended to ``rejects`` when a list is given, counts go to ``tally`` when one is given."""
    from .corridor.chunks import rows_of

    spec = make_spec(
        _as_list(sources), converter, None, options=options, category=category, filters=filters,
        engine=engine, workers=workers, batch_size=batch_size,
    )
    run = prepare(spec)
    sink = Sink(None, filters=run.chain.filters)
    if tally is not None:
        sink.tally = tally
    with sink:
        for chunk in iter_chunks(run, sink):
            if rejects is not None:
                rejects.extend(rej for _item, rej in chunk.rejects)
            yield from rows_of(chunk.table)
        sink.close()


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
    empty: bool = False  # every input of the path holds no data byte (read as one empty_file reject)


def inspect_file(path: PathLike) -> Inspection:
    """Name the converter that fits ``path`` (from its first record's keys) and convert one row.

    Inputs with no data byte are passed over (the first input with data decides); when ``path`` holds
    only empty inputs, ``converter`` is None and ``empty`` is true."""
    from .io.readers import sniff

    inputs = expand_inputs([path])
    inp = next((i for i in inputs if not sniff(i).empty), None)
    if inp is None:
        return Inspection(inputs[0].name, None, {}, None, None, None, empty=True)
    return inspect_input(inp)


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
    row, rejects = None, []
    for kind, value in _converted(inp, get_converter(found.converter)):
        if kind == "row":
            row = value
            break
        rejects.append(value)
    return Inspection(inp.name, found.converter, found.scores, found.probe, row,
                      None if row else (rejects[0] if rejects else None), columns, ours)


def _converted(inp: Input, conv: Converter) -> Iterator[tuple[str, dict[str, Any]]]:
    """``("row", row)`` / ``("reject", reject)`` in input order, as the corridor's per-item path makes
    them of ``inp`` (no filters), record by record (a converter that combines records: the whole input)."""
    from .corridor import FilterChain, Shard, convert_records
    from .corridor.chunks import rows_of

    shard = Shard(0, "input", 0, 0, 0, inp.name)
    ctx, chain = conv.context(), FilterChain()
    records = read_records(inp, conv.record_paths)
    pieces = [records] if conv.finish is not None else ([record] for record in records)
    try:
        for piece in pieces:
            chunk = convert_records(shard, piece, conv, ctx, None, chain, finish=(lambda: conv.finish(ctx)) if conv.finish is not None else None)
            rows = rows_of(chunk.table)
            rejects = chunk.rejects
            merged = sorted([(int(item), 0, row) for item, row in zip(chunk.row_item, rows)] + [(item, 1, rej) for item, rej in rejects],
                            key=lambda entry: (entry[0], entry[1]))
            for _item, is_reject, value in merged:
                yield ("reject" if is_reject else "row"), value
    finally:
        records.close()


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
            for kind, value in _converted(inp, conv):
                if kind == "reject":
                    out.append(HeadItem(value["file"], value["index"], value["line"], reject={k: value[k] for k in ("reason", "detail", "part")}))
                else:
                    meta = value["meta"]
                    out.append(HeadItem(meta.get("file", inp.name), meta.get("index", -1), meta.get("line"), record=value))
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
    from . import dpo

    return dpo.build_dpo(_as_list(inputs), output, **options)


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
    from . import hub

    return hub.push(folder, repo_id, **kwargs)


def export_dataset(output: PathLike, dest: PathLike, *, target: str, **kwargs: Any):
    """Write a kodolly output in the layout LLaMA-Factory or axolotl reads (:func:`kodolly.export.export`)."""
    from .export import export

    return export(output, dest, target=target, **kwargs)
