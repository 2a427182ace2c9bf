"""The job in plain pandas: json.loads every line, DataFrame, normalise, drop empty, drop_duplicates, to_parquet."""

import json

import pandas as pd

from common import args, norm

src, out = args()
with open(src, encoding="utf-8") as fh:
    records = [json.loads(line) for line in fh if line.strip()]
df = pd.DataFrame.from_records(records, columns=["instruction", "input", "output"])
del records
for col in ("instruction", "input", "output"):
    df[col] = df[col].map(norm)
df = df[(df["instruction"] != "") & (df["output"] != "")]
df = df.drop_duplicates(subset=["instruction", "input", "output"], keep="first")
df.to_parquet(out, compression="zstd", index=False)
print(json.dumps({"rows": len(df)}))
