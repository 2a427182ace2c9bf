"""Exact deduplication: xxh3-128 over the normalised key fields; the first occurrence is kept.

The key is the row's key fields (default ``instruction``, ``context``, ``response``) as the
pipeline normalised them (NFC, invisible characters removed, whitespace tidied), joined with the
unit separator ``\\x1f`` — a character normalisation never leaves in text — so ``("ab", "c")``
and ``("a", "bc")`` get different keys. A later row with a key already seen is dropped with the
reason ``duplicate_of:<id of the first row>``.

Why 128 bits: the state is a dict from a 16-byte digest to the first row's id. A 64-bit key would
save about 8 bytes a row, but with 64 bits the chance of at least one collision (a distinct row
silently dropped as a "duplicate") is about 3% at a billion rows; with 128 bits it is nil at any
size kodolly will meet. The id string is shared with the row until the row is written, then the
dict holds the only reference; memory is roughly 150 bytes per distinct row (measured ~150 MiB
for a million distinct rows, see the README section).

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

from typing import Any, Iterable

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


class DedupFilter:
    name = "dedup"
    # prepared value per row = (key digest, id), the first row of a key wins: a cluster can decide it by a
    # hash shuffle on the key (kodolly.corridor.keyed; the ray engine)
    earliest_per_key = True

    def __init__(self, key: str | Iterable[str] | None = None) -> None:
        self.key = parse_key(key)
        self._seen: dict[bytes, str] = {}

    def settings(self) -> dict[str, Any]:
        return {"key": list(self.key), "hash": "xxh3_128", "separator": "\\x1f", "keep": "first"}

    @property
    def distinct(self) -> int:
        """How many distinct keys have been seen."""
        return len(self._seen)

    def __getstate__(self) -> dict[str, Any]:  # workers only prepare: they never need the state
        return {"key": self.key, "_seen": {}}

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
        seen = self._seen
        out: list[str | None] = []
        append = out.append
        for h, rid in prepared:
            first = seen.get(h)
            if first is None:
                seen[h] = rid
                append(None)
            else:
                append("duplicate_of:" + first)
        return out

    @staticmethod
    def duplicate_reason(kept_id: str) -> str:
        """The reason of a row dropped as a copy of the kept row ``kept_id`` (as :meth:`decide` gives)."""
        return "duplicate_of:" + kept_id

    def apply(self, rows: list[dict[str, Any]]) -> list[str | None]:
        return self.decide(self.prepare(rows))
