"""KorQuAD 1.0 (SQuAD v1 layout): one row per question.

``{"version", "data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
"answers": [{"text", "answer_start"}]}]}]}]}`` (FORMATS.md "KorQuAD 1.0").

A record is one article of ``data`` (read item by item: the file is never loaded whole). Each
question gives one row or one :class:`Reject`:

- ``instruction`` = the question, ``context`` = the paragraph, ``response`` = the answer,
  ``category`` = ``closed_qa``, ``id`` = the question id,
  ``meta`` = ``title`` (``_`` turned into spaces; ``title_raw`` keeps the original when it
  differs), ``question_id``, ``paragraph`` (its index in the article) and ``answer_start``.
- The answer is taken at its ``answer_start`` offset. When it is not there but the text occurs in
  the paragraph, the occurrence nearest the offset is used and ``meta.answer_offset_fixed`` is
  ``true``. When it is not in the paragraph at all the question is rejected as
  ``answer_not_in_context``. With several answers the first one found wins.
- The response and the context are compared after :func:`~kodolly.normalize.normalize_text`
  (what the pipeline does to them next), so an answer that ends with a space still lies inside
  its context once both are tidied.
- A paragraph with ``"qas": []`` yields nothing; an article without any question at all yields
  one ``no_questions`` reject. Key order inside objects does not matter.

Rejects carry the question object (not the whole article) and the question id as their ``part``.

The Hugging Face Hub's flat layout of the same data (``squad_kor_v1`` parquet: one row per
question, ``{id, title, context, question, answers: {text: [...], answer_start: [...]}}``) is read
too: each row is one question with the same checks (``meta.paragraph`` is 0).
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import orjson
import pyarrow as pa

from ..io.readers import Location
from ..normalize import normalize_column_dirty, normalize_repeated, normalize_text
from ..rows import make_row
from . import Context, Converter, NestedColumns, Reject, int_value, text_field

LICENSE = "CC BY-ND 2.0 KR"


def clean_title(title: Any) -> tuple[str, str]:
    """``(title with _ as spaces, original title)`` for a KorQuAD title (``""`` when missing)."""
    raw = title if isinstance(title, str) else ""
    return raw.replace("_", " ").strip(), raw


def title_meta(title: Any) -> dict[str, Any]:
    clean, raw = clean_title(title)
    meta: dict[str, Any] = {"title": clean}
    if raw != clean:
        meta["title_raw"] = raw
    return meta


def as_offset(value: Any) -> int | None:
    """An ``answer_start`` as an int (numbers stored as text or floats accepted), else ``None``."""
    return int_value(value)


def nearest_occurrence(haystack: str, needle: str, start: int | None) -> int:
    """The index of the occurrence of ``needle`` in ``haystack`` nearest ``start`` (-1 if none)."""
    pos = haystack.find(needle)
    if pos < 0 or start is None:
        return pos
    best = pos
    while pos >= 0:
        if abs(pos - start) < abs(best - start):
            best = pos
        if pos > start:
            break
        pos = haystack.find(needle, pos + 1)
    return best


def no_questions(record: dict[str, Any], **counts: int) -> Reject:
    """The one reject of an article without questions (its title, not its whole text, as ``raw``)."""
    return Reject("no_questions", "the article has no question", raw={"title": record.get("title"), **counts})


def is_flat_question(record: dict[str, Any]) -> bool:
    """A row of the Hub's flat SQuAD layout: ``context``, ``question`` and ``answers`` in one record."""
    return "paragraphs" not in record and {"context", "question", "answers"} <= set(record)


def columns_to_answers(answers: Any) -> Any:
    """``{text: [...], answer_start: [...]}`` (the Hub's layout) -> ``[{text, answer_start}, ...]``."""
    if isinstance(answers, dict) and isinstance(answers.get("text"), list):
        starts = answers.get("answer_start")
        starts = starts if isinstance(starts, list) else [None] * len(answers["text"])
        return [{"text": t, "answer_start": s} for t, s in zip(answers["text"], starts)]
    return answers


