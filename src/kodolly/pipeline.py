"""read -> convert -> normalise -> check -> filter -> write, with the tally and the rejects.

:func:`process` is the streaming core: it yields :class:`Batch` es of kept rows and rejects and
counts items read. :func:`run` drives it into the writers, counts what was written and rejected,
checks the identity ``read == written + rejected`` and writes the manifest.

Filters plug in through the :class:`Filter` seam: a filter looks at a batch of normalised rows and
answers, per row, ``None`` (keep) or a reason. The pipeline, not the filter, counts and writes the
rejects. Dedup is a filter with state.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol, Sequence

from .converters import Converter, Reject
from .errors import ConfigError, TallyMismatchError
from .io.readers import BadRecord, Location, read_records
from .io.sources import Input, expand_inputs
from .normalize import normalize_text
from .registry import get_converter
from .rows import DOLLY_CATEGORIES, MESSAGES_FIELD
from .turns import transcript
from .tally import Tally, reason_key

TEXT_FIELDS = ("instruction", "context", "response")
REQUIRED_FIELDS = ("instruction", "response")
DEFAULT_BATCH_SIZE = 4096


class Filter(Protocol):
    """A filter: per row of a batch, ``None`` to keep it or a reason ``<filter>_<why>`` to drop it."""

    name: str

    def settings(self) -> dict[str, Any]: ...

    def apply(self, rows: list[dict[str, Any]]) -> list[str | None]: ...


@dataclass
class Batch:
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)


def reject_record(
    reason: str, source: str, loc: Location, *, detail: str = "", part: str = "", raw: Any = None, row_id: str = ""
) -> dict[str, Any]:
    """One line of the rejects file."""
    return {
        "reason": reason,
        "source": source,
        "file": loc.file,
        "index": loc.index,
        "line": loc.line,
        "part": part,
        "id": row_id,
        "detail": detail,
        "raw": raw,
    }


def _location_meta(row: dict[str, Any], loc: Location) -> None:
    meta = row["meta"]
    meta["file"] = loc.file
    if loc.line is not None:
        meta["line"] = loc.line
    else:
        meta["index"] = loc.index


def process(
    inputs: Sequence[Input],
    converter: Converter,
    *,
    options: Mapping[str, Any] | None = None,
    category: str | None = None,
    filters: Sequence[Filter] = (),
    tally: Tally,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[Batch]:
    """Stream batches of kept rows and rejects. Items read are counted into ``tally``."""
    check_category(category)
    ctx = converter.context(options)
    source = converter.name
    counts = tally.source(source)
    batch = Batch()
    locs: list[Location] = []

    def flush() -> Batch:
        nonlocal batch, locs
        out, out_locs = batch, locs
        batch, locs = Batch(), []
        if filters and out.rows:
            _apply_filters(out, out_locs, filters, source)
        return out

    def take(item: dict[str, Any] | Reject, loc: Location, record: Any) -> None:
        """Count one converter output and put it in the batch's rows or rejects."""
        counts.read += 1
        if isinstance(item, Reject):
            raw = item.raw if item.raw is not None else record
            batch.rejects.append(reject_record(item.reason, source, loc, detail=item.detail, part=item.part, raw=raw))
            return
        reason = _normalise_and_check(item, category)
        if reason:
            raw = record if record is not None else item
            batch.rejects.append(reject_record(reason, source, loc, raw=raw, row_id=item["id"]))
            return
        _location_meta(item, loc)
        batch.rows.append(item)
        locs.append(loc)

    for inp in inputs:
        for record, loc in read_records(inp, converter.record_paths):
            tally.records += 1
            if isinstance(record, BadRecord):
                counts.read += 1
                batch.rejects.append(reject_record(record.reason, source, loc, detail=record.detail, raw=record.raw))
                continue
            produced = 0
            for item in converter.convert(record, loc, ctx):
                produced += 1
                take(item, loc, record)
            if not produced:
                counts.read += 1
                batch.rejects.append(reject_record("no_rows", source, loc, detail="the record yields no row", raw=record))
            if len(batch.rows) + len(batch.rejects) >= batch_size:
                yield flush()
    if converter.finish is not None:  # items made from several records (e.g. hansol join_pairs)
        for item, loc in converter.finish(ctx):
            take(item, loc, None)
    yield flush()


