"""Exact deduplication: xxh3-128 over the normalised key fields; the first occurrence is kept.

The key is the row's key fields (default ``instruction``, ``context``, ``response``) as the
pipeline normalised them (NFC, invisible characters removed, whitespace tidied), joined with the
unit separator ``\\x1f`` — a character normalisation never leaves in text — so ``("ab", "c")``
and ``("a", "bc")`` get different keys. A later row with a key already seen is dropped with the
reason ``duplicate_of:<id of the first row>``.

Why 128 bits: the state maps a 16-byte digest to the first row's id. With 64 bits the chance of at
least one collision (a distinct row silently dropped as a "duplicate") is about 3% at a billion
rows; with 128 bits it is nil at any size kodolly will meet. The state is a :class:`SeenKeys`:
sorted numpy runs of the digests and the ids as UTF-8 in a few buffers, about 45 bytes per
distinct row plus the id's length (a dict of ``bytes -> str`` took ~150-170 bytes a row: 1 GB at
the six million rows of a million-row Hansol CSV).

The state lives in the filter object, so one filter used for several inputs and sources of a run
dedups across all of them; the order of inputs and records decides which copy is first, so the
same inputs in the same order give the same output.

Runs through the corridor (:mod:`kodolly.corridor`): :meth:`DedupFilter.prepare` (rows) and
:meth:`DedupFilter.prepare_table` (an Arrow table) compute ``(digest, id)`` per row — pure, so they
run in the worker processes — and :meth:`DedupFilter.decide` looks the digests up in input order in
the main process. ``apply(rows)`` is ``decide(prepare(rows))``. A pickled filter (as sent to a
worker) carries no state: workers only prepare.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Iterable, Sequence

import numpy as np
import xxhash

from ..errors import ConfigError

KEY_FIELDS = ("instruction", "context", "response", "category", "domain")
DEFAULT_KEY = ("instruction", "context", "response")
SEPARATOR = "\x1f"


def parse_key(key: str | Iterable[str] | None) -> tuple[str, ...]:
    if key is None:
        return DEFAULT_KEY
    parts = key.split(",") if isinstance(key, str) else [p for k in key for p in str(k).split(",")]
    fields: list[str] = []
    for part in parts:
        name = part.strip()
        if not name:
            continue
        if name not in KEY_FIELDS:
            raise ConfigError(f"dedup key: unknown field {name!r} (fields: {', '.join(KEY_FIELDS)})")
        if name not in fields:
            fields.append(name)
    if not fields:
        raise ConfigError("dedup key: name at least one field")
    return tuple(fields)


class SeenKeys:
    """The 16-byte keys seen so far, each with the id of its first row, compactly: the keys as two
    uint64 halves in runs sorted by the first half (a new run per batch, merged into the one before
    while it is not smaller than half of it: O(log n) runs), the ids UTF-8 encoded per batch."""

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (hi, lo, ref), sorted by hi
        self.ids: list[tuple[bytes, np.ndarray]] = []  # per batch: the ids joined, and where each ends
        self.starts: list[int] = []  # the ref of each batch's first id
        self.count = 0  # ids stored

    def __len__(self) -> int:
        return sum(len(run[0]) for run in self.runs)

    def id_of(self, ref: int) -> str:
        b = bisect_right(self.starts, ref) - 1
        data, ends = self.ids[b]
        k = ref - self.starts[b]
        return data[(int(ends[k - 1]) if k else 0) : int(ends[k])].decode("utf-8", "surrogatepass")

    def find(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """The ref of each key (-1: not seen)."""
        refs = np.full(len(hi), -1, dtype=np.int64)
        for rhi, rlo, rref in self.runs:
            pos = np.searchsorted(rhi, hi)
            while True:  # keys whose first half is in the run; more than one step only for equal first halves
                live = np.flatnonzero((refs < 0) & (pos < len(rhi)))
                live = live[rhi[pos[live]] == hi[live]]
                if not len(live):
                    break
                hit = live[rlo[pos[live]] == lo[live]]
                refs[hit] = rref[pos[hit]]
                pos[live] += 1
        return refs

    def add(self, ids: Sequence[str], hi: np.ndarray, lo: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Add the new keys (none seen, no two equal, sorted by ``hi``) of the rows ``rows`` of a batch
        whose ids are ``ids`` (all kept: a copy's id costs its bytes, a lookup less); their refs."""
        data = "".join(ids).encode("utf-8", "surrogatepass")
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        if len(data) != int(lengths.sum()):  # not all ASCII: the lengths in bytes
            lengths = np.fromiter((len(rid.encode("utf-8", "surrogatepass")) for rid in ids), dtype=np.int64, count=len(ids))
        self.ids.append((data, np.cumsum(lengths)))
        self.starts.append(self.count)
        refs = rows.astype(np.int64) + self.count
        self.count += len(ids)
        self.runs.append((hi, lo, refs))
        while len(self.runs) > 1 and 2 * len(self.runs[-1][0]) >= len(self.runs[-2][0]):
            small, big = self.runs.pop(), self.runs.pop()
            self.runs.append(_merged(big, small))
        return refs


