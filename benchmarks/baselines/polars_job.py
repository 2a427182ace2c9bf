"""The job in polars: lazy scan_ndjson, normalise (str.normalize NFC + regex), hash, unique, sink_parquet."""

import json

import polars as pl

from common import args

src, out = args()
COLS = ("instruction", "input", "output")


def norm(col: str) -> pl.Expr:
    return (
        pl.col(col).fill_null("")
        .str.normalize("NFC")
        .str.replace_all("\r\n", "\n", literal=True)
        .str.replace_all("\r", "\n", literal=True)
        .str.replace_all(r"[ \t]+\n", "\n")
        .str.replace_all(r"(\S) {2,}", "${1} ")
        .str.replace_all(r"\n{3,}", "\n\n")
        .str.strip_chars()
        .alias(col)
    )


lf = (
    pl.scan_ndjson(src, schema={c: pl.String for c in COLS})
    .with_columns([norm(c) for c in COLS])
    .filter((pl.col("instruction") != "") & (pl.col("output") != ""))
    .with_columns(pl.concat_str([pl.col(c) for c in COLS], separator="\x1f").hash().alias("_h"))
    .unique(subset=["_h"], keep="first", maintain_order=True)
    .drop("_h")
)
lf.sink_parquet(out, compression="zstd")
print(json.dumps({"rows": pl.scan_parquet(out).select(pl.len()).collect().item()}))
