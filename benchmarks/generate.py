"""Generate realistic synthetic Korean instruction data at any size, with a fixed seed.

Shapes: Alpaca JSONL (``alpaca-jsonl``), Alpaca JSON array (``alpaca-json``), Dolly JSONL
(``dolly-jsonl``, the same texts with Dolly's keys and categories), ShareGPT / KoVicuna multi-turn
as JSONL (``sharegpt-jsonl``) or one JSON array (``sharegpt-json``), KorQuAD 1.0 JSON (``korquad1``,
one ASCII line like the real files), KorQuAD 2.1 HTML pages (``korquad2``: Wikipedia-like pages of
50-200 KB with infobox and data tables, nested lists, edit links, ``raw_html``; ``rows`` questions,
about 2.4 a page; built by :mod:`benchmarks.gen_korquad`), AI Hub 71748 label zips (``aihub-zip``:
SFT and RM envelopes under cp949 member names without the UTF-8 flag, the zip split into
``.zip.part0``/``.part1`` as AI Hub ships the big ones; ``rows`` records) and Hansol Deco
``train.csv`` (``hansol-csv``: ``rows`` CSV rows, each two questions x up to five answers).

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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks.*, fixtures.* when run as a script

SHAPES = ("alpaca-jsonl", "alpaca-json", "dolly-jsonl", "sharegpt-jsonl", "sharegpt-json", "korquad1", "korquad2",
          "aihub-zip", "hansol-csv")
# pages of 50-200 KB hold about 2.4 questions each (benchmarks/gen_korquad.py)
KORQUAD2_QUESTIONS_PER_PAGE = 2.4

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
        elif shape == "sharegpt-json":
            fh.write(b"[\n")
            for n, rec in enumerate(sharegpt_records(rows, seed)):
                fh.write((b",\n" if n else b"") + orjson.dumps(rec, option=orjson.OPT_INDENT_2))
            fh.write(b"\n]\n")
        elif shape == "hansol-csv":
            import csv
            import io

            text = io.StringIO()
            writer = csv.writer(text)
            writer.writerow(["id", "질문_1", "질문_2", "category", "답변_1", "답변_2", "답변_3", "답변_4", "답변_5"])
            rng = random.Random(seed)
            pool = TextPool(rng)
            for n in range(rows):
                answers = [pool.text(60, 400) for _ in range(rng.randint(1, 5))]
                writer.writerow([f"TRAIN_{n:06d}", pool.text(20, 80) + "?", pool.text(20, 80) + "?",
                                 rng.choice(("마감하자", "누수", "곰팡이", "도장하자")), *answers, *[""] * (5 - len(answers))])
            fh.write(text.getvalue().encode("utf-8"))
        elif shape in ("korquad2", "aihub-zip"):
            pass  # written below (other writers)
        else:
            raise SystemExit(f"unknown shape {shape!r} (shapes: {', '.join(SHAPES)})")
    if shape == "korquad2":
        from benchmarks.gen_korquad import write_korquad2

        write_korquad2(tmp, max(1, round(rows / KORQUAD2_QUESTIONS_PER_PAGE)), seed)
    elif shape == "aihub-zip":
        write_aihub(tmp, rows, seed)
        parts = _split(tmp, out)
        tmp.unlink()
        return parts[0]
    tmp.replace(out)
    return out


def aihub_records(rows: int, seed: int):
    """AI Hub 71748 label records: SFT (question, answer) and RM (five ranked answers), 2:1."""
    rng = random.Random(seed)
    pool = TextPool(rng)
    middles = ("사회", "자연", "인문", "공학", "보건", "예체능")
    for n in range(rows):
        rec = {"data_id": f"{n:08x}-4c1e-9b1a-{seed:012d}", "data_category": {"main": rng.choice(("문어체", "구어체")), "middle": rng.choice(middles)},
               "question_type": "설명형", "question_count": 1, "question": pool.text(20, 120) + "?"}
        if n % 3 == 2:
            for k, rank in enumerate(rng.sample(range(1, 6), 5), 1):
                rec[f"answer{k:02d}"] = {"answer_count": 1, "ranking": rank, "contents": pool.text(50, 600)}
        else:
            rec["answer"] = {"answer_count": 1, "contents": pool.text(80, 1200, newlines=True)}
        yield rec


def write_aihub(path: Path, rows: int, seed: int, per_member: int = 100_000) -> None:
    """A zip of label members of ``per_member`` records (SFT and RM mixed), cp949 names."""
    import zipfile

    from fixtures.aihub.make_fixtures import DATE, Cp949ZipInfo, envelope

    records = aihub_records(rows, seed)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        left, part = rows, 0
        while left > 0:
            batch = [next(records) for _ in range(min(per_member, left))]
            left -= len(batch)
            part += 1
            info = Cp949ZipInfo(f"02.라벨링데이터/SFT_RM_라벨_{part:03d}.json", DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, orjson.dumps(envelope(batch)))


def _split(path: Path, out: Path) -> list[Path]:
    """``path`` cut in two halves ``out.part0`` / ``out.part1`` (AI Hub's split zips)."""
    data = path.read_bytes()
    half = len(data) // 2
    parts = [out.with_name(out.name + ".part0"), out.with_name(out.name + ".part1")]
    parts[0].write_bytes(data[:half])
    parts[1].write_bytes(data[half:])
    return parts


def default_path(shape: str, rows: int) -> Path:
    suffix = {"aihub-zip": ".zip", "hansol-csv": ".csv"}.get(shape, ".jsonl" if shape.endswith("jsonl") else ".json")
    return Path(__file__).resolve().parent / "data" / f"{shape}-{rows}{suffix}"


def ensure(shape: str, rows: int, seed: int = 42) -> Path:
    """The generated file for (shape, rows), generated once and reused (a split zip: its part0)."""
    path = default_path(shape, rows) if seed == 42 else default_path(shape, rows).with_suffix(f".s{seed}" + default_path(shape, rows).suffix)
    if shape == "aihub-zip":
        part0 = path.with_name(path.name + ".part0")
        return part0 if part0.exists() else generate(shape, rows, path, seed)
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
    out = generate(args.shape, args.rows, out, args.seed)
    print(f"{out}: {args.rows} rows, {out.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
