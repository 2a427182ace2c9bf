"""Generate realistic synthetic Korean instruction data at any size, with a fixed seed.

Shapes: Alpaca JSONL (``alpaca-jsonl``), Alpaca JSON array (``alpaca-json``), Dolly JSONL
(``dolly-jsonl``, the same texts with Dolly's keys and categories), ShareGPT JSONL
(``sharegpt-jsonl``) and KorQuAD 1.0 JSON (``korquad1``, one ASCII line like the real files).

Text is Hangul mixed with English words and digits (about two thirds of the letters Hangul),
built from pools of pre-made words and sentences so that a million rows take seconds, not minutes.
Alpaca rows: instruction 40-200 characters; input empty about 60% of the time, else 50-500;
output 100-1500 characters with newlines. About 5% of the records are exact copies of an earlier
record and about 2% are variants of an earlier record that differ only in whitespace (doubled
spaces, trailing spaces, CRLF) or in Unicode form (NFD Hangul): after kodolly's normalisation they
are duplicates too. About 0.2% have a blank output (rejected as empty).

    python benchmarks/generate.py --rows 1000000 --shape alpaca-jsonl -o benchmarks/data/alpaca-1000000.jsonl
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import unicodedata
from pathlib import Path

import orjson

SHAPES = ("alpaca-jsonl", "alpaca-json", "dolly-jsonl", "sharegpt-jsonl", "korquad1")

_KO_WORDS = (
    "한국어 데이터 모델 학습 질문 답변 설명 문장 예시 경우 방법 결과 사용자 정보 시스템 문제 해결 과정 이유 "
    "서울 부산 대한민국 역사 문화 경제 사회 과학 기술 교육 학생 선생님 회사 시장 가격 정부 정책 환경 기후 "
    "건강 음식 요리 김치 여행 계획 일정 시간 오늘 내일 어제 주말 아침 저녁 가족 친구 사람 마음 생각 "
    "중요한 다양한 새로운 간단한 복잡한 효과적인 일반적으로 특히 그러나 따라서 또한 그리고 하지만 예를 들어 "
    "작성해 주세요 알려 주세요 설명하세요 요약하세요 비교하세요 분석합니다 제공합니다 있습니다 없습니다 "
    "합니다 됩니다 입니다 것입니다 수 있습니다 필요합니다 중요합니다 가능합니다 이해하기 쉽게 "
    "프로그램 코드 함수 변수 데이터베이스 인공지능 언어 번역 문서 보고서 이메일 편지 시 소설 노래 "
    "장점 단점 특징 차이점 원인 영향 방안 전략 목표 성과 품질 안전 위험 관리 운영 개발 연구 분석"
).split()
_EN_WORDS = (
    "AI data model Python API GPU CPU server cloud Excel PDF JSON SQL Korea Seoul Samsung "
    "the and of for with machine learning deep network training test version update system"
).split()
_ENDINGS = (".", ".", ".", "?", "!", "다.", "요.", "니다.")
_INSTR_TAILS = ("에 대해 설명해 주세요.", "을 요약해 주세요.", "의 장단점은 무엇인가요?", "를 작성하세요.",
                " 방법을 알려 주세요.", "에 대한 글을 써 주세요.", "을 비교해 주세요.")


class TextPool:
    """Pre-made sentences; texts are built by sampling them, which keeps generation fast."""

    def __init__(self, rng: random.Random, n_sentences: int = 6000) -> None:
        self.rng = rng
        self.sentences = [self._sentence() for _ in range(n_sentences)]

    def _word(self) -> str:
        r = self.rng.random()
        if r < 0.80:
            return self.rng.choice(_KO_WORDS)
        if r < 0.93:
            return self.rng.choice(_EN_WORDS)
        return str(self.rng.randint(0, 99999)) if r < 0.97 else f"{self.rng.randint(1, 2025)}년"

    def _sentence(self) -> str:
        words = [self._word() for _ in range(self.rng.randint(3, 14))]
        return " ".join(words) + self.rng.choice(_ENDINGS)

    def text(self, lo: int, hi: int, *, newlines: bool = False) -> str:
        """A text of lo..hi characters (cut at hi), paragraphs separated by newlines when asked."""
        rng = self.rng
        target = rng.randint(lo, hi)
        choice = rng.choice
        sentences = self.sentences
        parts: list[str] = []
        size = 0
        while size < target:
            s = choice(sentences)
            if parts:
                sep = ("\n\n" if rng.random() < 0.3 else "\n") if newlines and rng.random() < 0.25 else " "
                parts.append(sep)
                size += len(sep)
            parts.append(s)
            size += len(s)
        text = "".join(parts)
        if len(text) > hi:
            text = text[:hi].rstrip()
        return text


def _variant(rng: random.Random, record: dict[str, str]) -> dict[str, str]:
    """The same record in another whitespace / Unicode form: a duplicate once normalised."""
    out = dict(record)
    kind = rng.randrange(4)
    key = rng.choice(("instruction", "output"))
    text = out[key]
    if kind == 0:
        out[key] = unicodedata.normalize("NFD", text)
    elif kind == 1:
        out[key] = text.replace(" ", "  ", 3)
    elif kind == 2:
        out[key] = "  " + text.replace("\n", "  \n") + " \n"
    else:
        out[key] = text.replace("\n", "\r\n") if "\n" in text else text + "\r\n"
    return out


def alpaca_records(rows: int, seed: int):
    """Yield ``rows`` Alpaca records ``{instruction, input, output}``."""
    rng = random.Random(seed)
    pool = TextPool(rng)
    recent: list[dict[str, str]] = []
    for n in range(rows):
        r = rng.random()
        if recent and r < 0.05:
            rec = rng.choice(recent)
        elif recent and r < 0.07:
            rec = _variant(rng, rng.choice(recent))
        else:
            instruction = pool.text(30, 190) + rng.choice(_INSTR_TAILS)
            instruction = instruction[:200]
            context = "" if rng.random() < 0.6 else pool.text(50, 500)
            output = pool.text(100, 1500, newlines=True)
            if rng.random() < 0.002:
                output = rng.choice(("", "   ", "\n"))
            rec = {"instruction": instruction, "input": context, "output": output}
            if len(recent) < 50000:
                recent.append(rec)
            else:
                recent[rng.randrange(50000)] = rec
        yield rec


def sharegpt_records(rows: int, seed: int):
    """Yield ShareGPT conversations with about ``rows`` human/gpt pairs in all (1-3 pairs each)."""
    rng = random.Random(seed)
    pool = TextPool(rng)
    made = 0
    n = 0
    while made < rows:
        pairs = min(rng.choice((1, 1, 2, 3)), rows - made)
        turns = []
        for _ in range(pairs):
            turns.append({"from": "human", "value": pool.text(40, 300)})
            turns.append({"from": "gpt", "value": pool.text(100, 1500, newlines=True).replace("\n", "\r\n")})
        yield {"id": f"conv{n:08d}_0", "conversations": turns}
        made += pairs
        n += 1


def korquad_document(rows: int, seed: int) -> dict:
    """A KorQuAD 1.0 document with ``rows`` questions whose answers are at their offsets."""
    rng = random.Random(seed)
    pool = TextPool(rng)
    data = []
    made = 0
    n = 0
    while made < rows:
        paragraphs = []
        for _ in range(rng.randint(1, 4)):
            context = pool.text(300, 1200)
            qas = []
            for _ in range(min(rng.randint(1, 5), rows - made)):
                start = rng.randrange(0, max(1, len(context) - 30))
                answer = context[start:start + rng.randint(2, 25)]
                qas.append({"answers": [{"text": answer, "answer_start": start}],
                            "id": f"{n:06d}-{made}", "question": pool.text(20, 80) + "?"})
                made += 1
            paragraphs.append({"qas": qas, "context": context})
            if made >= rows:
                break
        data.append({"title": f"문서_{n}", "paragraphs": paragraphs})
        n += 1
    return {"version": "KorQuAD_v1.0_train", "data": data}


def generate(shape: str, rows: int, out: Path, seed: int = 42) -> Path:
    """Write ``rows`` rows of ``shape`` to ``out`` (skipped when ``out`` exists and is newer than this script)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    dumps = orjson.dumps
    with open(tmp, "wb") as fh:
        if shape == "alpaca-jsonl":
            buf: list[bytes] = []
            for rec in alpaca_records(rows, seed):
                buf.append(dumps(rec))
                if len(buf) >= 10000:
                    fh.write(b"\n".join(buf) + b"\n")
                    buf.clear()
            if buf:
                fh.write(b"\n".join(buf) + b"\n")
        elif shape == "alpaca-json":
            fh.write(b"[\n")
            first = True
            for rec in alpaca_records(rows, seed):
                fh.write((b"" if first else b",\n") + dumps(rec))
                first = False
            fh.write(b"\n]\n")
        elif shape == "dolly-jsonl":
            categories = ("open_qa", "closed_qa", "general_qa", "brainstorming", "summarization", "creative_writing")
            for n, rec in enumerate(alpaca_records(rows, seed)):
                fh.write(dumps({"instruction": rec["instruction"], "context": rec["input"], "response": rec["output"],
                                "category": categories[n % len(categories)]}) + b"\n")
        elif shape == "sharegpt-jsonl":
            for rec in sharegpt_records(rows, seed):
                fh.write(dumps(rec) + b"\n")
        elif shape == "korquad1":
            import json

            # The real files are one line of ASCII with every Hangul character \u-escaped.
            fh.write(json.dumps(korquad_document(rows, seed), ensure_ascii=True, separators=(",", ":")).encode())
        else:
            raise SystemExit(f"unknown shape {shape!r} (shapes: {', '.join(SHAPES)})")
    tmp.replace(out)
    return out


def default_path(shape: str, rows: int) -> Path:
    suffix = ".jsonl" if shape.endswith("jsonl") else ".json"
    return Path(__file__).resolve().parent / "data" / f"{shape}-{rows}{suffix}"


def ensure(shape: str, rows: int, seed: int = 42) -> Path:
    """The generated file for (shape, rows), generated once and reused."""
    path = default_path(shape, rows) if seed == 42 else default_path(shape, rows).with_suffix(f".s{seed}" + default_path(shape, rows).suffix)
    if not path.exists():
        generate(shape, rows, path, seed)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shape", choices=SHAPES, default="alpaca-jsonl")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("-o", "--output", type=Path, help="default: benchmarks/data/<shape>-<rows>.<ext>")
    args = parser.parse_args(argv)
    out = args.output or default_path(args.shape, args.rows)
    t0 = time.perf_counter()
    generate(args.shape, args.rows, out, args.seed)
    print(f"{out}: {args.rows} rows, {out.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
