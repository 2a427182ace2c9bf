"""The public Python API; the CLI is a thin shell over these functions."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from .converters import Converter
from .corridor import Filter, InputGroup, RunResult, RunSpec, Sink, execute, iter_chunks, make_spec, prepare
from .errors import InputError
from .io.limits import Limits
from .io.readers import BadRecord, read_records
from .io.sources import expand_inputs
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
    (:class:`kodolly.io.limits.Limits`; default: those in force).
    """
    spec = make_spec(
        _as_list(sources), converter, output, options=options, category=category, filters=filters,
        output_format=output_format, dolly_only=dolly_only, rejects_path=rejects_path, groups=groups,
        engine=engine, workers=workers, batch_size=batch_size, limits=limits,
    )
    return run_spec(spec, progress=progress)


def run_spec(spec: RunSpec, *, progress: bool | None = False) -> RunResult:
    """Run a :class:`~kodolly.corridor.RunSpec` (what :func:`convert`, :func:`run_config` and
    ``kodolly convert`` build) to the end."""
    return execute(spec, progress=progress)


def replay(manifest: PathLike, *, progress: bool | None = False, **changes: Any) -> RunResult:
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
    return run_spec(spec, progress=progress)


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
    from . import config as _config

    if isinstance(config, Mapping):
        data = dict(config)
    else:
        data = _config.load_file(config)
    if overrides:
        data = _config.merge(data, overrides)
    spec = _config.from_dict(data).spec()
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
    empty: bool = False  # every input of ``path`` holds no data byte: any converter reads it as one empty_file reject


# The converter a run without --from uses when its inputs hold no data at all: no converter can be told
# from nothing, and every converter reads an empty input the same way (one ``empty_file`` reject).
EMPTY_INPUT_CONVERTER = "alpaca"


def inspect_file(path: PathLike) -> Inspection:
    """Name the converter that fits ``path`` (from its first record's keys) and convert one row.

    Inputs with no data byte are passed over (the first input with data decides); when ``path`` holds
    only empty inputs, ``converter`` is None and ``empty`` is true."""
    from .io.readers import sniff

    inputs = expand_inputs([path])
    inp = next((i for i in inputs if not sniff(i).empty), None)
    if inp is None:
        return Inspection(inputs[0].name, None, {}, None, None, None, empty=True)
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
    conv = get_converter(best)
    row, rejects = _first_row(inp, conv)
    return Inspection(inp.name, best, dict(sorted(scores.items(), key=lambda kv: -kv[1])), first[best], row, None if row else (rejects[0] if rejects else None))


def _first_row(inp, conv: Converter) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The first row the corridor's per-item path makes of ``inp`` (no filters), and the rejects before it."""
    from .corridor import FilterChain, Shard, convert_records

    shard = Shard(0, "input", 0, 0, 0, inp.name)
    ctx, chain = conv.context(), FilterChain()
    rejects: list[dict[str, Any]] = []
    for record in read_records(inp, conv.record_paths):
        chunk = convert_records(shard, [record], conv, ctx, None, chain)
        rejects.extend(rej for _item, rej in chunk.rejects)
        if len(chunk.table):
            from .corridor.chunks import rows_of

            return rows_of(chunk.table.slice(0, 1))[0], rejects
    return None, rejects


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
