"""The job in Hugging Face datasets: load_dataset("json") + batched map (both cores) + dedup + parquet.

datasets has no drop_duplicates: a batched map adds an xxh3 key, a single-process filter keeps the first
row of each key. Dataset.to_parquet(compression=...) raises in datasets 5.2 (and writes snappy), so the
zstd parquet is written with pyarrow from the dataset's Arrow table.
"""

import json
import os
import tempfile

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import xxhash  # noqa: E402

from common import args, norm  # noqa: E402

datasets.disable_progress_bars()
src, out = args()


def normalise(batch):
    cols = {c: [norm(t) for t in batch[c]] for c in ("instruction", "input", "output")}
    cols["_key"] = [
        xxhash.xxh3_128_hexdigest(f"{i}\x1f{c}\x1f{o}".encode())
        for i, c, o in zip(cols["instruction"], cols["input"], cols["output"])
    ]
    return cols


with tempfile.TemporaryDirectory() as cache:
    ds = datasets.load_dataset("json", data_files=src, split="train", cache_dir=cache)
    ds = ds.map(normalise, batched=True, batch_size=2000, num_proc=2)
    ds = ds.filter(lambda b: [bool(i) and bool(o) for i, o in zip(b["instruction"], b["output"])], batched=True, num_proc=2)
    seen = set()

    def first(batch):
        keep = []
        for key in batch["_key"]:
            keep.append(key not in seen)
            seen.add(key)
        return keep

    ds = ds.filter(first, batched=True, input_columns=None)
    ds = ds.remove_columns("_key").flatten_indices()
    pq.write_table(ds.data.table, out, compression="zstd")
    print(json.dumps({"rows": len(ds)}))
