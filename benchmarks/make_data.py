"""Write N synthetic Korean Alpaca rows as JSONL (benchmarks/data/, not committed).

    python benchmarks/make_data.py 1000000

About 5% exact repeats of earlier rows, 2% whitespace variants, 1% in NFD, a score and a domain.
"""

from __future__ import annotations

import random
import sys
import unicodedata
from pathlib import Path

import orjson

SYLLABLES = [chr(c) for c in range(0xAC00, 0xAC00 + 2000, 7)]
DOMAINS = ["사회", "인문", "자연", "공학", "예체능", "보건", "종교", "산업", "기타"]


def words(rnd: random.Random, n: int) -> str:
    return " ".join("".join(rnd.choice(SYLLABLES) for _ in range(rnd.randint(1, 4))) for _ in range(n))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    out = Path(__file__).parent / "data" / f"ko_alpaca_{n}.jsonl"
    out.parent.mkdir(exist_ok=True)
    rnd = random.Random(42)
    recent: list[dict] = []
    with open(out, "wb") as fh:
        for i in range(n):
            r = rnd.random()
            if recent and r < 0.08:
                rec = dict(rnd.choice(recent), id=f"r{i}")
                if r < 0.05:
                    pass  # exact repeat
                elif r < 0.07:
                    rec["instruction"] = "  " + rec["instruction"].replace(" ", "  ", 1) + " "
                else:
                    rec["instruction"] = unicodedata.normalize("NFD", rec["instruction"])
            else:
                rec = {
                    "id": f"r{i}",
                    "instruction": words(rnd, rnd.randint(4, 15)) + "?",
                    "input": "" if rnd.random() < 0.7 else words(rnd, 30),
                    "output": words(rnd, rnd.randint(10, 80)) + " with some English words.",
                    "score": round(rnd.uniform(0, 100), 1),
                    "domain": rnd.choice(DOMAINS),
                }
                recent.append(rec)
                if len(recent) > 5000:
                    recent.pop(rnd.randrange(len(recent)))
            fh.write(orjson.dumps(rec) + b"\n")
    print(out, out.stat().st_size)


if __name__ == "__main__":
    main()