def check_category(category: str | None) -> None:
    """A category override must be a Dolly task type."""
    if category is not None and category not in DOLLY_CATEGORIES:
        raise ConfigError(f"--category {category!r} is not a Dolly task type: {', '.join(sorted(DOLLY_CATEGORIES))}")


_TURN_CACHE: dict[str, str] = {}


def _normalise_turn(text: str) -> str:
    """normalize_text for a conversation's earlier turns, which every later row of it repeats."""
    done = _TURN_CACHE.get(text)
    if done is None:
        if len(_TURN_CACHE) >= 4096:
            _TURN_CACHE.clear()
        done = _TURN_CACHE[text] = normalize_text(text)
    return done


def _normalise_and_check(row: dict[str, Any], category: str | None) -> str | None:
    history = row.get(MESSAGES_FIELD)
    for name in TEXT_FIELDS:
        if not (history and name == "context"):
            row[name] = normalize_text(row[name])
    if history:  # the earlier turns, normalised; the context is their transcript (one function, so they agree)
        row[MESSAGES_FIELD] = history = [
            {"role": m["role"], "content": text} for m in history if (text := _normalise_turn(m["content"]))
        ]
        row["context"] = transcript(history, (row.get("meta") or {}).get("context_turns_dropped", 0))
    if row["domain"]:
        row["domain"] = normalize_text(row["domain"])
    if category is not None:
        row["category"] = category
    for name in REQUIRED_FIELDS:
        if not row[name]:
            return f"empty_field:{name}"
    return None


def _apply_filters(batch: Batch, locs: list[Location], filters: Sequence[Filter], source: str) -> None:
    rows, kept_locs = batch.rows, locs
    for flt in filters:
        if not rows:
            break
        verdicts = flt.apply(rows)
        next_rows, next_locs = [], []
        for row, loc, reason in zip(rows, kept_locs, verdicts):
            if reason is None:
                next_rows.append(row)
                next_locs.append(loc)
            else:
                batch.rejects.append(reject_record(reason, source, loc, raw=row, row_id=row["id"]))
        rows, kept_locs = next_rows, next_locs
    batch.rows = rows


# ------------------------------------------------------------------------------------------ run


@dataclass
class InputGroup:
    """One group of a run: sources read with one converter, its options and category override.

    A run takes several groups; they share the filters (and so the dedup state) and are counted per
    source in one tally.
    """

    sources: Sequence[str | os.PathLike[str]]
    converter: str | Converter
    options: Mapping[str, Any] | None = None
    category: str | None = None


@dataclass
class RunResult:
    """What a run did: its tally, and where it wrote (``None`` when it wrote nothing)."""

    tally: Tally
    output: Path | None = None
    rejects: Path | None = None
    manifest: Path | None = None
    manifest_data: dict[str, Any] | None = None
    rows: list[dict[str, Any]] | None = None
    report: Path | None = None
    report_data: dict[str, Any] | None = None


