"""Columnar inputs: parquet, Arrow IPC / Feather, and ``datasets`` folders, read with pyarrow.

A record is one row as a mapping (nested columns become lists and dicts, as ``to_pylist`` gives
them; a null column is left out, as the key is absent from the JSON record the table was made
from -- a table has every column in every row); its :class:`~kodolly.io.readers.Location` is the input and the row's 0-based index. Files are
read in record batches (a parquet row group or an Arrow record batch at a time), never whole.

For the corridor's planner (:mod:`kodolly.corridor.shards`), :func:`row_groups` names the natural pieces of a file (parquet row groups,
Arrow record batches) as row ranges and :func:`read_rows` reads any row range, skipping the pieces
outside it without decoding them.

A ``datasets`` folder is what ``Dataset.save_to_disk`` writes (``dataset_info.json``,
``state.json`` listing ``data-*.arrow``) or a build in the ``datasets`` cache
(``dataset_info.json`` beside ``NAME-SPLIT[-NNNNN-of-NNNNN].arrow``); :func:`datasets_folder_files`
turns one into its Arrow files in order. A ``DatasetDict`` folder holds one such folder per split.

A file pyarrow cannot open (truncated, not parquet, an Arrow file without a schema) stops the run
with one :class:`~kodolly.errors.InputError` naming it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator

from ..errors import InputError, one_line

if TYPE_CHECKING:
    from .sources import Input

PARQUET_SUFFIXES = (".parquet",)
ARROW_SUFFIXES = (".arrow", ".feather")
COLUMNAR_SUFFIXES = PARQUET_SUFFIXES + ARROW_SUFFIXES
DATASETS_META_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")
BATCH_ROWS = 1024
_SAVE_TO_DISK_NAME = re.compile(r"^data-\d{5}-of-\d{5}\.arrow$")


def is_columnar(inp: "Input") -> bool:
    return inp.suffix in COLUMNAR_SUFFIXES


# ------------------------------------------------------------------------------------- opening


@dataclass
class _Opened:
    """An open columnar file: parquet (``pq.ParquetFile``) or Arrow (IPC file or stream reader)."""

    kind: str  # "parquet" | "arrow-file" | "arrow-stream"
    reader: Any
    source: Any  # what must be closed afterwards
    spooled: str | None = None

    def close(self) -> None:
        try:
            if hasattr(self.source, "close"):
                self.source.close()
        finally:
            if self.spooled:
                os.unlink(self.spooled)


def _local_path(inp: Input) -> str | None:
    if inp.path is not None:
        return inp.path
    return inp.name if "!" not in inp.name and not inp.name.lower().endswith(".gz") and os.path.isfile(inp.name) else None


def local_file(inp: Input) -> bool:
    """Whether the input is a plain file pyarrow maps in place (not a zip member, not gzip): its row
    ranges can be read apart (:func:`read_rows`) without copying the file out again for each."""
    return _local_path(inp) is not None


def hash_pass(inp: Input) -> None:
    """Read the input once through ``Input.open`` so its size and content hash are known (and a
    Git-LFS pointer stops the run), as for every other input."""
    stream = inp.open()
    try:
        while stream.read(1 << 22):
            pass
    finally:
        stream.close()


def _random_access(inp: Input) -> tuple[Any, str | None]:
    """A pyarrow random-access file for the input (memory-mapped when it is a plain file)."""
    import pyarrow as pa

    path = _local_path(inp)
    if path is not None:
        return pa.memory_map(path, "r"), None
    # A zip member or a .gz file: copied to a temporary file first (removed when closed). Reading
    # a compressed zip member in place would decompress it again from its start at every backward
    # seek, and parquet seeks to its footer first, then back to each row group.
    import gzip

    raw: BinaryIO = inp.open_raw()
    src = gzip.GzipFile(fileobj=raw, mode="rb") if inp.name.lower().endswith(".gz") else raw
    fd, spooled = tempfile.mkstemp(prefix="kodolly-", suffix=inp.suffix)
    with os.fdopen(fd, "wb") as out, src:
        shutil.copyfileobj(src, out, 1 << 22)
    return pa.memory_map(spooled, "r"), spooled


def _open(inp: Input) -> _Opened:
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    source, spooled = _random_access(inp)
    try:
        if inp.suffix in PARQUET_SUFFIXES:
            try:
                return _Opened("parquet", pq.ParquetFile(source), source, spooled)
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise InputError(f"{inp.name}: not a readable parquet file ({one_line(exc)})") from None
        try:
            return _Opened("arrow-file", ipc.open_file(source), source, spooled)
        except (pa.ArrowException, OSError, ValueError):
            source.seek(0)
        try:
            return _Opened("arrow-stream", ipc.open_stream(source), source, spooled)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InputError(f"{inp.name}: not a readable Arrow IPC / Feather file: no schema ({one_line(exc)})") from None
    except BaseException:
        source.close()
        if spooled:
            os.unlink(spooled)
        raise


# ------------------------------------------------------------------------------------- reading


def row_groups(inp: Input) -> list[tuple[int, int]]:
    """The file's natural pieces as ``(start, stop)`` row ranges: parquet row groups, Arrow record
    batches (an Arrow stream is read once to find them)."""
    opened = _open(inp)
    try:
        if opened.kind == "parquet":
            sizes = [opened.reader.metadata.row_group(i).num_rows for i in range(opened.reader.num_row_groups)]
        elif opened.kind == "arrow-file":
            sizes = [opened.reader.get_batch(i).num_rows for i in range(opened.reader.num_record_batches)]
        else:
            sizes = [batch.num_rows for batch in opened.reader]
    except Exception as exc:
        raise InputError(f"{inp.name}: unreadable ({one_line(exc)})") from None
    finally:
        opened.close()
    ranges, start = [], 0
    for size in sizes:
        ranges.append((start, start + size))
        start += size
    return ranges


def _pieces(opened: _Opened) -> Iterator[tuple[int, Any]]:
    """``(rows in the piece, loader)`` for each piece in order; the loader yields its record batches."""
    reader = opened.reader
    if opened.kind == "parquet":
        for i in range(reader.num_row_groups):
            yield reader.metadata.row_group(i).num_rows, (lambda i=i: reader.iter_batches(batch_size=BATCH_ROWS, row_groups=[i]))
    elif opened.kind == "arrow-file":
        for i in range(reader.num_record_batches):
            batch = reader.get_batch(i)  # zero-copy on a memory map
            yield batch.num_rows, (lambda batch=batch: iter([batch]))
    else:
        for batch in reader:
            yield batch.num_rows, (lambda batch=batch: iter([batch]))


def read_rows(inp: Input, start: int = 0, stop: int | None = None) -> Iterator[tuple[dict[str, Any], Any]]:
    """Yield ``(row as a dict, Location)`` for rows ``start`` .. ``stop`` (exclusive) of the input."""
    from .readers import Location

    opened = _open(inp)
    try:
        offset = 0
        for size, load in _pieces(opened):
            if stop is not None and offset >= stop:
                break
            if offset + size <= start:
                offset += size
                continue
            for batch in load():
                n = batch.num_rows
                lo, hi = max(start - offset, 0), n if stop is None else min(stop - offset, n)
                if lo < hi:
                    part = batch.slice(lo, hi - lo) if (lo, hi) != (0, n) else batch
                    for k, row in enumerate(part.to_pylist()):
                        yield {key: value for key, value in row.items() if value is not None}, Location(inp.name, offset + lo + k)
                offset += n
    except InputError:
        raise
    except Exception as exc:  # a damaged page or batch in the middle of the file
        raise InputError(f"{inp.name}: unreadable after row {offset} ({one_line(exc)})") from None
    finally:
        opened.close()


def read_table_records(inp: Input) -> Iterator[tuple[dict[str, Any], Any]]:
    """Every row of a columnar input (what :func:`kodolly.io.readers.read_records` yields for it).

    Once all rows are read, the input's bytes are read once more through ``Input.open`` for its
    content hash (a reader that stops early, like detection, skips that)."""
    _check_not_pointer(inp)
    yield from read_rows(inp)
    hash_pass(inp)


def _check_not_pointer(inp: "Input") -> None:
    inp.open().close()  # raises LfsPointerError on a Git-LFS pointer


def schema_of(inp: Input) -> Any:
    """The file's Arrow schema (for ``kodolly inspect``)."""
    opened = _open(inp)
    try:
        return opened.reader.schema_arrow if opened.kind == "parquet" else opened.reader.schema
    finally:
        opened.close()


