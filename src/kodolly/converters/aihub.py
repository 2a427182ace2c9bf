"""AI Hub 71748 「한국어 성능이 개선된 초거대AI 언어모델 개발 및 데이터」, read straight from the zips AI Hub ships.

Most of this converter is two declarative layouts shipped in ``converters/`` (FORMATS.md "AI Hub 71748"):

- ``aihub-sft.toml`` — label records in ``{"dataset_info": ..., "data_info": [...]}``: instruction
  ``question``, response ``answer.contents``, domain ``data_category.middle``, id ``data_id``; a PPO
  record (question only) is rejected ``no_answer``; a corpus (원천) record (``data_title`` and
  ``contents`` text, no question) is rejected ``not_qa``; answer == question (up to whitespace) is
  rejected ``answer_equals_question``.
- ``aihub-other.toml`` — Other files, a bare list of ``{data_category, contents: [{text, QA: [...]}]}``:
  one row per QA, the passage ``text`` as the context (``closed_qa``).

What a layout cannot say is here: which layout a record needs (files of all kinds sit side by side
in one zip set), and RM records, whose ``answer01`` ... ``answer05`` are ranked (``ranking`` 1 =
best): the rank-1 answer is the response and every ranked answer is kept, best first, in
``meta["ranked_answers"] = [{"rank": 1, "text": ...}, ...]`` for preference building. Answers with
empty contents are left out of the ranking; equal ranks keep their ``answerNN`` order.
Leading spaces in questions are removed by the pipeline's normalisation.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Iterator

from ..io.readers import Location
import numpy as np

from ..normalize import PY_SPACE_RE2, normalize_column, normalize_text
from . import Context, Converter, Reject, int_value

_RANKED_KEY = re.compile(r"answer\d+")


@cache
def _layout(name: str):
    from ..layouts import shipped_layout

    return shipped_layout(name).convert  # the Layout


def convert(record: Any, loc: Location, ctx: Context) -> Iterator[dict[str, Any] | Reject]:
    if not isinstance(record, dict):
        yield Reject("bad_type:record", f"expected an object, got {type(record).__name__}")
        return
    if isinstance(record.get("contents"), list):
        yield from _layout("aihub-other")(record, loc, ctx)
        return
    ranked = sorted(k for k in record if _RANKED_KEY.fullmatch(k))
    if ranked and record.get("answer") is None:
        yield _rm(record, ranked, loc, ctx)
        return
    yield from _layout("aihub-sft")(record, loc, ctx)




def _rm(record: dict[str, Any], keys: list[str], loc: Location, ctx: Context) -> dict[str, Any] | Reject:
    answers = _ranked(keys, record.__getitem__)
    if isinstance(answers, Reject):
        return answers
    best = {**record, "answer": {"contents": answers[0][2]}}
    item = _layout("aihub-sft").row([best], "", loc, ctx)
    if isinstance(item, dict):
        item["meta"]["ranked_answers"] = _ranking(answers)
    return item


def _ranked(keys: list[str], answer_of: Any) -> list[tuple[int, str, str]] | Reject:
    """The ranked answers ``(rank, key, normalised text)`` of an RM record, best first (``answer_of(key)``
    gives the record's ``answerNN`` object), or the Reject that says why there are none."""
    answers: list[tuple[int, str, str]] = []
    for key in keys:
        answer = answer_of(key)
        if answer is None:
            continue
        if not isinstance(answer, dict):
            return Reject(f"bad_type:{key}", f"expected an object, got {type(answer).__name__}")
        text = answer.get("contents")
        if text is None or (isinstance(text, str) and not text.strip()):
            continue
        if not isinstance(text, str):
            return Reject(f"bad_type:{key}.contents", f"expected text, got {type(text).__name__}")
        rank = int_value(answer.get("ranking"))
        if rank is None or rank < 1:  # 1 = best
            return Reject("bad_value:ranking", f"{key}.ranking = {answer.get('ranking')!r} is not a rank")
        answers.append((rank, key, normalize_text(text)))
    if not answers:
        return Reject("no_answer", f"{', '.join(keys)} have no contents")
    answers.sort()
    return answers


def _ranking(answers: list[tuple[int, str, str]]) -> list[dict[str, Any]]:
    return [{"rank": rank, "text": text} for rank, _key, text in answers]


_BLANK = f"^{PY_SPACE_RE2}*$"  # blank to str.strip
_NO_RANK = np.iinfo(np.int64).max


def convert_columns(table: Any, ctx: Context) -> dict[str, Any] | None:
    """The columnar fast path (``Converter.columnar``): SFT and RM label records looked up column by
    column by the ``aihub-sft`` layout (:meth:`~kodolly.layouts.Layout.columns`); an RM record's
    ranked answers ordered with numpy, normalised, picked and written to JSON column by column; None
    when a record needs the record path (Other and corpus records, an RM record without a usable answer
    or with a bad rank, values of unexpected types...)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..layouts import column_at

    layout = _layout("aihub-sft")
    names = table.column_names
    if "contents" in names:  # Other records, corpus texts
        return None
    ranked = sorted(k for k in names if _RANKED_KEY.fullmatch(k))
    if not ranked:
        return layout.columns(table, ctx)
    n = table.num_rows
    answer = table["answer"].combine_chunks() if "answer" in names else None
    if answer is not None and not (pa.types.is_struct(answer.type) or pa.types.is_null(answer.type)):
        return None
    is_rm = np.ones(n, dtype=bool) if answer is None else answer.is_null().to_numpy(zero_copy_only=False)
    rm = pa.array(np.flatnonzero(is_rm))
    m = len(rm)
    ranks = np.full((m, len(ranked)), _NO_RANK, np.int64)
    texts = []
    checked = []  # parsed text columns validated whole here: not validated again (columnar._validate_rest)
    others = pa.array(~is_rm)
    for j, key in enumerate(ranked):
        kind = table.schema.field(key).type
        if not (pa.types.is_struct(kind) or pa.types.is_null(kind)):
            return None  # the record path says which record holds what
        contents, ranking = column_at(table, (key, "contents")), column_at(table, (key, "ranking"))
        if contents is False or ranking is False:
            return None
        if contents is None or pa.types.is_null(contents.type):
            texts.append(pa.array([""] * m, pa.string()))
            continue
        if not pa.types.is_string(contents.type) or (ranking is not None and not (pa.types.is_int64(ranking.type) or pa.types.is_null(ranking.type))):
            return None
        text = pc.fill_null(contents.take(rm), "")
        usable = ~pc.match_substring_regex(text, _BLANK).to_numpy(zero_copy_only=False)
        if ranking is None or pa.types.is_null(ranking.type):
            rank, valid = np.zeros(m, np.int64), np.zeros(m, bool)
        else:
            taken = ranking.take(rm)
            rank = pc.fill_null(taken, 0).to_numpy(zero_copy_only=False)
            valid = taken.is_valid().to_numpy(zero_copy_only=False)
        if (usable & (~valid | (rank < 1) | (rank == _NO_RANK))).any():
            return None  # bad_value:ranking on the record path
        ranks[usable, j] = rank[usable]
        texts.append(normalize_column(text))  # validates the RM records' texts (UTF-8)
        contents.filter(others).validate(full=True)  # and the others' (none, as a rule)
        checked.append(contents)
    counts = (ranks != _NO_RANK).sum(axis=1)
    if m and not counts.all():
        return None  # no_answer on the record path (which says which keys it looked at)
    order = np.argsort(ranks, axis=1, kind="stable")  # by rank, then by key (the columns are in key order)
    # the texts are normalised: no control character but newline and tab is left for orjson to escape
    best = pc.choose(pa.array(order[:, 0] if m else np.zeros(0, np.int64)), *texts)
    entries = [
        pc.binary_join_element_wise(pa.scalar(',{"rank":'), pa.array(ranks[:, j]).cast(pa.string()), pa.scalar(',"text":"'),
                                    _json_escaped(text), pa.scalar('"}'), "")
        for j, text in enumerate(texts)
    ] + [pa.array([""] * m, pa.string())]
    none = len(ranked)
    places = np.arange(len(ranked))
    pieces = [pc.choose(pa.array(np.where(p < counts, order[:, min(p, none - 1)], none)), *entries) for p in places]
    joined = pc.binary_join_element_wise(*pieces, pa.scalar("")) if len(pieces) > 1 else pieces[0]
    lists = pc.binary_join_element_wise(pa.scalar('"ranked_answers":['), pc.utf8_slice_codeunits(joined, 1), pa.scalar("]"), "")
    if answer is None:
        response, more = best, lists
    else:
        contents = column_at(table, ("answer", "contents"))
        if contents is None or contents is False or not pa.types.is_string(contents.type):
            return None
        if pc.any(pc.and_(contents.is_null(), pa.array(~is_rm))).as_py():
            return None  # an SFT record without an answer: no_answer on the record path
        mask = pa.array(is_rm)
        response = pc.replace_with_mask(contents, mask, best) if m else contents  # the SFT texts validated as the response
        contents.filter(mask).validate(full=True)  # the RM records' (none, as a rule)
        checked.append(contents)
        more = pc.replace_with_mask(pa.array([""] * n, pa.string()), mask, lists) if m else pa.array([""] * n, pa.string())
    out = layout.columns(table, ctx, given={"response": response}, more_meta=(("ranked_answers",), more))
    if out is not None:
        out["checked"] = checked
    return out


def _json_escaped(texts: Any) -> Any:
    """Normalised texts as the inside of JSON strings, as orjson writes them (normalised text holds no
    control character but newline and tab)."""
    import pyarrow.compute as pc

    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\t", "\\t")):
        texts = pc.replace_substring(texts, raw, escaped)
    return texts


def detect(record: Any) -> float:
    if not isinstance(record, dict):
        return 0.0
    contents = record.get("contents")
    if isinstance(contents, list) and contents and isinstance(contents[0], dict) and "QA" in contents[0]:
        return 0.9
    if "question" in record and "data_category" in record:
        return 0.9 if ("answer" in record or "answer01" in record) else 0.6
    if "data_title" in record and isinstance(contents, str):
        return 0.5
    return 0.0


CONVERTER = Converter(
    name="aihub",
    description="AI Hub 71748 SFT, RM (rank-1 answer; ranked answers in meta) and Other records, from the shipped zips",
    convert=convert,
    license="AI Hub terms",
    aliases=("aihub-71748",),
    record_paths=("data_info.item",),
    detect=detect,
    options={"license": ""},
    columnar=convert_columns,
)