def run(
    sources: Sequence[str | os.PathLike[str]],
    converter: str | Converter,
    output: str | os.PathLike[str] | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    category: str | None = None,
    filters: Sequence[Filter] = (),
    output_format: str | None = None,
    dolly_only: bool = False,
    rejects_path: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    groups: Sequence[InputGroup] = (),
    workers: int | None = None,
) -> RunResult:
    """Convert ``sources`` with ``converter``, filter, and write ``output`` (or keep rows in memory).

    ``groups`` adds more (sources, converter, options, category) groups to the same run, read in
    order after ``sources`` (which may then be empty); the filters and their state are shared by all.
    ``workers`` > 1 converts JSON Lines inputs in that many processes (:mod:`kodolly.parallel`; the
    output is the same whatever the number); ``None`` = the usable cores, at most 2.
    With an output, a report (counts and example rejects per reason) is written beside it as
    ``<out>.report.json``. Raises :class:`TallyMismatchError` if ``read != written + rejected``.
    """
    from .io.commit import OutputSet
    from .io.writers import RejectsWriter, open_row_writer, output_paths
    from .manifest import build_manifest, layout_entry, validate_manifest
    from .report import RunReport

    all_groups = ([InputGroup(list(sources), converter, options, category)] if sources else []) + list(groups)
    if not all_groups:
        raise ConfigError("nothing to convert: no sources given")
    plan = []
    for group in all_groups:  # check every group before reading any: a bad option fails at once
        conv = group.converter if isinstance(group.converter, Converter) else get_converter(group.converter)
        conv.context(group.options)
        if group.category is not None and group.category not in DOLLY_CATEGORIES:
            raise ConfigError(f"category {group.category!r} is not a Dolly task type: {', '.join(sorted(DOLLY_CATEGORIES))}")
        plan.append((group, conv, expand_inputs(list(group.sources))))
    inputs = [inp for _group, _conv, group_inputs in plan for inp in group_inputs]
    report = RunReport(filters=filters)
    tally = Tally()
    paths = output_paths(Path(output), output_format, rejects_path) if output is not None else None
    # the output set: everything is written under temporary names and committed together, manifest last
    with OutputSet(paths) if paths else contextlib.nullcontext() as out:
        writer = None
        if out is not None:
            writer = open_row_writer(
                out.stage(paths.output), paths.format, dolly_only=dolly_only, name=paths.output,
                scratch=out.scratch(paths.output, ".parquet"),
            )
        rejects = RejectsWriter(out.stage(paths.rejects) if out else None, name=paths.rejects if paths else None)
        kept: list[dict[str, Any]] | None = [] if writer is None else None
        bar = _progress_bar(progress)
        try:
            for group, conv, group_inputs in plan:
                for batch in _batches(group_inputs, conv, group.options, group.category, filters, tally, batch_size, workers):
                    table = getattr(batch, "table", None)  # parallel batches carry their rows as an Arrow table
                    n_rows = len(table) if table is not None else len(batch.rows)
                    if n_rows:
                        report.add_written(table if table is not None else batch.rows)
                        if writer is not None:
                            if table is not None:
                                writer.write_table(table)
                            else:
                                writer.write(batch.rows)
                        else:
                            kept.extend(batch.rows)  # type: ignore[union-attr]
                        tally.source(conv.name).written += n_rows
                    for rej in batch.rejects:
                        rejects.write(rej)
                        key = reason_key(rej["reason"])
                        tally.source(rej["source"]).rejected[key] += 1
                        report.add(key, rej)
                    if bar is not None:
                        bar.update(n_rows + len(batch.rejects))
            if not tally.balanced:
                raise TallyMismatchError("tally does not add up:\n" + tally.format())
            outputs = writer.close() if writer is not None else []
            rejects_info = rejects.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            rejects.abort()
            raise
        finally:
            if bar is not None:
                bar.close()
        result = RunResult(tally=tally, rows=kept)
        result.report_data = report.as_dict(tally, filters)
        if out is not None:
            first_group, first_conv, _ = plan[0]
            manifest = build_manifest(
                inputs=inputs,
                converter=first_conv,
                options=first_conv.context(first_group.options).options,
                category=first_group.category,
                groups=[
                    {
                        "converter": conv.name,
                        "options": conv.context(group.options).options,
                        "category_override": group.category,
                        "inputs": [inp.name for inp in group_inputs],
                        **layout_entry(conv),
                    }
                    for group, conv, group_inputs in plan
                ],
                filters=filters,
                tally=tally,
                outputs=[out.describe(paths.output, writer.rows, entry=outputs[0])],
                rejects=out.describe(paths.rejects, rejects.count, entry=rejects_info),
                output_format=paths.format,
                dolly_only=dolly_only,
            )
            manifest["report"] = out.write_json(paths.report, result.report_data)
            validate_manifest(manifest)
            out.commit(manifest)
            result.output, result.rejects, result.manifest, result.manifest_data = (
                paths.output, paths.rejects, paths.manifest, manifest,
            )
            result.report = paths.report
    return result


def _batches(inputs, conv, options, category, filters, tally, batch_size, workers):
    from . import parallel

    n = parallel.default_workers() if workers is None else workers
    # A converter that combines records at the end (``finish``, e.g. hansol's join_pairs) keeps state
    # across all of an input's records: it runs in one process.
    if n > 1 and conv.finish is None:
        return parallel.process(
            inputs, conv, options=options, category=category, filters=filters, tally=tally, batch_size=batch_size, workers=n
        )
    return process(inputs, conv, options=options, category=category, filters=filters, tally=tally, batch_size=batch_size)


def _progress_bar(progress: bool | None):
    import sys

    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(unit=" items", desc="converting", dynamic_ncols=True)