# ------------------------------------------------------------------------------- datasets folders


def is_datasets_folder(path: Path) -> bool:
    """A folder ``datasets`` wrote: its metadata files, or ``data-NNNNN-of-NNNNN.arrow`` files."""
    if not path.is_dir():
        return False
    if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():
        return True
    return any(_SAVE_TO_DISK_NAME.match(p.name) for p in path.iterdir() if p.is_file())


def datasets_folder_files(path: Path) -> list[Path]:
    """The Arrow files of a ``datasets`` folder, in the dataset's row order.

    ``save_to_disk`` output: the files ``state.json`` lists. A cache build (``dataset_info.json``,
    no ``state.json``): its ``*.arrow`` files sorted by name. Raises :class:`InputError` for a
    folder without ``dataset_info.json``, or whose ``state.json`` is unreadable or names missing files.
    """
    info, state = path / "dataset_info.json", path / "state.json"
    if not info.is_file():
        raise InputError(f"{path}: a datasets folder without dataset_info.json; save it again with Dataset.save_to_disk")
    _load_json(info)
    if not state.is_file():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".arrow" and not p.name.startswith("cache-"))
        if not files:
            raise InputError(f"{path}: a datasets folder with dataset_info.json but no state.json and no .arrow files")
        return files
    entries = _load_json(state).get("_data_files")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("filename"), str) for e in entries):
        raise InputError(f"{state}: no _data_files list of {{filename}}; not a datasets state file")
    files = [path / e["filename"] for e in entries]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise InputError(f"{state}: names data files that are not there: {', '.join(missing)}")
    return files


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable ({one_line(exc)})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    return data
