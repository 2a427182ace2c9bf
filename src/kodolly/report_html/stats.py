"""The figures of a run's HTML page, computed in streaming passes over its files.

One pass over the output reads it in Arrow batches (:func:`kodolly.io.batches.iter_batches`, only the
columns used) and adds each batch to :class:`OutputStats`: per text column the exact length histogram
(``numpy.bincount`` of ``pyarrow.compute.utf8_length``, so medians and percentiles are exact while the
memory is bounded by the longest text, not by the row count), the Hangul share of instructions and
responses (:func:`kodolly.normalize.hangul_share`, the function the content filter uses, into 20 bins),
categories, domains, splits and sources (``value_counts``), and for DPO outputs the first pairs.
One pass over the rejects file collects the first examples of each reason (the raw record, file and
line) and the first exact and near duplicates, whose kept rows are looked up by id in a second,
cheap pass over the output's ``id`` column.

Counts per source and reason are the run's tally as the manifest (and the report JSON) record it, never
recounted here: the page shows the numbers the run checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..hub.public import public_name, scrub_paths
from ..normalize import hangul_share
from ..tally import reason_key

EXAMPLES_PER_REASON = 3
DUPLICATE_EXAMPLES = 3
DPO_EXAMPLES = 3
RAW_CHARS = 600  # a raw record on the page is cut after this many characters
TEXT_CHARS = 400  # a text of an example row likewise
HANGUL_BINS = 20
HANGUL_SAMPLE = 10_000  # rows whose Hangul share is computed: between this and twice this (all rows of a smaller output)
BATCH_ROWS = 50_000
TEXT_COLUMNS = ("instruction", "context", "response", "prompt", "chosen", "rejected")
HANGUL_COLUMNS = ("instruction", "response", "chosen")
COUNT_COLUMNS = ("category", "domain", "split", "source")
_ID_REASONS = ("duplicate_of", "near_duplicate_of")
def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Lengths:
    """The exact distribution of one column's lengths: ``counts[n]`` = rows of length ``n``."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def add(self, lengths: np.ndarray) -> None:
        if not len(lengths):
            return
        got = np.bincount(lengths)
        if len(got) > len(self.counts):
            got[: len(self.counts)] += self.counts
            self.counts = got
        else:
            self.counts[: len(got)] += got

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    def quantile(self, q: float) -> int:
        """The smallest length at or below which a share ``q`` of the rows lie (exact)."""
        total = self.rows
        if not total:
            return 0
        return int(np.searchsorted(np.cumsum(self.counts), q * total, side="left"))

    def summary(self) -> dict[str, Any]:
        n = self.rows
        if not n:
            return {"rows": 0}
        lengths = np.arange(len(self.counts))
        return {
            "rows": n,
            "empty": int(self.counts[0]),
            "mean": round(float((lengths * self.counts).sum()) / n, 1),
            "p50": self.quantile(0.5),
            "p90": self.quantile(0.9),
            "p99": self.quantile(0.99),
            "max": int(len(self.counts) - 1),
        }

    def histogram(self) -> tuple[list[float], list[int]]:
        """Counts over log-spaced bins (1, 2, 5, 10, 20, 50, ...), empty values in a bin of their own."""
        top = max(len(self.counts), 2)
        edges = [0, 1]
        step = 0
        while edges[-1] < top:
            edges.append(int((1, 2, 5)[(step + 1) % 3] * 10 ** ((step + 1) // 3)))
            step += 1
        cum = np.concatenate([[0], np.cumsum(self.counts)])
        idx = np.minimum(np.array(edges), len(self.counts))
        counts = np.diff(cum[idx]).tolist()
        return edges, [int(c) for c in counts]


class OutputStats:
    """Figures of the output rows, added table by table in output order (memory bounded by the longest
    text and the Hangul sample, never by the row count).

    The Hangul share is computed for a deterministic sample: every ``stride``-th row (by position in the
    output), the stride doubling whenever more than ``2 * HANGUL_SAMPLE`` rows are sampled, so the sample
    depends only on the row count (every row up to ``2 * HANGUL_SAMPLE`` rows; 1M rows: every 64th).
    """

    def __init__(self, tokenizer: Any = None) -> None:
        self.rows = 0
        self.lengths: dict[str, Lengths] = {}
        self.tokens: dict[str, Lengths] = {}
        self.stride = 1
        self.samples: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # column -> (row positions, shares)
        self.counts: dict[str, dict[str, int]] = {}
        self.pairs: list[dict[str, str]] = []
        self.tokenizer = tokenizer

    def add(self, table: pa.Table) -> None:
        start, n = self.rows, len(table)
        self.rows += n
        names = table.column_names
        for name in TEXT_COLUMNS:
            if name not in names or not pa.types.is_string(table.schema.field(name).type):
                continue
            column = table.column(name)
            if column.null_count:
                column = column.fill_null("")
            lengths = pc.utf8_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
            self.lengths.setdefault(name, Lengths()).add(lengths)
            if self.tokenizer is not None:
                counted = self.tokenizer.count(column.to_pylist())
                self.tokens.setdefault(name, Lengths()).add(np.array(counted, dtype=np.int64))
            if name in HANGUL_COLUMNS:
                self._sample(name, column, lengths, start)
        self._thin()
        for name in COUNT_COLUMNS:
            if name not in names:
                continue
            into = self.counts.setdefault(name, {})
            for entry in pc.value_counts(table.column(name)).to_pylist():
                key = entry["values"] if entry["values"] is not None else ""
                into[key] = into.get(key, 0) + entry["counts"]
        if "rejected" in names and len(self.pairs) < DPO_EXAMPLES:
            for row in table.slice(0, DPO_EXAMPLES - len(self.pairs)).to_pylist():
                self.pairs.append(_pair_of(row))

    def _sample(self, name: str, column: Any, lengths: np.ndarray, start: int) -> None:
        first = (-start) % self.stride  # the first row of this table at a multiple of the stride
        local = np.arange(first, len(lengths), self.stride)
        nonempty = local[lengths[local] > 0]
        texts = column.take(pa.array(nonempty)).to_pylist() if len(nonempty) else []
        shares = np.array([hangul_share(t) for t in texts], dtype=np.float64)
        pos, got = self.samples.get(name, (np.zeros(0, np.int64), np.zeros(0, np.float64)))
        self.samples[name] = (np.concatenate([pos, nonempty + start]), np.concatenate([got, shares]))

    def _thin(self) -> None:
        while (self.rows + self.stride - 1) // self.stride > 2 * HANGUL_SAMPLE:
            self.stride *= 2
            for name, (pos, got) in self.samples.items():
                keep = pos % self.stride == 0
                self.samples[name] = (pos[keep], got[keep])

    def hangul(self) -> dict[str, Any]:
        out = {}
        for name, (_pos, got) in self.samples.items():
            bins = np.minimum((got * HANGUL_BINS).astype(np.int64), HANGUL_BINS - 1)
            out[name] = {"counts": [int(c) for c in np.bincount(bins, minlength=HANGUL_BINS)], "sampled": int(len(got)), "stride": self.stride}
        return out

    def as_dict(self, columns: Iterable[str] | None = None) -> dict[str, Any]:
        """The figures; ``columns``: only of these columns (the output's, when the rows were fed by a run)."""
        keep = set(columns) if columns is not None else None

        def ok(name: str) -> bool:
            return keep is None or name in keep

        out: dict[str, Any] = {"rows": self.rows}
        out["lengths"] = {k: {**v.summary(), "histogram": v.histogram()} for k, v in self.lengths.items() if ok(k)}
        if self.tokens:
            out["tokens"] = {k: {**v.summary(), "histogram": v.histogram()} for k, v in self.tokens.items() if ok(k)}
        out["hangul"] = {k: v for k, v in self.hangul().items() if ok(k)}
        out["counts"] = {k: dict(sorted(v.items(), key=lambda kv: (-kv[1], kv[0]))) for k, v in self.counts.items() if ok(k)}
        out["pairs"] = self.pairs if ok("rejected") else []
        return out


def _text(value: Any) -> str:
    """A row's text for the page: strings as they are, message lists as ``role: content`` lines."""
    if isinstance(value, list):
        return "\n".join(f"{m.get('role', '')}: {m.get('content', '')}" for m in value if isinstance(m, dict))
    return "" if value is None else str(value)


def _pair_of(row: dict[str, Any]) -> dict[str, str]:
    if "prompt" in row:
        prompt = _text(row.get("prompt"))
    else:
        prompt = "\n\n".join(t for t in (_text(row.get("instruction")), _text(row.get("context"))) if t)
    chosen = row.get("chosen") if "chosen" in row else row.get("response")
    return {
        "id": _text(row.get("id")),
        "prompt": cut(prompt, TEXT_CHARS),
        "chosen": cut(_text(chosen), TEXT_CHARS),
        "rejected": cut(_text(row.get("rejected")), TEXT_CHARS),
    }


def output_stats(batches: Iterable[pa.Table], tokenizer: Any = None) -> dict[str, Any]:
    stats = OutputStats(tokenizer)
    for table in batches:
        stats.add(table)
    return stats.as_dict()


STATS_COLUMNS = (*TEXT_COLUMNS, *COUNT_COLUMNS, "id")


def _raw_text(raw: Any) -> str:
    """A reject's raw record as the page shows it; a row's ``meta.file`` by its name only."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, dict) and isinstance(raw.get("meta"), (dict, str)):
        meta = raw["meta"]
        try:
            meta = orjson.loads(meta) if isinstance(meta, str) else dict(meta)
        except orjson.JSONDecodeError:
            meta = None
        if isinstance(meta, dict) and isinstance(meta.get("file"), str):
            meta["file"] = public_name(meta["file"])
            raw = {**raw, "meta": meta}
    return orjson.dumps(raw, option=orjson.OPT_INDENT_2).decode() if raw is not None else ""


def _where(rej: dict[str, Any]) -> str:
    name = public_name(str(rej.get("file") or ""))
    if rej.get("line") is not None:
        name = f"{name}:{rej['line']}"
    elif rej.get("index") is not None:
        name = f"{name}#{rej['index']}"
    return f"{name} ({rej['part']})" if rej.get("part") else name


def rejects_stats(path: Path | None) -> dict[str, Any]:
    """The first examples of each reason of the rejects file (one pass, line by line) and the first
    exact and near duplicates (their kept row's id from the reason)."""
    examples: dict[str, list[dict[str, Any]]] = {}
    duplicates: dict[str, list[dict[str, Any]]] = {k: [] for k in _ID_REASONS}
    counted: dict[str, int] = {}
    if path is None or not Path(path).exists():
        return {"examples": {}, "duplicates": duplicates, "counted": {}}
    with open(path, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            # the reason is the first field the rejects writer puts: read it without parsing the line
            m = re.match(rb'\{"reason":"((?:[^"\\]|\\.)*)"', line)
            reason = orjson.loads(b'"' + m.group(1) + b'"') if m else orjson.loads(line).get("reason", "")
            key = reason_key(reason)
            counted[key] = counted.get(key, 0) + 1
            found = examples.setdefault(key, [])
            dups = duplicates.get(key)
            if len(found) >= EXAMPLES_PER_REASON and (dups is None or len(dups) >= DUPLICATE_EXAMPLES):
                continue
            rej = orjson.loads(line)
            example = {
                "reason": rej.get("reason", ""),
                "source": rej.get("source", ""),
                "where": _where(rej),
                "id": str(rej.get("id") or ""),
                "detail": cut(scrub_paths(str(rej.get("detail") or "")), TEXT_CHARS),
                "raw": cut(_raw_text(rej.get("raw")), RAW_CHARS),
            }
            if len(found) < EXAMPLES_PER_REASON:
                found.append(example)
            if dups is not None and len(dups) < DUPLICATE_EXAMPLES:
                dups.append({**example, "kept_id": reason.partition(":")[2]})
    return {"examples": {k: examples[k] for k in sorted(examples)}, "duplicates": duplicates, "counted": counted}


def kept_rows(path: Path, fmt: str, ids: set[str]) -> dict[str, dict[str, str]]:
    """The first output row of each id in ``ids`` (instruction, context, response, file): one pass over
    the ``id`` column finds their positions, then only those rows are read."""
    from ..io.batches import iter_batches

    if not ids:
        return {}
    wanted = pa.array(sorted(ids), pa.string())
    positions: dict[str, int] = {}
    start = 0
    for table in iter_batches(path, BATCH_ROWS, fmt=fmt, columns=("id",)):
        if "id" not in table.column_names:
            return {}
        hits = np.flatnonzero(pc.is_in(table.column("id"), value_set=wanted).fill_null(False).to_numpy(zero_copy_only=False))
        if len(hits):
            for pos, rid in zip(hits.tolist(), table.column("id").take(pa.array(hits)).to_pylist()):
                positions.setdefault(rid, start + pos)
        start += len(table)
        if len(positions) == len(ids):
            break
    rows = _take(path, fmt, sorted(positions.values()), ("id", "instruction", "context", "response", "prompt", "chosen", "meta"))
    found: dict[str, dict[str, str]] = {}
    for row in rows:
        meta = row.get("meta")
        try:
            meta = orjson.loads(meta) if isinstance(meta, str) else (meta or {})
        except orjson.JSONDecodeError:
            meta = {}
        where = public_name(str(meta.get("file") or "")) if isinstance(meta, dict) else ""
        if isinstance(meta, dict) and meta.get("line") is not None:
            where += f":{meta['line']}"
        found[row["id"]] = {
            "instruction": cut(_text(row.get("instruction", row.get("prompt"))), TEXT_CHARS),
            "context": cut(_text(row.get("context")), TEXT_CHARS),
            "response": cut(_text(row.get("response", row.get("chosen"))), TEXT_CHARS),
            "where": where,
        }
    return found


def _take(path: Path, fmt: str, positions: list[int], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """The rows at ``positions`` (sorted) of an output; a parquet file reads only their row groups."""
    from ..io.batches import iter_batches

    if not positions:
        return []
    out: list[dict[str, Any]] = []
    if fmt == "parquet" and Path(path).is_file():
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        names = [c for c in columns if c in pf.schema_arrow.names]
        start = 0
        todo = list(positions)
        for rg in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(rg).num_rows
            here = [p - start for p in todo if start <= p < start + n]
            if here:
                out.extend(pf.read_row_group(rg, columns=names).take(pa.array(here)).to_pylist())
            start += n
        return out
    start = 0
    for table in iter_batches(path, BATCH_ROWS, fmt=fmt, columns=columns):
        here = [p - start for p in positions if start <= p < start + len(table)]
        if here:
            out.extend(table.take(pa.array(here)).to_pylist())
        start += len(table)
    return out


__all__ = ["Lengths", "OutputStats", "kept_rows", "output_stats", "rejects_stats"]
