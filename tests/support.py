"""Helpers shared by the tests (import with ``from support import ...``)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
def convert_to_parquet(tmp_path: Path, sources, converter, **kwargs):
    """Run a conversion into a parquet file, check the tally identity, return (rows, rejects, result)."""
    import kodolly
    import orjson

    out = tmp_path / "out.parquet"
    result = kodolly.convert(sources, converter, out, **kwargs)
    assert result.tally.balanced
    assert result.tally.read == result.tally.written + result.tally.rejected
    rows = pq.read_table(out).to_pylist()
    rejects = [orjson.loads(line) for line in result.rejects.read_bytes().splitlines()]
    assert len(rows) == result.tally.written
    assert len(rejects) == result.tally.rejected
    return rows, rejects, result


def strip_meta(rows):
    return [{k: v for k, v in row.items() if k != "meta"} for row in rows]
