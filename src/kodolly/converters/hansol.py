"""Hansol Deco season 2 (도배 하자 질의응답): ``train.csv`` = ``id, 질문_1, 질문_2, category, 답변_1..답변_5``.

Each CSV row holds two paraphrases of one question and up to five reference answers
(FORMATS.md "Hansol Deco"). Options:

- ``answers = "all"`` (default): one row per question x non-empty answer (2 x 5 = 10 rows for a full
  row), ids ``<id>:<q>.<a>`` with the column numbers (``TRAIN_000:2.3`` = 질문_2 with 답변_3);
  ``"first"``: each question with the first non-empty answer only.
- ``join_pairs = N`` (default 0): N more rows, each joining two *different* training rows into one
  two-part question, as the test set asks (``test.csv`` questions can ask two things at once).
  How pairs are chosen: with ``random.Random(seed)`` (option ``seed``, default 0), N distinct
  ordered pairs (a, b), a != b, are drawn without replacement from all pairs of CSV rows that have a
  question and an answer (fewer when there are not that many); for each pair one of a's two
  questions and one of b's are drawn with the same generator. instruction = ``qa + " " + qb``,
  response = a's first answer + ``" "`` + b's first answer, id ``join:<id_a>+<id_b>``, domain the
  common category (``"cat_a, cat_b"`` when they differ), ``meta["joined"] = [id_a, id_b]``,
  location that of row a. Same input and seed -> same rows. The rows are made by reading the
  input twice more (``Converter.combine``), so the input is still cut into shards and nothing of it
  is kept but the drawn pairs.

``domain`` is the row's ``category`` (a defect type, not a Dolly category); the Dolly category is
``open_qa``. A row with no answer at all (``test.csv``: ``id, 질문``; ``inspect`` names ``hansol`` for
it, but not for a file that has a ``답변`` column) is rejected ``no_answer``; an
empty question cell is rejected ``missing_field:질문_N`` (one reject for that question).
UTF-8, UTF-8 with BOM and cp949 files are told apart by the reader.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from ..errors import ConfigError
from ..io.readers import Location
from ..rows import make_row
from . import Context, Converter, Reject

QUESTION_COLUMNS = ("질문_1", "질문_2")
ANSWER_COLUMNS = tuple(f"답변_{n}" for n in range(1, 6))
ANSWER_MODES = ("all", "first")


@dataclass(frozen=True, slots=True)
class _Kept:
    """What ``join_pairs`` needs of one CSV row."""

    id: str
    questions: tuple[str, ...]
    answer: str
    domain: str
    loc: Location


def _cell(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value)


def _options(ctx: Context) -> tuple[str, int]:
    mode = ctx.options.get("answers", "all")
    if mode not in ANSWER_MODES:
        raise ConfigError(f"hansol: option answers={mode!r}; use one of {', '.join(ANSWER_MODES)}")
    pairs = ctx.options.get("join_pairs", 0)
    if isinstance(pairs, bool) or not isinstance(pairs, int) or pairs < 0:
        raise ConfigError(f"hansol: option join_pairs={pairs!r}; use a whole number >= 0")
    return mode, pairs


def _answers(record: dict[str, Any], loc: Location, ctx: Context, mode: str) -> tuple[str, list[tuple[int, str]], str]:
    """The row's id, its non-empty answers ``(column number, text)`` as ``mode`` keeps them, its domain."""
    rid = _cell(record, "id") or ctx.derived_id(loc)
    answers = [(n, text) for n, col in enumerate(ANSWER_COLUMNS, 1) if (text := _cell(record, col))]
    return rid, answers[:1] if mode == "first" else answers, _cell(record, "category")


def convert(record: Any, loc: Location, ctx: Context) -> Iterator[dict[str, Any] | Reject]:
    mode, _pairs = _options(ctx)
    if not isinstance(record, dict):
        yield Reject("bad_type:record", f"expected a CSV row, got {type(record).__name__}")
        return
    rid, answers, domain = _answers(record, loc, ctx, mode)
    if not answers:
        yield Reject("no_answer", "no 답변_1..답변_5 (a test.csv row?)")
        return
    for qn, col in enumerate(QUESTION_COLUMNS, 1):
        question = _cell(record, col)
        if not question:
            yield Reject(f"missing_field:{col}", part=str(qn))
            continue
        for an, answer in answers:
            yield make_row(
                instruction=question,
                response=answer,
                category="open_qa",
                source=ctx.source,
                id=f"{rid}:{qn}.{an}",
                domain=domain,
                license=ctx.license,
                meta={"question": qn, "answer": an},
            )


def _kept(records: Iterable[tuple[Any, Location]], ctx: Context) -> Iterator[_Kept]:
    """What ``join_pairs`` needs of each CSV row that gives rows (a question and an answer), in order."""
    for record, loc in records:
        if not isinstance(record, dict):  # BadRecord, or a reject of convert
            continue
        rid, answers, domain = _answers(record, loc, ctx, "all")
        questions = tuple(q for col in QUESTION_COLUMNS if (q := _cell(record, col)))
        if answers and questions:
            yield _Kept(rid, questions, answers[0][1], domain, loc)


def combine(ctx: Context, records: Callable[[], Iterator[tuple[Any, Location]]]) -> Iterator[tuple[dict[str, Any], Location]]:
    """The ``join_pairs`` rows (see the module docstring), from two reads of the records: one counts
    the rows that can be joined, the other keeps the ones the drawn pairs name (memory: the pairs)."""
    _mode, pairs = _options(ctx)
    if not pairs:
        return
    n = sum(1 for _ in _kept(records(), ctx))
    if n < 2:
        return
    rng = random.Random(ctx.options.get("seed", 0))
    drawn = []
    for code in rng.sample(range(n * (n - 1)), min(pairs, n * (n - 1))):
        i, j = divmod(code, n - 1)
        drawn.append((i, j + 1 if j >= i else j))
    wanted = {k for pair in drawn for k in pair}
    kept = {k: row for k, row in enumerate(_kept(records(), ctx)) if k in wanted}
    for i, j in drawn:
        a, b = kept[i], kept[j]
        qa, qb = rng.choice(a.questions), rng.choice(b.questions)
        row = make_row(
            instruction=f"{qa} {qb}",
            response=f"{a.answer} {b.answer}",
            category="open_qa",
            source=ctx.source,
            id=f"join:{a.id}+{b.id}",
            domain=a.domain if a.domain == b.domain else f"{a.domain}, {b.domain}",
            license=ctx.license,
            meta={"joined": [a.id, b.id]},
        )
        yield row, a.loc


def detect(record: Any) -> float:
    if not isinstance(record, dict):
        return 0.0
    if "질문_1" in record and "답변_1" in record:
        return 0.9
    # test.csv (``id, 질문``) or a train file cut to its questions: still Hansol's, rejected no_answer
    if "id" in record and ("질문_1" in record or "질문" in record) and not any(col in record for col in ("답변", *ANSWER_COLUMNS)):
        return 0.6
    return 0.0


CONVERTER = Converter(
    name="hansol",
    description="Hansol Deco CSV (id, 질문_1, 질문_2, category, 답변_1..5): questions x answers, optional joined pairs",
    convert=convert,
    license="",
    detect=detect,
    options={"license": "", "answers": "all", "join_pairs": 0, "seed": 0},
    combine=combine,
)
