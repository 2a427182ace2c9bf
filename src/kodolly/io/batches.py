"""Read a kodolly output back in bounded batches: parquet, JSONL or a ``datasets`` folder.

Publishing and export read outputs of any size; :func:`iter_batches` never holds more than one
batch of rows in memory (a ``datasets`` folder is memory-mapped Arrow, a parquet file is read a
row-group slice at a time, JSONL is parsed ``batch_rows`` lines at a time).

A kodolly output whose commit did not finish (or that disagrees with its manifest) is refused
(:func:`kodolly.io.commit.require_finished`).

JSONL carries no types, so columns kodolly knows (``score`` is a float even when a batch has only
nulls, ``meta`` is a JSON string) are cast to their kodolly types; other columns keep the type the
first batch gives them, and later batches are cast to it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ConfigError, InputError
from ..rows import ARROW_SCHEMA, dump_meta

DEFAULT_BATCH_ROWS = 10_000


def iter_batches(
    path: str | os.PathLike[str], batch_rows: int = DEFAULT_BATCH_ROWS, *, same_types: bool = True,
    fmt: str | None = None, columns: Sequence[str] | None = None,
) -> Iterator[pa.Table]:
    """Yield the rows of a kodolly output as Arrow tables of at most ``batch_rows`` rows.

    ``same_types=False`` (JSONL only) types each batch on its own, for readers that only want the rows
    as Python values: a column that is null in the whole first batch and text later is then no error.
    ``fmt`` (``parquet``, ``jsonl``, ``datasets``) reads ``path`` as that format whatever its name (a
    staged output under its temporary name; not checked for a finished commit); ``columns``: only those
    of them the output has (parquet reads no other column).
    """
    from .commit import require_finished

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if fmt is None:
        require_finished(p)
        if p.is_dir():
            fmt = "datasets"
        elif p.suffix.lower() == ".parquet":
            fmt = "parquet"
        elif p.suffix.lower() in (".jsonl", ".ndjson"):
            fmt = "jsonl"
        else:
            raise ConfigError(f"{p}: not a kodolly output (expected .parquet, .jsonl or a datasets folder)")
    if fmt == "datasets":
        batches = _datasets_batches(p, batch_rows)
    elif fmt == "parquet":
        batches = _parquet_batches(p, batch_rows, columns)
    elif fmt == "jsonl":
        batches = _jsonl_batches(p, batch_rows, same_types)
    else:
        raise ConfigError(f"{p}: unknown output format {fmt!r}")
    if columns is None:
        yield from batches
        return
    for table in batches:
        yield table.select([c for c in columns if c in table.column_names])


def _parquet_batches(p: Path, batch_rows: int, columns: Sequence[str] | None) -> Iterator[pa.Table]:
    if p.is_dir():  # a folder of parquet part files (a cluster run's output), in the order of their names
        for part in sorted(q for q in p.rglob("*.parquet") if q.is_file()):
            yield from _parquet_batches(part, batch_rows, columns)
        return
    try:
        # pre_buffer (pyarrow's default) keeps the column chunks it read ahead: reading a 1M-row output
        # (57 row groups, 1.7 GB of text) peaked at 739 MB with it and 246 MB without, at the same CPU time
        pf = pq.ParquetFile(p, pre_buffer=False)
        schema = pf.schema_arrow
        if columns is not None:
            names = [c for c in columns if c in schema.names]
            schema = pa.schema([schema.field(c) for c in names])
        for batch in pf.iter_batches(batch_size=batch_rows, columns=None if columns is None else names):
            yield pa.Table.from_batches([batch], schema=schema)
    except (pa.ArrowException, OSError) as exc:  # truncated or not parquet at all
        raise InputError(f"{p}: not a readable parquet file ({exc})") from exc


def output_schema(path: str | os.PathLike[str], fmt: str | None = None) -> pa.Schema:
    """The Arrow schema of a kodolly output (reads one batch for JSONL); ``fmt`` as for :func:`iter_batches`."""
    p = Path(path)
    if (fmt == "parquet" or (fmt is None and p.suffix.lower() == ".parquet")) and p.is_file():
        try:
            return pq.read_schema(p)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{p}: not a readable parquet file ({exc})") from exc
    for table in iter_batches(p, 1000, fmt=fmt):
        return table.schema
    raise ConfigError(f"{p}: the output holds no rows")


def _datasets_batches(p: Path, batch_rows: int) -> Iterator[pa.Table]:
    from ..errors import require

    datasets = require("datasets", "datasets")
    ds = datasets.load_from_disk(str(p))
    if isinstance(ds, datasets.DatasetDict):
        raise ConfigError(f"{p}: a DatasetDict folder; publish a kodolly output (one dataset) instead")
    yield from dataset_batches(ds, batch_rows)


def dataset_batches(ds, batch_rows: int) -> Iterator[pa.Table]:
    """The rows of a ``datasets.Dataset`` in the order it shows them, as Arrow tables of at most
    ``batch_rows`` rows: slices of its memory-mapped table, or, for a dataset with an indices mapping
    (selected, shuffled, sorted), the rows the mapping names, a batch at a time (nothing is copied whole,
    no cache file is written). The same public call ``datasets`` writes ``save_to_disk`` shards with."""
    yield from ds.with_format("arrow").iter(batch_size=batch_rows)


_KNOWN_TYPES = {field.name: field.type for field in ARROW_SCHEMA}


def _jsonl_batches(p: Path, batch_rows: int, same_types: bool = True) -> Iterator[pa.Table]:
    schema: pa.Schema | None = None
    rows: list[dict] = []
    with open(p, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"{p}:{lineno}: not JSON ({exc})") from exc
            if isinstance(row.get("meta"), dict):
                row["meta"] = dump_meta(row["meta"])
            rows.append(row)
            if len(rows) >= batch_rows:
                table, schema = _to_table(rows, schema if same_types else None, p)
                yield table
                rows = []
    if rows:
        table, schema = _to_table(rows, schema, p)
        yield table


def _to_table(rows: list[dict], schema: pa.Schema | None, p: Path) -> tuple[pa.Table, pa.Schema]:
    table = pa.Table.from_pylist(rows)
    if schema is None:
        fields = [pa.field(f.name, _KNOWN_TYPES.get(f.name, f.type)) for f in table.schema]
        schema = pa.schema(fields)
    missing = set(schema.names) ^ set(table.column_names)
    if missing:
        raise InputError(f"{p}: rows do not all have the same fields (differ in {sorted(missing)})")
    try:
        table = table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"{p}: a column changes type between rows ({exc})") from exc
    return table, schema
