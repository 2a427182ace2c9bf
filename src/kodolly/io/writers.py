"""Write rows and rejects; where a run's files go; read rows back.

The row and rejects writers write exactly to the path they are given: a run gives them the temporary
paths of its :class:`~kodolly.io.commit.OutputSet`, which commits the output, rejects, report and
manifest together (see :mod:`kodolly.io.commit`). ``name`` is the final path, used in error messages:
a failed write (a full disk, ...) is an :class:`~kodolly.errors.OutputError` naming it, in one line.
:func:`write_json_atomic` writes one standalone JSON file (temporary name, then rename).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import tempfile
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from ..errors import ConfigError, OutputError
from ..rows import ARROW_SCHEMA, DEFAULT_SPLIT, DOLLY_ARROW_SCHEMA, DOLLY_FIELDS, SPLIT_FIELD, dump_meta, rows_to_table

FORMATS = ("parquet", "jsonl", "datasets")
_SUFFIX_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class OutputPaths:
    output: Path
    format: str
    rejects: Path
    manifest: Path
    report: Path
    report_html: Path


def output_paths(output: Path, output_format: str | None, rejects: str | os.PathLike[str] | None = None) -> OutputPaths:
    """Where the rows, rejects, report and manifest of a run go: ``out.parquet`` -> ``out.rejects.jsonl``,
    ``out.report.json``, ``out.report.html``, ``out.manifest.json``."""
    fmt = output_format or _SUFFIX_FORMATS.get(output.suffix.lower())
    if fmt is None:
        fmt = "datasets" if not output.suffix else None
    if fmt not in FORMATS:
        raise ConfigError(
            f"{output}: cannot tell the output format from the name; use .parquet, .jsonl, "
            "or a folder name with --format datasets"
        )
    stem = output.with_suffix("") if output.suffix.lower() in _SUFFIX_FORMATS else output
    return OutputPaths(
        output=output,
        format=fmt,
        rejects=Path(rejects) if rejects else stem.with_name(stem.name + ".rejects.jsonl"),
        manifest=stem.with_name(stem.name + ".manifest.json"),
        report=stem.with_name(stem.name + ".report.json"),
        report_html=stem.with_name(stem.name + ".report.html"),
    )


def file_hash(path: Path) -> str:
    hasher = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def describe_output(path: Path, rows: int, name: Path | None = None) -> dict[str, Any]:
    """Path, size, row count and xxh3-128 of a written file, or of every file in a written folder.
    ``name`` is the path recorded (default ``path``): the final name of a file written under a temporary one."""
    label = str(name if name is not None else path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return {
            "path": label,
            "rows": rows,
            "bytes": sum(p.stat().st_size for p in files),
            "files": {str(p.relative_to(path)): file_hash(p) for p in files},
        }
    return {"path": label, "rows": rows, "bytes": path.stat().st_size, "xxh3_128": file_hash(path)}


_ERRNO_IN_TEXT = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)


def write_error(name: Path | str, exc: OSError) -> OutputError:
    """The one-line error for a failed write of ``name``: ``out.parquet: no space left on device``."""
    code = exc.errno
    if not code:
        found = _ERRNO_IN_TEXT.search(str(exc))
        code = int(found.group(1)) if found else None
    if code:
        return OutputError(f"{name}: {os.strerror(code).lower()}")
    return OutputError(f"{name}: cannot write ({' '.join(str(exc).split())})")


@contextlib.contextmanager
def naming_errors(name: Path | str) -> Iterator[None]:
    """Turn an OSError raised while writing ``name`` into :func:`write_error`."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise write_error(name, exc) from exc


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _temp_beside(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


class _AtomicFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = _temp_beside(path)

    def commit(self) -> None:
        os.chmod(self.tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual mode
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.tmp.unlink(missing_ok=True)


class RowWriter(ABC):
    """Base: ``write`` batches of rows to ``path``, then ``close`` (returns ``[description]``: the final
    ``name``, rows, bytes and xxh3-128 of what was written, for the manifest) or ``abort`` (never raises;
    leaves the removal of ``path`` to the caller, the output set). ``rows`` counts the rows written."""

    def __init__(self, path: Path, dolly_only: bool, name: Path | None = None) -> None:
        self.path = path
        self.name = name if name is not None else path
        self.dolly_only = dolly_only
        self.rows = 0

    @abstractmethod
    def write(self, rows: list[dict[str, Any]]) -> None:
        """See the class docstring."""

    def write_table(self, table: pa.Table) -> None:
        """Write rows given as an Arrow table with kodolly's schema."""
        self.write(table.to_pylist())

    def close(self) -> list[dict[str, Any]]:
        """See the class docstring."""
        self._finish()
        return [describe_output(self.path, self.rows, name=self.name)]

    @abstractmethod
    def _finish(self) -> None:
        """Flush and close the file (or build the folder) at ``path``."""

    @abstractmethod
    def abort(self) -> None:
        """See the class docstring."""


class ParquetRowWriter(RowWriter):
    """zstd parquet, written by a background thread in row groups of exactly ``ROW_GROUP_ROWS`` rows.

    Fixed row groups (with their columns made contiguous) make the file's bytes depend only on the
    rows, not on how they arrived in batches, so a run with one worker and a run with several write
    the same file. Encoding and compression run on the thread (pyarrow releases the GIL) while the
    caller prepares the next batch.
    """

    ROW_GROUP_ROWS = 16384

    def __init__(self, path: Path, dolly_only: bool = False, name: Path | None = None) -> None:
        super().__init__(path, dolly_only, name)
        self._schema = DOLLY_ARROW_SCHEMA if dolly_only else ARROW_SCHEMA
        text = [col for col in ("instruction", "context", "response", "id", "meta", "messages") if col in self._schema.names]
        with naming_errors(self.name):
            self._writer = pq.ParquetWriter(
                path, self._schema, compression="zstd",
                # long, mostly unique text: dictionary encoding only costs time there
                use_dictionary=[col for col in self._schema.names if col not in text],
            )
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        # started at the first row group, so worker processes forked before that see no thread
        self._thread = threading.Thread(target=self._drain, name="kodolly-parquet-writer", daemon=True)

    def _drain(self) -> None:
        while True:
            table = self._queue.get()
            if table is None:
                return
            if self._error is not None:
                continue
            try:
                self._writer.write_table(table.combine_chunks(), row_group_size=len(table))
            except BaseException as exc:  # re-raised in the caller's thread
                self._error = exc

    def _check(self) -> None:
        if self._error is not None:
            error = self._error
            if isinstance(error, OSError):
                raise write_error(self.name, error) from error
            raise error

    def write(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.write_table(rows_to_table(rows, dolly_only=self.dolly_only))

    def write_table(self, table: pa.Table) -> None:
        """Append rows given as an Arrow table with kodolly's schema (extra columns are dropped)."""
        if not len(table):
            return
        self._check()
        if table.schema != self._schema:
            table = table.select(self._schema.names).cast(self._schema)
        self._pending.append(table)
        self._pending_rows += len(table)
        self.rows += len(table)
        size = self.ROW_GROUP_ROWS
        if self._pending_rows >= size:
            whole = pa.concat_tables(self._pending)
            n_full = (len(whole) // size) * size
            if not self._thread.is_alive():
                self._thread.start()
            for start in range(0, n_full, size):
                self._queue.put(whole.slice(start, size))
            rest = whole.slice(n_full)
            self._pending = [rest] if len(rest) else []
            self._pending_rows = len(rest)

    def _finish_thread(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _finish(self) -> None:
        if self._pending_rows:
            if not self._thread.is_alive():
                self._thread.start()
            self._queue.put(pa.concat_tables(self._pending))
            self._pending, self._pending_rows = [], 0
        self._finish_thread()
        self._check()
        with naming_errors(self.name):
            self._writer.close()

    def abort(self) -> None:
        """Stop the writing thread and close the file, ignoring any error (a half-written row group
        makes pyarrow's close complain; the file is removed anyway)."""
        self._error = self._error or RuntimeError("aborted")
        self._pending, self._pending_rows = [], 0
        with contextlib.suppress(BaseException):
            if self._thread.is_alive():
                while True:  # make room for the stop sentinel: drop what is still queued
                    try:
                        self._queue.get_nowait()
                    except queue.Empty:
                        break
            self._finish_thread()
        with contextlib.suppress(BaseException):
            self._writer.close()


class JsonlRowWriter(RowWriter):
    def __init__(self, path: Path, dolly_only: bool = False, name: Path | None = None) -> None:
        super().__init__(path, dolly_only, name)
        with naming_errors(self.name):
            self._fh = open(path, "wb")

    def write(self, rows: list[dict[str, Any]]) -> None:
        fields = DOLLY_FIELDS if self.dolly_only else None
        out = []
        for row in rows:
            if fields is not None:
                record = {name: row[name] for name in fields}
            else:
                record = dict(row)
                if isinstance(record["meta"], dict):
                    record["meta"] = dump_meta(record["meta"])
                if not record.get(SPLIT_FIELD):
                    record[SPLIT_FIELD] = DEFAULT_SPLIT
            out.append(orjson.dumps(record))
        with naming_errors(self.name):
            self._fh.write(b"\n".join(out) + b"\n")
        self.rows += len(rows)

    def write_table(self, table: pa.Table) -> None:
        if len(table):
            self.write(table.to_pylist())

    def _finish(self) -> None:
        with naming_errors(self.name):
            self._fh.close()

    def abort(self) -> None:
        _close_quietly(self._fh)


def _close_quietly(fh: Any) -> None:
    """Close a file whose flush may fail again (a full disk): the descriptor is released either way."""
    with contextlib.suppress(BaseException):
        fh.close()
    if not fh.closed:  # pragma: no cover - close() failed before releasing the descriptor
        with contextlib.suppress(BaseException):
            os.close(fh.fileno())


class DatasetsRowWriter(RowWriter):
    """A ``datasets`` folder (``save_to_disk``) at ``path``, built at close from a parquet file written
    to ``scratch`` (default: ``<path>.parquet.tmp``), which is removed then."""

    def __init__(self, path: Path, dolly_only: bool = False, name: Path | None = None, scratch: Path | None = None) -> None:
        super().__init__(path, dolly_only, name)
        self._parquet_path = scratch if scratch is not None else path.with_name(path.name + ".parquet.tmp")
        self._parquet = ParquetRowWriter(self._parquet_path, dolly_only, name=self.name)

    def write(self, rows: list[dict[str, Any]]) -> None:
        self._parquet.write(rows)
        self.rows += len(rows)

    def write_table(self, table: pa.Table) -> None:
        self._parquet.write_table(table)
        self.rows += len(table)

    def _finish(self) -> None:
        self._parquet._finish()  # no description of the scratch file: only the folder is described
        try:
            with naming_errors(self.name):
                save_parquet_as_datasets_folder(self._parquet_path, self.path, pq.read_schema(self._parquet_path))
        finally:
            self._parquet_path.unlink(missing_ok=True)

    def abort(self) -> None:
        self._parquet.abort()
        self._parquet_path.unlink(missing_ok=True)


def save_parquet_as_datasets_folder(parquet_path: Path, folder: Path, schema: pa.Schema) -> None:
    """Turn a finished parquet file into a ``datasets`` folder (``save_to_disk``) at ``folder``, which must
    not exist yet (a temporary path of an output set; the set renames it into place)."""
    from ..errors import require

    datasets = require("datasets", "datasets")
    datasets.disable_progress_bars()
    with tempfile.TemporaryDirectory() as cache:
        features = datasets.Features.from_arrow_schema(schema)
        ds = datasets.Dataset.from_parquet(str(parquet_path), cache_dir=cache, features=features)
        ds.save_to_disk(str(folder))
        del ds


def open_row_writer(path: Path, fmt: str, *, dolly_only: bool = False, name: Path | None = None, scratch: Path | None = None) -> RowWriter:
    """The row writer for ``fmt`` writing to ``path`` (``name``: the final path, for messages; ``scratch``:
    the intermediate parquet file of a ``datasets`` folder)."""
    if fmt == "datasets":
        return DatasetsRowWriter(path, dolly_only, name, scratch)
    return {"parquet": ParquetRowWriter, "jsonl": JsonlRowWriter}[fmt](path, dolly_only, name)


class RejectsWriter:
    """The rejects file: one JSON object a line with reason, source, file, index/line and the raw record.

    It is written to ``path`` (a temporary path of the run's output set; ``name`` is its final path, for
    messages). With ``path=None`` rejects are only counted (API use without an output).
    """

    def __init__(self, path: Path | None, name: Path | None = None) -> None:
        self.path = path
        self.name = name if name is not None else path
        self.count = 0
        self._fh = None
        if path is not None:
            with naming_errors(self.name):
                self._fh = open(path, "wb")

    def write(self, reject: dict[str, Any]) -> None:
        self.write_many([reject])

    def write_many(self, rejects: list[dict[str, Any]]) -> None:
        """Several rejects, in order, in one write."""
        if not rejects:
            return
        self.count += len(rejects)
        if self._fh is not None:
            dumps, option = orjson.dumps, orjson.OPT_NON_STR_KEYS
            lines = b"\n".join([dumps(rej, default=str, option=option) for rej in rejects]) + b"\n"
            with naming_errors(self.name):
                self._fh.write(lines)

    def close(self) -> dict[str, Any] | None:
        """Close the file; its description (final ``name``, rejects, bytes, xxh3-128), or None without a file."""
        if self._fh is None:
            return None
        with naming_errors(self.name):
            self._fh.close()
        return describe_output(self.path, self.count, name=self.name)

    def abort(self) -> None:
        if self._fh is not None:
            _close_quietly(self._fh)


def json_bytes(data: Any) -> bytes:
    """How kodolly writes a JSON file (manifest, report): indented, keys sorted, a final newline."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str) + b"\n"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write one standalone JSON file under a temporary name, then rename it into place."""
    f = _AtomicFile(path)
    try:
        with naming_errors(path):
            f.tmp.write_bytes(json_bytes(data))
        f.commit()
    except BaseException:
        f.abort()
        raise


def read_rows(path: str | os.PathLike[str]) -> pa.Table:
    """Read kodolly rows back from parquet, JSONL or a ``datasets`` folder as an Arrow table
    (a kodolly output whose commit did not finish is refused: :func:`kodolly.io.commit.require_finished`)."""
    from .commit import require_finished

    p = Path(path)
    require_finished(p)
    if p.is_dir():
        from ..errors import require

        datasets = require("datasets", "datasets")
        return datasets.load_from_disk(str(p)).data.table
    if p.suffix.lower() == ".parquet":
        return pq.read_table(p)
    rows = [orjson.loads(line) for line in p.read_bytes().splitlines() if line.strip()]
    return pa.Table.from_pylist(rows)
