"""Write rows, rejects and manifests atomically.

Every output is written to a temporary name beside its final place and renamed into place only
when complete (``os.replace``), so a run that dies leaves no half-written file that looks finished.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
from abc import ABC, abstractmethod
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from ..errors import ConfigError
from ..rows import ARROW_SCHEMA, DEFAULT_SPLIT, DOLLY_ARROW_SCHEMA, DOLLY_FIELDS, SPLIT_FIELD, dump_meta, rows_to_table

FORMATS = ("parquet", "jsonl", "datasets")
_SUFFIX_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class OutputPaths:
    output: Path
    format: str
    rejects: Path
    manifest: Path


def output_paths(output: Path, output_format: str | None, rejects: str | os.PathLike[str] | None = None) -> OutputPaths:
    """Where the rows, rejects and manifest of a run go: ``out.parquet`` -> ``out.rejects.jsonl``, ``out.manifest.json``."""
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
    )


def file_hash(path: Path) -> str:
    hasher = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def describe_output(path: Path, rows: int) -> dict[str, Any]:
    """Path, size, row count and xxh3-128 of a written file, or of every file in a written folder."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return {
            "path": str(path),
            "rows": rows,
            "bytes": sum(p.stat().st_size for p in files),
            "files": {str(p.relative_to(path)): file_hash(p) for p in files},
        }
    return {"path": str(path), "rows": rows, "bytes": path.stat().st_size, "xxh3_128": file_hash(path)}


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
    """Base: ``write`` batches of rows, then ``close`` (returns output descriptions) or ``abort``."""

    def __init__(self, path: Path, dolly_only: bool) -> None:
        self.path = path
        self.dolly_only = dolly_only
        self.rows = 0

    @abstractmethod
    def write(self, rows: list[dict[str, Any]]) -> None:
        """See the class docstring."""

    def write_table(self, table: pa.Table) -> None:
        """Write rows given as an Arrow table with kodolly's schema."""
        self.write(table.to_pylist())

    @abstractmethod
    def close(self) -> list[dict[str, Any]]:
        """See the class docstring."""

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

    def __init__(self, path: Path, dolly_only: bool = False) -> None:
        super().__init__(path, dolly_only)
        self._file = _AtomicFile(path)
        self._schema = DOLLY_ARROW_SCHEMA if dolly_only else ARROW_SCHEMA
        text = [name for name in ("instruction", "context", "response", "id", "meta", "messages") if name in self._schema.names]
        self._writer = pq.ParquetWriter(
            self._file.tmp, self._schema, compression="zstd",
            # long, mostly unique text: dictionary encoding only costs time there
            use_dictionary=[name for name in self._schema.names if name not in text],
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
            raise self._error

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

    def close(self) -> list[dict[str, Any]]:
        if self._pending_rows:
            if not self._thread.is_alive():
                self._thread.start()
            self._queue.put(pa.concat_tables(self._pending))
            self._pending, self._pending_rows = [], 0
        self._finish_thread()
        self._check()
        self._writer.close()
        self._file.commit()
        return [describe_output(self.path, self.rows)]

    def abort(self) -> None:
        self._error = self._error or RuntimeError("aborted")
        self._finish_thread()
        try:
            self._writer.close()
        finally:
            self._file.abort()


class JsonlRowWriter(RowWriter):
    def __init__(self, path: Path, dolly_only: bool = False) -> None:
        super().__init__(path, dolly_only)
        self._file = _AtomicFile(path)
        self._fh = open(self._file.tmp, "wb")

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
        self._fh.write(b"\n".join(out) + b"\n")
        self.rows += len(rows)

    def write_table(self, table: pa.Table) -> None:
        if len(table):
            self.write(table.to_pylist())

    def close(self) -> list[dict[str, Any]]:
        self._fh.close()
        self._file.commit()
        return [describe_output(self.path, self.rows)]

    def abort(self) -> None:
        self._fh.close()
        self._file.abort()


class DatasetsRowWriter(RowWriter):
    """A ``datasets`` folder (``save_to_disk``), built from a temporary parquet file at close."""

    def __init__(self, path: Path, dolly_only: bool = False) -> None:
        super().__init__(path, dolly_only)
        self._parquet_path = _temp_beside(path, ".parquet")
        self._parquet = ParquetRowWriter(self._parquet_path, dolly_only)

    def write(self, rows: list[dict[str, Any]]) -> None:
        self._parquet.write(rows)
        self.rows += len(rows)

    def write_table(self, table: pa.Table) -> None:
        self._parquet.write_table(table)
        self.rows += len(table)

    def close(self) -> list[dict[str, Any]]:
        self._parquet.close()
        try:
            save_parquet_as_datasets_folder(self._parquet_path, self.path, pq.read_schema(self._parquet_path))
        finally:
            self._parquet_path.unlink(missing_ok=True)
        return [describe_output(self.path, self.rows)]

    def abort(self) -> None:
        self._parquet.abort()
        self._parquet_path.unlink(missing_ok=True)


def save_parquet_as_datasets_folder(parquet_path: Path, folder: Path, schema: pa.Schema) -> None:
    """Turn a finished parquet file into a ``datasets`` folder (``save_to_disk``), atomically.

    The folder is built under a temporary name beside ``folder`` and renamed into place; an
    existing folder is replaced only once the new one is complete.
    """
    from ..errors import require

    datasets = require("datasets", "datasets")
    datasets.disable_progress_bars()
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        with tempfile.TemporaryDirectory() as cache:
            features = datasets.Features.from_arrow_schema(schema)
            ds = datasets.Dataset.from_parquet(str(parquet_path), cache_dir=cache, features=features)
            ds.save_to_disk(str(tmp_dir))
            del ds
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            os.replace(folder, old)
            os.replace(tmp_dir, folder)
            shutil.rmtree(old)
        else:
            os.replace(tmp_dir, folder)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


_WRITERS = {"parquet": ParquetRowWriter, "jsonl": JsonlRowWriter, "datasets": DatasetsRowWriter}


def open_row_writer(path: Path, fmt: str, *, dolly_only: bool = False) -> RowWriter:
    return _WRITERS[fmt](path, dolly_only)


class RejectsWriter:
    """The rejects file: one JSON object a line with reason, source, file, index/line and the raw record.

    With ``path=None`` rejects are only counted (API use without an output).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self._file = _AtomicFile(path) if path is not None else None
        self._fh = open(self._file.tmp, "wb") if self._file is not None else None

    def write(self, reject: dict[str, Any]) -> None:
        self.count += 1
        if self._fh is not None:
            self._fh.write(orjson.dumps(reject, default=str, option=orjson.OPT_NON_STR_KEYS) + b"\n")

    def close(self) -> dict[str, Any] | None:
        if self._fh is None or self._file is None:
            return None
        self._fh.close()
        self._file.commit()
        return describe_output(self._file.path, self.count)

    def abort(self) -> None:
        if self._fh is not None and self._file is not None:
            self._fh.close()
            self._file.abort()


def write_json_atomic(path: Path, data: Any) -> None:
    f = _AtomicFile(path)
    try:
        f.tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str) + b"\n")
        f.commit()
    except BaseException:
        f.abort()
        raise


def read_rows(path: str | os.PathLike[str]) -> pa.Table:
    """Read kodolly rows back from parquet, JSONL or a ``datasets`` folder as an Arrow table."""
    p = Path(path)
    if p.is_dir():
        from ..errors import require

        datasets = require("datasets", "datasets")
        return datasets.load_from_disk(str(p)).data.table
    if p.suffix.lower() == ".parquet":
        return pq.read_table(p)
    rows = [orjson.loads(line) for line in p.read_bytes().splitlines() if line.strip()]
    return pa.Table.from_pylist(rows)
