"""kodolly's side of the benchmark: `kodolly convert` with its default filter chain — what
``build_filters`` gives for the command line's defaults: the content checks (Git-LFS pointers, a
response repeating the instruction), exact dedup (xxh3-128 of instruction, context, response; first
kept) and the split step (every row ``train``) — after NFC normalisation and the empty-field check;
zstd parquet.

    python benchmarks/kodolly_job.py INPUT.jsonl OUTPUT.parquet [WORKERS]
"""

import json
import sys

import kodolly
from kodolly.filters import build_filters

if __name__ == "__main__":
    src, out = sys.argv[1], sys.argv[2]
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else None
    filters = build_filters({})  # the defaults of `kodolly convert`: content, dedup, split
    result = kodolly.convert(src, "alpaca", out, filters=filters, workers=workers)
    print(json.dumps({"rows": result.tally.written, "rejected": dict(result.tally.by_reason)}))
