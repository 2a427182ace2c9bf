"""The floor: what reading the JSONL and writing zstd parquet costs with no work in between.

``pyarrow.json.read_json`` (its own threads, the whole table in memory) and ``pyarrow.parquet.write_table``
with zstd: no normalisation, no empty-field check, no dedup, so it keeps every row. The ratio of a
pipeline's time to this one shows what its real work costs over bare parse and write.
"""

import json

import pyarrow.json as pj
import pyarrow.parquet as pq

from common import args

src, out = args()
table = pj.read_json(src)
pq.write_table(table, out, compression="zstd")
print(json.dumps({"rows": table.num_rows}))
