"""Near-duplicate quality: a generated set with planted near-duplicates and distinct look-alikes, and
the precision and recall of ``NearDupFilter`` against exact Jaccard on the same shingles.

    python benchmarks/near_dup_quality.py                          # 5,000 originals, thresholds 0.7, 0.8, 0.9
    python benchmarks/near_dup_quality.py --originals 2000 --thresholds 0.8

The set (:func:`planted_records`, fixed seed): Korean instruction/response pairs built from nouns
with particles, verbs and connectives; after them, in random later positions, variants of some of
them — ``edit`` (a few words replaced, dropped or inserted), ``sentence`` (one sentence inserted in
the response), ``spacing`` (spaces removed/added, punctuation changed), ``particles`` (은/는, 이/가,
을/를, ... swapped), ``heavy`` (many words edited: similarity spread across the thresholds) — and
``lookalike`` rows (the same instruction and half of the response's sentences, the rest new: similar
in topic, not a near-duplicate). The kinds only describe the set; the truth is exact Jaccard.

Measured (:func:`evaluate`), for a filter run over the rows in input order:
- precision: of the rows dropped as ``near_duplicate_of:<id>``, the share whose exact Jaccard with
  row ``<id>`` is at least the threshold;
- recall: of the rows that have an exact Jaccard of at least the threshold with some earlier *kept*
  row (the rows a perfect filter would drop, given what was kept), the share dropped.
Exact Jaccard of all such pairs is found by an exact prefix-filter join (two sets with Jaccard
``>= t`` share a token among the first ``|x| - ceil(t |x|) + 1`` of each, rarest first).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

_NOUNS = (
    "학교 학생 선생님 친구 가족 회사 직원 고객 시장 가격 정부 정책 환경 기후 건강 음식 요리 김치 여행 계획 "
    "도시 서울 부산 제주도 바다 산 강 날씨 계절 봄 여름 가을 겨울 아침 저녁 주말 시간 사람 마음 생각 "
    "문제 해결 방법 결과 이유 과정 경험 기술 과학 역사 문화 경제 사회 교육 연구 분석 자료 데이터 모델 "
    "프로그램 코드 함수 컴퓨터 인터넷 휴대폰 책 영화 음악 노래 운동 축구 야구 병원 의사 약 은행 돈"
).split()
_VERBS = (
    "합니다 했습니다 있습니다 없습니다 됩니다 보입니다 필요합니다 중요합니다 좋습니다 어렵습니다 "
    "늘어났습니다 줄었습니다 바뀌었습니다 시작됩니다 끝났습니다 만들었습니다 찾았습니다 배웠습니다"
).split()
_ADVERBS = "매우 특히 자주 가끔 점점 함께 먼저 다시 아직 이미 거의 항상 조금 많이".split()
_CONNECT = "그리고 하지만 그래서 또한 따라서 그러나 예를 들어 결국".split()
_PARTICLES = {"은": "는", "는": "은", "이": "가", "가": "이", "을": "를", "를": "을", "에": "에서", "에서": "에", "와": "과", "과": "와", "도": "만", "만": "도"}
_PARTICLE_LIST = tuple(_PARTICLES)
_TAILS = ("에 대해 설명해 주세요.", "을 요약해 주세요.", "의 장단점은 무엇인가요?", " 방법을 알려 주세요.", "에 대한 글을 써 주세요.")
KINDS = ("edit", "sentence", "spacing", "particles", "heavy", "lookalike")


class _Text:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def word(self) -> list[str]:
        r = self.rng.random()
        if r < 0.55:
            return [self.rng.choice(_NOUNS), self.rng.choice(_PARTICLE_LIST)]  # noun + particle (two tokens)
        if r < 0.7:
            return [self.rng.choice(_ADVERBS)]
        if r < 0.8:
            return [self.rng.choice(_CONNECT)]
        if r < 0.85:
            return [str(self.rng.randint(1, 2025))]
        return [self.rng.choice(_NOUNS)]

    def sentence(self) -> list[list[str]]:
        words = [self.word() for _ in range(self.rng.randint(4, 12))]
        return words + [[self.rng.choice(_VERBS) + self.rng.choice(".!?")]]

    def sentences(self, lo: int, hi: int) -> list[list[list[str]]]:
        return [self.sentence() for _ in range(self.rng.randint(lo, hi))]


def _render(sentences: list[list[list[str]]]) -> str:
    return " ".join(" ".join("".join(w) for w in s) for s in sentences)


def _copy(sentences):
    return [[list(w) for w in s] for s in sentences]


def _variant(rng: random.Random, text: _Text, inst, resp, kind: str):
    inst, resp = _copy(inst), _copy(resp)
    words = [(s, i) for s in resp for i in range(len(s) - 1)]
    if kind in ("edit", "heavy"):
        rate = rng.uniform(0.02, 0.08) if kind == "edit" else rng.uniform(0.08, 0.3)
        for s, i in rng.sample(words, max(1, int(rate * len(words)))):
            op = rng.random()
            if op < 0.5:
                s[i] = text.word()
            elif op < 0.75:
                s[i] = []
            else:
                s[i] = s[i] + [" "] + text.word()
    elif kind == "sentence":
        resp.insert(rng.randint(0, len(resp)), text.sentence())
    elif kind == "particles":
        for s, i in words:
            w = s[i]
            if len(w) == 2 and w[1] in _PARTICLES and rng.random() < 0.3:
                w[1] = _PARTICLES[w[1]]
    instruction, response = _render(inst), _render(resp)
    if kind == "spacing":
        response = "".join(ch for ch in response if not (ch == " " and rng.random() < 0.5))
        response = response.replace(".", "。" if rng.random() < 0.5 else ". ").replace("?", " ?")
        instruction = instruction.replace(" ", "  ", 2) + "!"
    return instruction, response


def planted_records(originals: int, seed: int = 14) -> list[dict[str, Any]]:
    """Alpaca records ``{id, instruction, input, output, kind, of}`` (``of``: the original's id)."""
    rng = random.Random(seed)
    text = _Text(rng)
    base = []
    for n in range(originals):
        inst = text.sentences(1, 2)
        inst[-1][-1] = [rng.choice(_NOUNS) + rng.choice(_TAILS)]
        base.append((f"o{n}", inst, text.sentences(3, 14)))
    records: list[tuple[float, dict[str, Any]]] = []
    for n, (rid, inst, resp) in enumerate(base):
        records.append((n, {"id": rid, "instruction": _render(inst), "input": "", "output": _render(resp), "kind": "original", "of": ""}))
        extra = []
        if rng.random() < 0.35:
            extra.append(rng.choice(KINDS[:5]))
            if rng.random() < 0.3:
                extra.append(rng.choice(KINDS[:5]))
        if rng.random() < 0.15:
            extra.append("lookalike")
        for v, kind in enumerate(extra):
            if kind == "lookalike":
                keep = [s for s in resp if rng.random() < 0.5] or resp[:1]
                new_resp = keep + text.sentences(max(1, len(resp) - len(keep)), max(1, len(resp) - len(keep)))
                rng.shuffle(new_resp)
                instruction, response = _render(inst), _render(new_resp)
            else:
                instruction, response = _variant(rng, text, inst, resp, kind)
            position = n + rng.uniform(0.5, originals * 0.2)  # somewhere later
            records.append((position, {"id": f"{rid}.{kind}{v}", "instruction": instruction, "input": "", "output": response, "kind": kind, "of": rid}))
    records.sort(key=lambda r: r[0])
    return [r for _, r in records]


def exact_pairs(sets: list[set[int]], t_min: float) -> dict[tuple[int, int], float]:
    """Every pair ``(later, earlier)`` of row positions with exact Jaccard ``>= t_min``.

    An exact prefix-filter self-join (AllPairs; no pair with Jaccard ``>= t_min`` is missed): rows
    are taken smallest set first, tokens ordered rarest first; a row probes the index with its first
    ``|x| - ceil(t |x|) + 1`` tokens, then is indexed by its first ``|x| - ceil(2t / (1 + t) |x|) + 1``
    (enough against the larger rows still to come); an indexed row smaller than ``t |x|`` is skipped."""
    freq = Counter(tok for s in sets for tok in s)
    index: dict[int, list[int]] = {}
    sizes = [len(s) for s in sets]
    mid = 2 * t_min / (1 + t_min)
    out: dict[tuple[int, int], float] = {}
    for i in sorted(range(len(sets)), key=lambda i: (sizes[i], i)):
        s, n = sets[i], sizes[i]
        if not n:
            continue
        ordered = sorted(s, key=lambda tok: (freq[tok], tok))
        least = t_min * n
        seen: set[int] = set()
        for tok in ordered[: n - math.ceil(t_min * n) + 1]:
            for j in index.get(tok, ()):
                if j in seen or sizes[j] < least:
                    continue
                seen.add(j)
                inter = len(s & sets[j])
                jac = inter / (n + sizes[j] - inter)
                if jac >= t_min:
                    out[(max(i, j), min(i, j))] = jac
        for tok in ordered[: n - math.ceil(mid * n) + 1]:
            index.setdefault(tok, []).append(i)
    return out


def evaluate(records: list[dict[str, Any]], threshold: float, *, sets=None, pairs=None, batch: int = 4096, **options: Any) -> dict[str, Any]:
    """Run ``NearDupFilter(threshold, **options)`` over the records in order; precision and recall
    against exact Jaccard."""
    from kodolly.filters.near_dup import NearDupFilter, shingle_sets
    from kodolly.rows import make_row

    rows = [make_row(instruction=r["instruction"], response=r["output"], source="planted", id=r["id"]) for r in records]
    flt = NearDupFilter(threshold, **options)
    if sets is None:
        sets = shingle_sets([[r[f] for r in rows] for f in flt.fields], flt.shingle)
    if pairs is None:
        pairs = exact_pairs(sets, threshold)
    t0 = time.perf_counter()
    verdicts: list[str | None] = []
    for s in range(0, len(rows), batch):
        verdicts.extend(flt.apply(rows[s : s + batch]))
    seconds = time.perf_counter() - t0
    position = {r["id"]: i for i, r in enumerate(rows)}
    kept = [v is None for v in verdicts]
    dropped = [(i, position[v.split(":", 1)[1]]) for i, v in enumerate(verdicts) if v is not None]
    correct = 0
    for i, j in dropped:
        inter = len(sets[i] & sets[j])
        if inter / (len(sets[i]) + len(sets[j]) - inter) >= threshold:
            correct += 1
    should = {i for (i, j), jac in pairs.items() if jac >= threshold and kept[j]}
    found = sum(1 for i in should if not kept[i])
    missed = sum(1 for i in should if kept[i])
    by_kind = Counter(records[i]["kind"] for i, _ in dropped)
    return {
        "threshold": threshold, "rows": len(rows), "dropped": len(dropped), "correct": correct,
        "precision": correct / len(dropped) if dropped else 1.0,
        "should_drop": found + missed, "missed": missed,
        "recall": found / (found + missed) if found + missed else 1.0,
        "dropped_by_kind": dict(sorted(by_kind.items())), "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--originals", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--thresholds", default="0.7,0.8,0.9")
    parser.add_argument("--num-perm", type=int, help="NearDupFilter num_perm (default: the filter's)")
    parser.add_argument("--check-bits", type=int, help="NearDupFilter check_bits (default: the filter's)")
    args = parser.parse_args(argv)
    options = {k: v for k, v in (("num_perm", args.num_perm), ("check_bits", args.check_bits)) if v is not None}
    from kodolly.filters.near_dup import NearDupFilter, shingle_sets

    thresholds = [float(t) for t in args.thresholds.split(",")]
    records = planted_records(args.originals, args.seed)
    kinds = Counter(r["kind"] for r in records)
    print(f"planted set: {len(records):,} rows ({', '.join(f'{k} {v:,}' for k, v in sorted(kinds.items()))})")
    flt = NearDupFilter(min(thresholds))
    sets = shingle_sets([[r["instruction"] for r in records], [r["output"] for r in records]], flt.shingle)
    t0 = time.perf_counter()
    pairs = exact_pairs(sets, min(thresholds))
    print(f"exact Jaccard: {len(pairs):,} pairs >= {min(thresholds)} ({time.perf_counter() - t0:.1f} s)")
    print(f"filter: {NearDupFilter(thresholds[0], **options).settings()}")
    print(f"{'threshold':>9}{'dropped':>9}{'precision':>11}{'should':>8}{'missed':>8}{'recall':>8}  dropped by kind")
    for t in thresholds:
        r = evaluate(records, t, sets=sets, pairs=pairs, **options)
        print(f"{t:>9}{r['dropped']:>9,}{r['precision']:>11.4f}{r['should_drop']:>8,}{r['missed']:>8,}{r['recall']:>8.4f}  {r['dropped_by_kind']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