def convert(record: Any, loc: Location, ctx: Context) -> Iterator[dict[str, Any] | Reject]:
    if not isinstance(record, dict):
        yield Reject("bad_type:record", f"expected an article object, got {type(record).__name__}")
        return
    if is_flat_question(record):
        qa = {"id": record.get("id"), "question": record.get("question"), "answers": columns_to_answers(record["answers"])}
        context = text_field(record, "context")
        norm_context = normalize_text(context) if isinstance(context, str) else ""
        yield _question(qa, context, norm_context, 0, 0, loc, ctx, title_meta(record.get("title")))
        return
    paragraphs = record.get("paragraphs")
    if paragraphs is None:
        yield Reject("missing_field:paragraphs")
        return
    if not isinstance(paragraphs, list):
        yield Reject("bad_type:paragraphs", f"expected a list, got {type(paragraphs).__name__}")
        return
    base_meta = title_meta(record.get("title"))
    questions = 0
    for p, paragraph in enumerate(paragraphs):
        if not isinstance(paragraph, dict):
            questions += 1
            yield Reject("bad_type:paragraph", f"paragraph {p} is not an object", part=f"paragraph:{p}", raw=paragraph)
            continue
        qas = paragraph.get("qas")
        if qas is None or qas == []:
            continue
        if not isinstance(qas, list):
            questions += 1
            yield Reject("bad_type:qas", f"paragraph {p}: expected a list", part=f"paragraph:{p}", raw=qas)
            continue
        context = text_field(paragraph, "context")
        norm_context = normalize_repeated(context) if isinstance(context, str) else ""
        for q, qa in enumerate(qas):
            questions += 1
            yield _question(qa, context, norm_context, p, q, loc, ctx, base_meta)
    if not questions:
        yield no_questions(record, paragraphs=len(paragraphs))


def _question(
    qa: Any,
    context: str | Reject,
    norm_context: str,
    p: int,
    q: int,
    loc: Location,
    ctx: Context,
    base_meta: dict[str, Any],
) -> dict[str, Any] | Reject:
    if not isinstance(qa, dict):
        return Reject("bad_type:question", f"expected an object, got {type(qa).__name__}", part=f"{p}:{q}", raw=qa)
    qid = qa.get("id")
    qid = str(qid).strip() if isinstance(qid, (str, int)) and not isinstance(qid, bool) and str(qid).strip() else ""
    part = qid or f"{p}:{q}"
    if isinstance(context, Reject):
        return Reject(context.reason, context.detail, part=part, raw=qa)
    question = text_field(qa, "question")
    if isinstance(question, Reject):
        return Reject(question.reason, question.detail, part=part, raw=qa)
    answers = qa.get("answers")
    if answers is None or answers == []:
        return Reject("missing_field:answers", part=part, raw=qa)
    if isinstance(answers, dict):
        answers = [answers]
    if not isinstance(answers, list) or not all(isinstance(a, dict) for a in answers):
        return Reject("bad_type:answers", "expected a list of {text, answer_start}", part=part, raw=qa)

    found = _locate(answers, context)
    if isinstance(found, Reject):
        return Reject(found.reason, found.detail, part=part, raw=qa)
    text, start, fixed = found
    if normalize_repeated(text) not in norm_context:  # e.g. a cut through a decomposed (NFD) syllable
        return Reject("answer_not_in_context", "the answer is not in the context after normalisation", part=part, raw=qa)
    meta = dict(base_meta)
    meta.update(question_id=part, paragraph=p, answer_start=start)
    if fixed:
        meta["answer_offset_fixed"] = True
    return make_row(
        instruction=question,
        context=context,
        response=text,
        category="closed_qa",
        source=ctx.source,
        id=qid or ctx.derived_id(loc, f"{p}:{q}"),
        license=ctx.license,
        meta=meta,
    )


def _locate(answers: list[dict[str, Any]], context: str) -> tuple[str, int, bool] | Reject:
    """``(answer text, its offset in context, offset was fixed)`` for the first answer found."""
    texts: list[tuple[str, int | None]] = []
    for answer in answers:
        text = text_field(answer, "text")
        if isinstance(text, Reject):
            continue
        if not text.strip():
            continue
        start = as_offset(answer.get("answer_start"))
        if start is not None and 0 <= start and context.startswith(text, start):
            return text, start, False
        texts.append((text, start))
    if not texts:
        return Reject("empty_field:response", "no answer has text")
    for text, start in texts:
        pos = nearest_occurrence(context, text, start)
        if pos >= 0:
            return text, pos, True
    first, start = texts[0]
    return Reject(
        "answer_not_in_context",
        f"answer {first[:80]!r} (answer_start {start}) does not occur in the paragraph",
    )


