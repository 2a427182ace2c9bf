"""The sink: the one door out of a run.

It owns the row writer (or the in-memory list of kept rows), the rejects file, the tally and its
check (``read == written + rejected``), the report, the manifest, the commit (the output, rejects,
report and manifest are one :class:`~kodolly.io.commit.OutputSet`: staged under temporary names and
committed together, manifest last, only when the tally adds up; :meth:`Sink.abort` removes them) and
the progress bar. ``kodolly convert`` / :func:`kodolly.convert`,
:func:`kodolly.iter_rows` / :func:`kodolly.to_dataset` and ``build-dpo`` all go out through it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pyarrow as pa

from ..errors import TallyMismatchError
from ..io.commit import OutputSet
from ..io.writers import OutputPaths, RejectsWriter, open_row_writer
from ..report import RunReport
from ..tally import Tally, reason_key
from .chunks import Chunk


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
    report_html: Path | None = None


class Sink:
    """Where chunks (or rows and rejects) go, in position order.

    ``paths`` = where to write (``None``: nothing is written; kept rows are collected when
    ``keep_rows``); ``writer(out)`` makes the row writer instead of the default one for
    ``paths.format``, staging its file in the output set ``out`` (build-dpo writes its own row layouts); ``filters`` are named in the report; ``report=False`` writes no
    ``<out>.report.json``; ``inputs`` = ``(input name, converter name)`` of the run's inputs, whose
    written and rejected counts the report keeps (with a warning for an input of which nothing was written);
    ``html`` (:class:`~kodolly.report_html.HtmlOptions`) also writes ``<out>.report.html``, built from the
    staged output and rejects, the report and the manifest, and committed with them.
    """

    def __init__(
        self,
        paths: OutputPaths | None,
        *,
        dolly_only: bool = False,
        writer: Any = None,
        filters: Sequence[Any] = (),
        progress: bool | None = False,
        keep_rows: bool = False,
        unit: str = " items",
        desc: str = "converting",
        report: bool = True,
        total_bytes: int | None = None,
        inputs: Iterable[tuple[str, str]] = (),
        html: Any = None,
    ) -> None:
        self.paths = paths
        self.filters = list(filters)
        self.tally = Tally()
        self.report = RunReport(filters=self.filters)
        for name, converter in inputs:  # the report counts rows written and rejected per input
            self.report.input(name, converter)
        self.inputs_read: dict[str, tuple[int, str]] = {}
        self.kept: list[dict[str, Any]] | None = [] if keep_rows else None
        self.out = OutputSet(paths).open() if paths is not None else None
        self.writer: Any = None
        self.rejects = RejectsWriter(None)
        if self.out is not None:
            try:
                if writer is not None:
                    self.writer = writer(self.out)
                else:
                    self.writer = open_row_writer(
                        self.out.stage(paths.output), paths.format, dolly_only=dolly_only, name=paths.output,
                        scratch=self.out.scratch(paths.output, ".parquet"),
                    )
                self.rejects = RejectsWriter(self.out.stage(paths.rejects), name=paths.rejects)
            except BaseException:
                if self.writer is not None:
                    self.writer.abort()
                self.out.abort()
                raise
        self.bar = _progress_bar(progress, unit, desc, total_bytes)
        self.items = 0  # items written or rejected (shown beside a bar that counts bytes)
        self.unit = unit
        self.write_report = report  # the <out>.report.json beside the output (build-dpo has its own report)
        self.html = html  # HtmlOptions: the <out>.report.html beside it
        self.page_stats = None  # the page's figures of the rows written, fed table by table (no second read)
        if html is not None and paths is not None:
            from ..report_html import stats_for

            self.page_stats = stats_for(html)
        self.closed = False

    # ----------------------------------------------------------------------------- writing

    def write(self, chunk: Chunk, nbytes: int | None = None) -> None:
        """One reduced chunk (kept rows and all rejects, in position order); ``nbytes``: the input
        bytes it covers (a bar with a total counts those: done / planned, with an ETA)."""
        self.tally.records += chunk.records
        self.tally.source(chunk.source).read += chunk.read
        self.inputs_read.update(chunk.inputs_read)
        files = None
        if len(chunk.row_file) == len(chunk.table) and chunk.files:  # rows written per input, from the row arrays
            files = zip(chunk.files, np.bincount(chunk.row_file, minlength=len(chunk.files)).tolist())
        self.write_table(chunk.source, chunk.table, files)
        self.write_rejects([rej for _item, rej in chunk.rejects])
        if self.bar is not None:
            items = len(chunk.table) + len(chunk.rejects)
            if self.bar.total:
                self.items += items
                self.bar.set_postfix_str(f"{self.items:,}{self.unit}", refresh=False)
                self.bar.update(nbytes or 0)
            else:
                self.bar.update(items)

    def write_table(self, source: str, table: pa.Table, files: Iterable[tuple[str, int]] | None = None) -> None:
        """Kept rows as an Arrow table (counted as written for ``source``). ``files``: how many of them
        came from each input, when the caller knows (else the report reads that from ``meta``)."""
        if not len(table):
            return
        self.report.add_written(table)
        if files is None:
            self.report.count_rows(None, table)
        else:
            for name, n in files:
                if n:
                    self.report.count_written(name, n)
        if self.page_stats is not None:
            self.page_stats.add(table)
        if self.writer is not None:
            self.writer.write_table(table)
        if self.kept is not None:
            from .chunks import rows_of

            self.kept.extend(rows_of(table))
        self.tally.source(source).written += len(table)

    def write_rows(self, source: str, rows: list[dict[str, Any]]) -> None:
        """Kept rows as dicts (counted as written for ``source``)."""
        if not rows:
            return
        self.report.add_written(rows)
        self.report.count_rows(rows)
        if self.writer is not None:
            self.writer.write(rows)
        if self.kept is not None:
            self.kept.extend(rows)
        self.tally.source(source).written += len(rows)

    def write_rejects(self, rejects: Iterable[dict[str, Any]]) -> None:
        """Rejects (each counted under its source and reason, and offered to the report)."""
        rejects = rejects if isinstance(rejects, list) else list(rejects)
        self.rejects.write_many(rejects)
        for rej in rejects:
            key = reason_key(rej["reason"])
            self.tally.source(rej["source"]).rejected[key] += 1
            self.report.add(key, rej)

    # ------------------------------------------------------------------------------ ending

    def close(self, manifest: Callable[[list[dict[str, Any]], dict[str, Any] | None, Tally], dict[str, Any]] | None = None) -> RunResult:
        """Check the tally, close the writers, build the manifest (``manifest(outputs, rejects_info,
        tally)``), stage the report and commit the output set. Raises :class:`TallyMismatchError` (and
        aborts) when the tally does not add up; on any failure nothing of this run stays."""
        try:
            if not self.tally.balanced:
                raise TallyMismatchError("tally does not add up:\n" + self.tally.format())
            written = self.writer.close() if self.writer is not None else None
            rejects_entry = self.rejects.close()
            if self.bar is not None and self.bar.total and self.bar.n < self.bar.total:
                self.bar.update(self.bar.total - self.bar.n)  # every input was read (what the planner read last)
        except BaseException:
            self.abort()
            raise
        finally:
            self._close_bar()
        result = RunResult(tally=self.tally, rows=self.kept)
        result.report_data = self.report.as_dict(self.tally, self.filters)
        out, paths = self.out, self.paths
        if out is not None and paths is not None:
            from ..manifest import validate_manifest

            try:
                outputs = [out.describe(paths.output, self.writer.rows, entry=written[0] if written else None)]
                rejects_info = out.describe(paths.rejects, self.rejects.count, entry=rejects_entry)
                data = manifest(outputs, rejects_info, self.tally) if manifest is not None else None
                if data is None:
                    raise ValueError("an output set is committed by its manifest: give one")
                if self.write_report:
                    data["report"] = out.write_json(paths.report, result.report_data)
                if self.html is not None:
                    data["report_html"] = self._write_html(out, paths, data, result.report_data if self.write_report else None)
                validate_manifest(data)
                out.commit(data)
            finally:
                self.closed = True
                out.abort()  # what is left of the temporaries, and the output's lock
            result.output, result.rejects, result.manifest, result.manifest_data = paths.output, paths.rejects, paths.manifest, data
            if self.write_report:
                result.report = paths.report
            if self.html is not None:
                result.report_html = paths.report_html
        self.closed = True
        return result

    def _write_html(self, out: OutputSet, paths: OutputPaths, manifest: dict[str, Any], report: dict[str, Any] | None) -> dict[str, Any]:
        """Stage the HTML page (read from the staged output and rejects); its manifest entry."""
        from ..report_html import page_names, render_page

        # figures of the rows as they were written, when every row went through write_table; else
        # (rows written as dicts, or by an engine's nodes) read from the staged output
        stats = self.page_stats if self.page_stats is not None and self.page_stats.rows == self.writer.rows else None
        page = render_page(out.staged(paths.output), paths.format, out.staged(paths.rejects), manifest, report,
                           names=page_names(paths), tokenizer=self.html.tokenizer, stats=stats)
        return out.write_bytes(paths.report_html, page)

    def abort(self) -> None:
        """Remove everything written so far (temporaries); nothing that looks finished stays."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.writer is not None:
                self.writer.abort()
            self.rejects.abort()
        finally:
            if self.out is not None:
                self.out.abort()
            self._close_bar()

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def _progress_bar(progress: bool | None, unit: str, desc: str, total_bytes: int | None = None):
    """A bar of input bytes done out of ``total_bytes`` (so it has an ETA), the items beside it;
    without a total, a counter of items."""
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return None
    from tqdm import tqdm

    if total_bytes:
        return tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, dynamic_ncols=True)
    return tqdm(unit=unit, desc=desc, dynamic_ncols=True)
