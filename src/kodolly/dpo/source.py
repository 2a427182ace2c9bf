"""The input of ``build-dpo``, read in bounded batches (never a whole table in memory).

:class:`Inputs` wraps :func:`kodolly.io.batches.iter_batches`: parquet is read a row-group slice at a
time, JSONL ``chunk_rows`` lines at a time, a ``datasets`` folder is memory-mapped Arrow sliced into
batches. Each pass over the rows (:meth:`Inputs.rows`) reads the files again, so the batch mode's first
pass (collecting the texts to send) and the second (writing the pairs) both stay bounded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import pyarrow.parquet as pq

from ..io import batches
from ..io.readers import Location


class Inputs:
    def __init__(self, paths: Sequence[Path], chunk_rows: int = 2048) -> None:
        self.paths = list(paths)
        self.chunk_rows = max(1, chunk_rows)

    def columns(self) -> list[str]:
        """Column names of all inputs, in first-seen order (an empty JSONL has none)."""
        columns: list[str] = []
        for p in self.paths:
            if p.is_file() and p.suffix.lower() == ".parquet":
                names = batches.output_schema(p).names  # a bad parquet: one InputError naming it
            else:  # the first row of a JSONL file, the first slice of a datasets folder
                reader = batches.iter_batches(p, 1)
                first = next(reader, None)
                reader.close()
                names = first.column_names if first is not None else []
            columns += [c for c in names if c not in columns]
        return columns

    def rows(self) -> Iterator[tuple[dict[str, Any], Location]]:
        """Every input row with its location, one batch of ``chunk_rows`` in memory at a time."""
        for p in self.paths:
            index = 0
            # rows become Python values: a JSONL column may be null in one batch and text in the next
            for table in batches.iter_batches(p, self.chunk_rows, same_types=False):
                for row in table.to_pylist():
                    yield row, Location(file=str(p), index=index, line=None)
                    index += 1

    def count(self) -> int | None:
        """Total rows for a progress bar, from metadata where there is some (None for JSONL)."""
        total = 0
        for p in self.paths:
            if p.is_file() and p.suffix.lower() == ".parquet":
                total += pq.ParquetFile(p).metadata.num_rows
            elif p.is_dir():
                from ..errors import require

                total += require("datasets", "datasets").load_from_disk(str(p)).num_rows
            else:
                return None
        return total
