"""Benchmark-local exact dedup: xxh3-128 over ``instruction \\x1f context \\x1f response``, first kept.

Stands in for the real dedup filter (issue 5) until that lands; it implements the parallel split
(``prepare`` in the workers, ``decide`` in order in the main process, ``prepare_table`` for the
columnar path) described in :mod:`kodolly.parallel`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xxhash


class ExactDedup:
    name = "dedup"

    def __init__(self) -> None:
        self._seen: dict[bytes, str] = {}

    def settings(self) -> dict[str, Any]:
        return {"key": ["instruction", "context", "response"], "hash": "xxh3_128", "keep": "first"}

    def __getstate__(self) -> dict[str, Any]:  # workers only prepare: they never need the state
        return {"_seen": {}}

    def prepare(self, rows: list[dict[str, Any]]) -> list[tuple[bytes, str]]:
        digest = xxhash.xxh3_128_digest
        return [
            (digest(f"{r['instruction']}\x1f{r['context']}\x1f{r['response']}".encode("utf-8", "surrogatepass")), r["id"])
            for r in rows
        ]

    def prepare_table(self, table: Any) -> list[tuple[bytes, str]]:
        import pyarrow.compute as pc

        joined = pc.binary_join_element_wise(
            table.column("instruction"), table.column("context"), table.column("response"), "\x1f"
        ).combine_chunks()
        offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)[joined.offset : joined.offset + len(joined) + 1]
        data = memoryview(joined.buffers()[2]) if joined.buffers()[2] is not None else memoryview(b"")
        digest = xxhash.xxh3_128_digest
        ids = table.column("id").to_pylist()
        return [(digest(data[offsets[i] : offsets[i + 1]]), ids[i]) for i in range(len(joined))]

    def decide(self, prepared: list[tuple[bytes, str]]) -> list[str | None]:
        seen = self._seen
        out: list[str | None] = []
        for key, rid in prepared:
            first = seen.get(key)
            if first is None:
                seen[key] = rid
                out.append(None)
            else:
                out.append("duplicate_of:" + first)
        return out

    def apply(self, rows: list[dict[str, Any]]) -> list[str | None]:
        return self.decide(self.prepare(rows))
