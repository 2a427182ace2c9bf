"""Writing the same records as parquet, Arrow IPC (file and stream), Feather and a ``datasets`` folder,
each in several row groups / record batches, for the columnar-input tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

KINDS = ("parquet", "arrow-file", "arrow-stream", "feather", "datasets")


def records_table(records: list[dict[str, Any]]) -> pa.Table:
    """A table with the union of the records' keys (absent keys are nulls), types inferred over all rows."""
    return pa.Table.from_struct_array(pa.array(records))


def write_columnar(records: list[dict[str, Any]], dest: Path, kind: str, rows_per_group: int = 2) -> Path:
    """Write ``records`` as ``kind`` at ``dest`` (a file name without suffix); return the path to read."""
    table = records_table(records)
    if kind == "parquet":
        path = dest.with_suffix(".parquet")
        pq.write_table(table, path, row_group_size=rows_per_group)
    elif kind in ("arrow-file", "arrow-stream"):
        path = dest.with_suffix(".arrow")
        opener = ipc.new_file if kind == "arrow-file" else ipc.new_stream
        with pa.OSFile(str(path), "wb") as sink, opener(sink, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=rows_per_group):
                writer.write_batch(batch)
    elif kind == "feather":
        path = dest.with_suffix(".feather")
        feather.write_feather(table, path, chunksize=rows_per_group)
    elif kind == "datasets":
        import datasets

        datasets.disable_progress_bars()
        path = dest
        datasets.Dataset(table).save_to_disk(str(path), num_shards=min(2, len(table)))
    else:
        raise ValueError(kind)
    return path
