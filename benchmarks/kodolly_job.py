"""kodolly's side of the benchmark: `kodolly convert` with NFC normalisation, the empty-field check,
exact dedup (benchmarks/filters.py until the real filters land) and zstd parquet.

    python benchmarks/kodolly_job.py INPUT.jsonl OUTPUT.parquet [WORKERS]
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import kodolly  # noqa: E402
from benchmarks.filters import ExactDedup  # noqa: E402

if __name__ == "__main__":
    src, out = sys.argv[1], sys.argv[2]
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else None
    result = kodolly.convert(src, "alpaca", out, filters=[ExactDedup()], workers=workers)
    print(json.dumps({"rows": result.tally.written, "rejected": dict(result.tally.by_reason)}))