# ------------------------------------------------------------------ the columnar article path

ARTICLE_TYPE = pa.struct([
    ("title", pa.string()),
    ("paragraphs", pa.list_(pa.struct([
        ("context", pa.string()),
        ("qas", pa.list_(pa.struct([
            ("id", pa.string()),
            ("question", pa.string()),
            ("answers", pa.list_(pa.struct([("text", pa.string()), ("answer_start", pa.int64())]))),
        ]))),
    ]))),
])
ARTICLE_DEPTH = 7  # article {, paragraphs [, paragraph {, qas [, question {, answers [, answer {
# a question id written into the meta JSON as it is: printable ASCII without quotes, backslashes or
# white space at either end (str.strip leaves it unchanged)
_PLAIN_ID = r"^[\x21\x23-\x5B\x5D-\x7E](?:[\x20\x21\x23-\x5B\x5D-\x7E]*[\x21\x23-\x5B\x5D-\x7E])?$"


def _flat(list_array: Any) -> tuple[Any, np.ndarray, list[Any]]:
    """A list array's values (null lists skipped), the parent of each value, the values' fields
    (struct validity applied) and the values' validity."""
    import pyarrow.compute as pc

    values = list_array.flatten()
    parents = pc.list_parent_indices(list_array).to_numpy()
    return values, parents, values.flatten()


def _valid(array: Any) -> np.ndarray:
    return array.is_valid().to_numpy(zero_copy_only=False)


def _utf8(array: Any) -> tuple[np.ndarray, np.ndarray]:
    """A string array's offsets (int64) and data bytes."""
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], np.int32)[array.offset : array.offset + len(array) + 1].astype(np.int64)
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    return offsets, data


def _at_offset(contexts: Any, para: np.ndarray, texts: Any, starts: np.ndarray) -> np.ndarray:
    """Per question: whether ``contexts[para].startswith(texts, starts)`` (code point offsets), on the
    UTF-8 buffers."""
    c_off, c_data = _utf8(contexts)
    t_off, t_data = _utf8(texts)
    lead = np.flatnonzero((c_data & 0xC0) != 0x80)  # where each character starts
    base = np.searchsorted(lead, c_off[:-1])  # characters before each paragraph
    chars = np.searchsorted(lead, c_off[1:]) - base
    lengths = np.diff(t_off)
    ok = (starts >= 0) & (starts < chars[para]) & (lengths > 0)
    at = np.where(ok, base[para] + np.where(ok, starts, 0), 0)
    pos = lead[np.minimum(at, max(len(lead) - 1, 0))] if len(lead) else np.zeros(len(at), np.int64)
    ok &= pos + lengths <= c_off[para + 1]
    total = int(t_off[-1] - t_off[0])
    if not total or not len(c_data):
        return ok & (lengths == 0)
    shift = np.repeat(np.where(ok, pos, 0) - t_off[:-1], lengths)
    flat = np.arange(t_off[0], t_off[-1])
    src = np.minimum(flat + shift, max(len(c_data) - 1, 0))
    differ = c_data[src] != t_data[flat]
    firsts = (t_off[:-1] - t_off[0])[lengths > 0]
    bad = np.zeros(len(ok), bool)
    bad[lengths > 0] = np.add.reduceat(differ, firsts) > 0
    return ok & ~bad