def _merged(big: tuple[np.ndarray, ...], small: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Two runs sorted by their first array, as one (a linear merge)."""
    at = np.searchsorted(big[0], small[0]) + np.arange(len(small[0]))
    into = np.ones(len(big[0]) + len(small[0]), dtype=bool)
    into[at] = False
    out = []
    for b, s in zip(big, small):
        merged = np.empty(len(into), dtype=b.dtype)
        merged[at] = s
        merged[into] = b
        out.append(merged)
    return tuple(out)


class DedupFilter:
    name = "dedup"
    # prepared value per row = (key digest, id), the first row of a key wins: a cluster can decide it by a
    # hash shuffle on the key (kodolly.corridor.keyed; the ray engine)
    earliest_per_key = True

    def __init__(self, key: str | Iterable[str] | None = None) -> None:
        self.key = parse_key(key)
        self._seen = SeenKeys()

    def settings(self) -> dict[str, Any]:
        return {"key": list(self.key), "hash": "xxh3_128", "separator": "\\x1f", "keep": "first"}

    @property
    def distinct(self) -> int:
        """How many distinct keys have been seen."""
        return len(self._seen)

    def __getstate__(self) -> dict[str, Any]:  # workers only prepare: they never need the state
        return {"key": self.key, "_seen": SeenKeys()}

    def prepare(self, rows: list[dict[str, Any]]) -> list[tuple[bytes, str]]:
        """``(xxh3-128 of the key, id)`` per row; pure, so it may run in a worker process."""
        digest = xxhash.xxh3_128_digest
        if self.key == DEFAULT_KEY:
            return [
                (digest(f"{r['instruction']}\x1f{r['context']}\x1f{r['response']}".encode("utf-8", "surrogatepass")), r["id"])
                for r in rows
            ]
        key = self.key
        return [(digest(SEPARATOR.join([r[name] for name in key]).encode("utf-8", "surrogatepass")), r["id"]) for r in rows]

    def prepare_table(self, table: Any) -> list[tuple[bytes, str]]:
        """:meth:`prepare` for an Arrow table of rows (the key columns joined by Arrow, hashed from its buffer)."""
        import pyarrow.compute as pc

        columns = [table.column(name) for name in self.key]
        joined = (pc.binary_join_element_wise(*columns, SEPARATOR) if len(columns) > 1 else columns[0]).combine_chunks()
        if joined.null_count:  # not in rows the pipeline makes (the key fields are never null)
            raise ValueError("dedup: a key field is null")
        buffers = joined.buffers()
        offsets = np.frombuffer(buffers[1], dtype=np.int32)[joined.offset : joined.offset + len(joined) + 1].tolist()
        data = memoryview(buffers[2]) if buffers[2] is not None else memoryview(b"")
        digest = xxhash.xxh3_128_digest
        ids = table.column("id").to_pylist()
        return [(digest(data[offsets[i] : offsets[i + 1]]), ids[i]) for i in range(len(joined))]

    def decide(self, prepared: list[tuple[bytes, str]]) -> list[str | None]:
        """Look the prepared keys up in order: the first of a key is kept, later ones are duplicates."""
        n = len(prepared)
        out: list[str | None] = [None] * n
        if not n:
            return out
        ids = [rid for _h, rid in prepared]
        keys = np.frombuffer(b"".join([h for h, _rid in prepared]), dtype=np.uint64).reshape(n, 2)
        hi, lo = keys[:, 0], keys[:, 1]
        order = np.argsort(hi, kind="stable")  # the rows of one key in input order
        shi, slo = hi[order], lo[order]
        if ((shi[1:] == shi[:-1]) & (slo[1:] != slo[:-1])).any():  # two keys share a first half: sort by both
            order = np.lexsort((lo, hi))
            shi, slo = hi[order], lo[order]
        starts = np.ones(n, dtype=bool)
        starts[1:] = (shi[1:] != shi[:-1]) | (slo[1:] != slo[:-1])
        firsts = order[starts]  # the first row of each distinct key of the batch (sorted by hi)
        group = np.empty(n, dtype=np.int64)
        group[order] = np.cumsum(starts) - 1
        refs = self._seen.find(hi[firsts], lo[firsts])
        new = np.flatnonzero(refs < 0)
        if len(new):
            rows = firsts[new]
            refs[new] = self._seen.add(ids, hi[rows], lo[rows], rows)
        kept = np.zeros(n, dtype=bool)
        kept[firsts[new]] = True
        reasons: dict[int, str] = {}
        for i in np.flatnonzero(~kept).tolist():
            ref = int(refs[group[i]])
            reason = reasons.get(ref)
            if reason is None:
                reason = reasons[ref] = "duplicate_of:" + self._seen.id_of(ref)
            out[i] = reason
        return out

    @staticmethod
    def duplicate_reason(kept_id: str) -> str:
        """The reason of a row dropped as a copy of the kept row ``kept_id`` (as :meth:`decide` gives)."""
        return "duplicate_of:" + kept_id

    def apply(self, rows: list[dict[str, Any]]) -> list[str | None]:
        return self.decide(self.prepare(rows))
