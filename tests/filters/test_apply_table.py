"""The filters' parallel protocol gives exactly what ``apply(rows)`` gives (kodolly.corridor relies on it).

Per-row filters: ``apply_table(table)`` == ``apply(rows)`` on varied tables (NFD, jamo, odd
whitespace, LFS pointers, echoes, NaN scores ...). Dedup: ``prepare_table`` == ``prepare`` for every
key and ``apply`` == ``decide(prepare)``. The split step sets the same ``split`` column.
"""

from __future__ import annotations

import copy
import pickle
import random
import unicodedata

import pyarrow as pa
import pytest

from kodolly.filters import ContentFilter, DedupFilter, LabelFilter, ScoreFilter
from kodolly.rows import make_row, rows_to_table
from kodolly.splits import Splitter

LFS = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 12345"
PIECES = [
    "한국어", "질문", "답", "abc", "Q", " ", "  ", "\n", "\t", "\u3000", "\xa0", "\x1c", "\u2028", "\u200a",
    "1", "?", ".", "漢字", "ᄀ", "ᅡ", "ㄱ", "ㅏ", "😀", "é", unicodedata.normalize("NFD", "한"), "\x1f", "x",
]
LABELS = ["예체능", "종교", "보건", "", "open_qa", unicodedata.normalize("NFD", "보건"), "보건 ", "closed_qa"]
SCORES = [None, float("nan"), 0, 30, 30.0, 30.5, 31, -1.0, 100.0, 29.999]


def _text(rnd: random.Random, empty_share: float = 0.05) -> str:
    if rnd.random() < empty_share:
        return ""
    return "".join(rnd.choice(PIECES) for _ in range(rnd.randint(1, 12)))


def _rows(n: int = 1500, seed: int = 11) -> list[dict]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        instruction, context, response = _text(rnd), _text(rnd, 0.5), _text(rnd)
        kind = rnd.random()
        if kind < 0.05:
            response = instruction
        elif kind < 0.10 and instruction:  # the same up to whitespace, or only almost
            response = rnd.choice(["", " ", "\u3000", "\n"]).join(instruction.split()) + rnd.choice(["", "", "."])
        elif kind < 0.12:
            response = LFS if rnd.random() < 0.5 else response
            context = LFS if rnd.random() < 0.5 else context
        rows.append(make_row(
            instruction=instruction, context=context, response=response, source="t", id=f"t:{i % 1400}",
            category=rnd.choice(LABELS), domain=rnd.choice(LABELS), score=rnd.choice(SCORES),
        ))
    for i in range(50, n, 37):  # copies of earlier rows under new ids: duplicates for every dedup key
        rows[i] = dict(rows[i - 40], id=f"copy:{i}", score=rows[i]["score"])
    return rows


FILTERS = [
    lambda: ScoreFilter(30),
    lambda: ScoreFilter(30, keep_unscored=True),
    lambda: ScoreFilter(-5.5),
    lambda: LabelFilter("domain", exclude="예체능,종교,보건"),
    lambda: LabelFilter("category", include=["open_qa", "closed_qa"]),
    lambda: LabelFilter("domain", include="보건,종교", exclude="종교"),
    lambda: ContentFilter(),
    lambda: ContentFilter(lfs_pointers=False, echo=False),
    lambda: ContentFilter(min_chars={"response": 3, "total": 10}, max_chars={"instruction": 20, "total": 40}),
    lambda: ContentFilter(min_chars=2, max_chars={"context": 15}, min_hangul={"response": 0.5, "instruction": 0.3}),
    lambda: ContentFilter(min_hangul={"context": 0.9}, echo=False),
]


@pytest.mark.parametrize("make", FILTERS)
@pytest.mark.parametrize("seed", [1, 2])
def test_apply_table_equals_apply(make, seed):
    rows = _rows(seed=seed)
    table = rows_to_table(rows)
    flt = make()
    expected = flt.apply(copy.deepcopy(rows))
    assert len(set(expected)) > 1  # the data exercises the filter: some rows kept, some dropped
    assert make().apply_table(table) == expected
    assert make().apply_table(table.slice(100, 700)) == expected[100:800]  # an offset slice, as batches are
    pieces = pa.concat_tables([table.slice(0, 333), table.slice(333, 1), table.slice(334)])  # several chunks
    assert make().apply_table(pieces) == expected
    assert flt.stateless


def test_content_table_verdicts_cover_every_reason():
    flt = ContentFilter(min_chars={"response": 3}, max_chars={"total": 40}, min_hangul={"response": 0.5})
    got = set(flt.apply_table(rows_to_table(_rows())))
    assert {"content_empty_instruction", "content_empty_response", "content_lfs_pointer",
            "content_response_equals_instruction", "content_too_short:response", "content_too_long:total",
            "content_hangul_share:response", None} <= got


@pytest.mark.parametrize("key", [None, "instruction", "response,instruction", "instruction,context,response,category,domain"])
def test_dedup_prepare_table_equals_prepare(key):
    rows = _rows()
    table = rows_to_table(rows)
    flt = DedupFilter(key)
    assert flt.prepare_table(table) == flt.prepare(rows)
    assert flt.prepare_table(table.slice(300, 400)) == flt.prepare(rows[300:700])
    expected = DedupFilter(key).apply(rows)
    assert any(v and v.startswith("duplicate_of:") for v in expected)
    assert flt.decide(flt.prepare_table(table)) == expected
    assert flt.distinct == sum(v is None for v in expected)


def test_dedup_apply_is_decide_of_prepare_and_state_stays_home():
    rows = _rows()
    a, b = DedupFilter(), DedupFilter()
    assert a.apply(rows[:800]) + a.apply(rows[800:]) == b.decide(b.prepare(rows))
    sent = pickle.loads(pickle.dumps(a))  # what a worker gets: the key, no state
    assert sent.key == a.key and sent.distinct == 0 and a.distinct > 0


@pytest.mark.parametrize("ratios", [None, {"train": 0.8, "validation": 0.1, "test": 0.1}])
def test_split_apply_table_sets_the_same_column(ratios):
    rows = _rows()
    table = rows_to_table(rows)
    step = Splitter(ratios)
    assert step.apply(rows) == [None] * len(rows)
    verdicts, changed = step.apply_table(table)
    assert verdicts == [None] * len(rows)
    assert changed.schema == table.schema
    assert changed.column("split").to_pylist() == [r["split"] for r in rows]
    others = [name for name in table.column_names if name not in ("split", "score")]  # score holds NaN (never equal)
    assert changed.select(others).equals(table.select(others))
    if ratios:
        assert set(changed.column("split").to_pylist()) == {"train", "validation", "test"}