def article_columns(articles: Any, ctx: Context) -> dict[str, Any]:
    """The columnar path (``Converter.nested``): a shard's articles (``ARTICLE_TYPE``) -> row columns.

    Regular here: the article has paragraphs, at least one question, every paragraph with questions
    has a context, every question an id (:data:`_PLAIN_ID`), a question and a first answer found at
    its ``answer_start``, non-empty once normalised, and lies in its normalised context. Everything
    else (and every reject) is left to :func:`convert` (``irregular``)."""
    import pyarrow.compute as pc

    n_art = len(articles)
    irregular = ~_valid(articles)
    title, paragraph_lists = articles.flatten()
    irregular |= ~_valid(paragraph_lists)
    paragraphs, p_art, (contexts, qas_lists) = _flat(paragraph_lists)
    irregular[p_art[~_valid(paragraphs)]] = True
    n_qas = pc.fill_null(pc.list_value_length(qas_lists), 0).to_numpy()
    irregular |= np.bincount(p_art, weights=n_qas, minlength=n_art) == 0  # no_questions
    irregular[p_art[(n_qas > 0) & ~_valid(contexts)]] = True
    qas, q_par, (qids, questions, answer_lists) = _flat(qas_lists)
    q_art = p_art[q_par]
    n_q = len(qas)
    bad_q = ~_valid(qas) | ~_valid(questions)
    bad_q |= ~pc.fill_null(pc.match_substring_regex(qids, _PLAIN_ID), False).to_numpy(zero_copy_only=False)
    answers, a_q, (texts, starts) = _flat(answer_lists)
    first = np.full(n_q, -1, np.int64)
    if len(a_q):
        heads = np.flatnonzero(np.concatenate(([True], a_q[1:] != a_q[:-1])))
        first[a_q[heads]] = heads
    bad_q |= first < 0
    take = pa.array(np.maximum(first, 0))
    answer_ok = _valid(answers)[np.maximum(first, 0)] if len(answers) else np.zeros(n_q, bool)
    texts = pc.fill_null(texts.take(take), "") if len(answers) else pa.array([""] * n_q, pa.string())
    start_values = starts.take(take) if len(answers) else pa.array([None] * n_q, pa.int64())
    bad_q |= ~answer_ok | ~_valid(start_values)
    start_np = pc.fill_null(start_values, -1).to_numpy()
    contexts = pc.fill_null(contexts, "")
    bad_q |= ~_at_offset(contexts, q_par, texts, start_np)

    norm_context, dirty = normalize_column_dirty(contexts)
    instruction = normalize_column_dirty(pc.fill_null(questions, ""))[0]
    response = normalize_column_dirty(texts)[0]
    bad_q |= (pc.binary_length(instruction).to_numpy() == 0) | (pc.binary_length(response).to_numpy() == 0)
    if dirty is not None:  # a context normalisation changed: is the answer still inside it?
        ctx_values = norm_context.to_pylist()
        text_values = texts.to_pylist()
        for i in np.flatnonzero(dirty[q_par] & ~bad_q).tolist():
            if normalize_repeated(text_values[i]) not in ctx_values[q_par[i]]:
                bad_q[i] = True
    irregular[q_art[bad_q]] = True

    keep = ~irregular[q_art]
    rows = np.flatnonzero(keep)
    picks = pa.array(rows)
    p_first = np.searchsorted(p_art, p_art)  # each article's first paragraph
    heads = [orjson.dumps(title_meta(t)).decode()[:-1] + ',"question_id":"' for t in title.to_pylist()]
    meta = pc.binary_join_element_wise(
        pa.array(heads, pa.string()).take(pa.array(q_art[rows])),
        qids.take(picks),
        pa.scalar('","paragraph":'),
        pa.array(q_par[rows] - p_first[q_par[rows]]).cast(pa.string()),
        pa.scalar(',"answer_start":'),
        pa.array(start_np[rows]).cast(pa.string()),
        "",
    )
    return {
        "record": q_art[rows],
        "irregular": irregular,
        "instruction": instruction.take(picks),
        "context": norm_context.take(pa.array(q_par[rows])),
        "response": response.take(picks),
        "id": qids.take(picks),
        "category": "closed_qa",
        "meta": meta,
    }


def detect(record: Any) -> float:
    if not isinstance(record, dict):
        return 0.0
    if is_flat_question(record):
        answers = record["answers"]
        return 0.95 if isinstance(answers, dict) and isinstance(answers.get("text"), list) else 0.5
    paragraphs = record.get("paragraphs")
    if isinstance(paragraphs, list):
        first = next((p for p in paragraphs if isinstance(p, dict)), None)
        if first is not None and "qas" in first and "context" in first:
            return 0.95
        return 0.6
    return 0.0


CONVERTER = Converter(
    name="korquad1",
    description="KorQuAD 1.0 (SQuAD v1 layout): one closed_qa row per question, paragraph as context",
    convert=convert,
    license=LICENSE,
    record_paths=("data.item",),
    detect=detect,
    options={"license": LICENSE},
    nested=NestedColumns(ARTICLE_TYPE, ARTICLE_DEPTH, article_columns),
)
