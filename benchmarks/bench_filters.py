"""Per-filter cost and memory on synthetic Korean rows (no files: rows built in memory).

    python benchmarks/bench_filters.py [N]

Prints microseconds per row for each step and the memory the exact-dedup state takes.
"""

from __future__ import annotations

import random
import sys
import time
import tracemalloc

from kodolly.filters import build_filters
from kodolly.filters.dedup import DedupFilter
from kodolly.rows import make_row

SYLLABLES = [chr(c) for c in range(0xAC00, 0xAC00 + 2000, 7)]


def words(rnd: random.Random, n: int) -> str:
    return " ".join("".join(rnd.choice(SYLLABLES) for _ in range(rnd.randint(1, 4))) for _ in range(n))


def make_rows(n: int, seed: int = 0) -> list[dict]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        if i and rnd.random() < 0.05:
            src = rows[rnd.randrange(len(rows))]
            rows.append(dict(src, id=f"row-{i}", meta={}))
            continue
        rows.append(make_row(
            instruction=words(rnd, rnd.randint(4, 15)) + "?", context="" if rnd.random() < 0.7 else words(rnd, 40),
            response=words(rnd, rnd.randint(10, 80)) + " English words too.", source="bench", id=f"row-{i}",
            domain=rnd.choice(["사회", "인문", "예체능", "보건", "종교", "공학"]), score=rnd.uniform(0, 100),
        ))
    return rows


def timed(name: str, flt, rows: list[dict], batch: int = 4096) -> None:
    rows = [dict(r) for r in rows]
    t0 = time.perf_counter()
    for start in range(0, len(rows), batch):
        flt.apply(rows[start : start + batch])
    dt = time.perf_counter() - t0
    print(f"{name:<28}{dt / len(rows) * 1e6:8.2f} us/row")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    rows = make_rows(n)
    settings = {
        "score": {"min": 30}, "category": {"exclude": ["brainstorming"]}, "domain": {"exclude": ["예체능", "종교", "보건"]},
        "content": {"min_chars": {"response": 2}, "max_chars": {"total": 8000}, "min_hangul": {"response": 0.5}},
        "dedup": {}, "split": {"train": 0.9, "validation": 0.05, "test": 0.05},
    }
    for flt in build_filters(settings):
        timed(flt.name, flt, rows)
    timed("content (lfs + echo only)", build_filters({})[0], rows)
    if "--near-dup" in sys.argv:
        from kodolly.filters.near_dup import NearDupFilter

        timed("near_dup 0.8", NearDupFilter(0.8), rows[:20000])
    tracemalloc.start()
    dedup = DedupFilter()
    for start in range(0, len(rows), 4096):
        dedup.apply(rows[start : start + 4096])
    current, _peak = tracemalloc.get_traced_memory()
    print(f"dedup state: {dedup.distinct} distinct keys, {current / 2**20:.1f} MiB traced "
          f"({current / max(dedup.distinct, 1):.0f} B/key; id strings shared with rows are not counted)")


if __name__ == "__main__":
    main()
