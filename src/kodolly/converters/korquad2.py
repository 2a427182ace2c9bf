"""KorQuAD 2.0 / 2.1: whole Wikipedia pages as HTML, one row per question (extra ``html``).

``{"version", "data": [{"title", "url", "context", "raw_html", "qas": [{"question", "id",
"answer": {"text", "answer_start", "html_answer_start", "html_answer_text"}}]}]}``
(FORMATS.md "KorQuAD 2.0 / 2.1"). A record is one page of ``data``, read item by item, so
memory holds one page at a time however large the file.

For each page the HTML ``context`` (``raw_html`` only when ``context`` is missing) is rendered once
into text blocks by :mod:`kodolly.converters.html_text`: paragraphs as text, list items as
``- item`` lines, tables as rows of cells joined by `` | `` (header rows kept), headings without
edit links; scripts, styles and navigation dropped. Then for each question:

1. The answer (``answer.text``: a phrase, or the HTML of a paragraph, table or list) is rendered
   by the same rules: that is the ``response``. A phrase taken from a table cell or list item is
   rendered on one line as its cell or item is (a ``<br>`` in it is a space there, as in the
   context); elsewhere a ``<br>`` stays a line break in both.
2. Its block is found from ``answer_start``: a marker character is put into the HTML at that
   offset before parsing, and the block it lands in holds the answer. If the answer text is not at
   its offset but occurs in the HTML, the occurrence nearest the offset is used
   (``meta.answer_offset_fixed``); if the offset is past the end of the page or its block does not
   hold the answer, the first block (or run of consecutive blocks) whose text holds the rendered
   answer is used.
3. The ``context`` is that block, widened with neighbouring blocks while it stays within
   ``max_context_chars`` (option, default 4000): one block before, one after, in turn, staying in
   the answer's section (backwards up to and including its heading, forwards up to the next one). A block longer than the bound on its
   own (a large table) is cut to the lines around the answer (keeping its first, header line when
   it fits). The context is never the whole page unless the page is that short.
4. The rendered answer must be found in the context (after normalisation of both), else the
   question is rejected as ``answer_not_in_context``; an answer longer than the bound is rejected
   as ``answer_too_long``.

Rows: ``instruction`` = question, ``category`` = ``closed_qa``, ``id`` = question id, ``meta`` =
``title`` (``_`` as spaces), ``url``, ``question_id``, ``answer_type`` (``table``, ``list``,
``paragraph`` or ``text``). A missing ``version`` or offsets past the end do not matter. A page
with no question gives one ``no_questions`` reject; rejects carry the question, not the page.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterator

from ..errors import ConfigError
from ..io.readers import Location
from ..normalize import normalize_text
from ..rows import make_row
from ..textedit import splice
from . import Context, Converter, Reject, text_field
from .html_text import Block, Page, inside_tag, join_blocks, mark_chars, one_line, render_fragment
from .korquad1 import as_offset, nearest_occurrence, no_questions, title_meta

LICENSE = "CC BY-ND 2.0 KR"
DEFAULT_MAX_CONTEXT_CHARS = 4000
MAX_SPAN_BLOCKS = 12  # an answer spanning more consecutive blocks than this is searched no further
_FIRST_TAG = re.compile(r"^\s*<\s*([a-zA-Z0-9]+)")


def _answer_type(html: str) -> str:
    m = _FIRST_TAG.match(html)
    tag = m.group(1).lower() if m else ""
    if tag in ("table", "tr", "td", "th", "tbody", "thead"):
        return "table"
    if tag in ("ul", "ol", "li", "dl"):
        return "list"
    if tag in ("p", "div", "blockquote"):
        return "paragraph"
    return "text"


class _Question:
    __slots__ = ("qa", "part", "qid", "question", "answer_html", "start", "mark", "fixed", "reject")

    def __init__(self, qa: Any, index: int) -> None:
        self.qa, self.mark, self.fixed, self.reject = qa, None, False, None
        self.qid = self.part = self.question = self.answer_html = ""
        self.start: int | None = None
        if not isinstance(qa, dict):
            self.part = str(index)
            self.reject = Reject("bad_type:question", f"expected an object, got {type(qa).__name__}", part=self.part, raw=qa)
            return
        qid = qa.get("id")
        self.qid = str(qid).strip() if isinstance(qid, (str, int)) and not isinstance(qid, bool) else ""
        self.part = self.qid or str(index)
        question = text_field(qa, "question")
        answer = qa.get("answer")
        if isinstance(answer, list):  # SQuAD-style list of answers: take the first
            answer = next((a for a in answer if isinstance(a, dict)), None) if answer else None
        if isinstance(question, Reject):
            self.reject = Reject(question.reason, question.detail, part=self.part, raw=qa)
        elif answer is None:
            self.reject = Reject("missing_field:answer", part=self.part, raw=qa)
        elif not isinstance(answer, dict):
            self.reject = Reject("bad_type:answer", "expected {text, answer_start}", part=self.part, raw=qa)
        else:
            text = text_field(answer, "text")
            if isinstance(text, Reject):
                self.reject = Reject(f"{text.reason.split(':')[0]}:answer.text", text.detail, part=self.part, raw=qa)
            else:
                self.question, self.answer_html = question, text
                self.start = as_offset(answer.get("answer_start"))


def _place_marks(html: str, questions: list[_Question]) -> str:
    """Put each question's marker character into the HTML at its answer's offset."""
    live = [q for q in questions if q.reject is None]
    for q, mark in zip(live, mark_chars(html, len(live))):
        pos: int | None = None
        if q.start is not None and 0 <= q.start <= len(html) and q.answer_html and html.startswith(q.answer_html, q.start):
            pos = q.start
        elif q.answer_html:
            found = nearest_occurrence(html, q.answer_html, q.start)
            if found >= 0:
                pos, q.fixed = found, True
        if pos is None:
            q.fixed = True
            if q.start is not None and 0 <= q.start < len(html):
                pos = q.start  # text not found verbatim: the offset still says roughly where
        if pos is not None and inside_tag(html, pos):
            end = html.find(">", pos)
            pos = end + 1 if end >= 0 else None
        if pos is not None:
            q.mark = (pos, mark)
    marks = sorted((q.mark for q in live if q.mark is not None), key=lambda m: m[0])
    return splice(html, ((pos, pos, mark) for pos, mark in marks))


def _find_span(blocks: list[Block], answer: str, near: int | None) -> tuple[int, int] | None:
    """The first run of consecutive blocks ``[a, b]`` whose joined text holds ``answer``.

    Blocks around ``near`` (the marker's block) are tried first, then the whole page.
    """
    n = len(blocks)
    starts = [i for i in (near, near - 1, near + 1) if 0 <= i < n] if near is not None else []
    head = answer.split("\n\n", 1)[0] if "\n\n" in answer else None
    for a in starts + [i for i in range(n) if i not in starts]:
        text = blocks[a].text
        if answer in text:
            return a, a
        if head is not None and text.endswith(head):  # an answer over several blocks starts at the end of a
            joined = text
            for b in range(a + 1, min(a + MAX_SPAN_BLOCKS, n)):
                joined += "\n\n" + blocks[b].text
                if answer in joined:
                    return a, b
                if len(joined) - len(text) + len(head) >= len(answer):
                    break
    return None


def _widen(blocks: list[Block], a: int, b: int, limit: int) -> tuple[int, int]:
    """Grow ``[a, b]`` with neighbours within ``limit`` characters, staying inside the section."""
    size = len(join_blocks(blocks[a : b + 1]))
    go_back = blocks[a].kind != "heading"
    go_on = True
    while go_back or go_on:
        if go_back:
            if a > 0 and size + 2 + len(blocks[a - 1].text) <= limit:
                a -= 1
                size += 2 + len(blocks[a].text)
                go_back = blocks[a].kind != "heading"
            else:
                go_back = False
        if go_on:
            if b + 1 < len(blocks) and blocks[b + 1].kind != "heading" and size + 2 + len(blocks[b + 1].text) <= limit:
                b += 1
                size += 2 + len(blocks[b].text)
            else:
                go_on = False
    return a, b


def _cut(text: str, answer: str, limit: int) -> str:
    """Lines of ``text`` around ``answer`` within ``limit`` characters (first line kept if it fits)."""
    pos = text.find(answer)
    lines = text.split("\n")
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    first = max(i for i, s in enumerate(starts) if s <= pos)
    last = max(i for i, s in enumerate(starts) if s < pos + len(answer)) if answer else first
    size = starts[last] + len(lines[last]) - starts[first]
    if size > limit:  # the answer's own lines are too long: a window of characters around it
        room = limit - len(answer)
        begin = max(0, pos - room // 2)
        return normalize_text(text[begin : begin + limit])
    header = first > 0 and size + len(lines[0]) + 1 <= limit
    if header:
        size += len(lines[0]) + 1
    a, b = first, last
    grew = True
    while grew:
        grew = False
        if a - 1 > (0 if header else -1) and size + len(lines[a - 1]) + 1 <= limit:
            a -= 1
            size += len(lines[a]) + 1
            grew = True
        if b + 1 < len(lines) and size + len(lines[b + 1]) + 1 <= limit:
            b += 1
            size += len(lines[b]) + 1
            grew = True
    picked = ([lines[0]] if header and a > 0 else []) + lines[a : b + 1]
    return normalize_text("\n".join(picked))


def _limit(ctx: Context) -> int:
    limit = ctx.options.get("max_context_chars", DEFAULT_MAX_CONTEXT_CHARS)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"korquad2: max_context_chars must be a positive whole number, not {limit!r}")
    return limit


def convert(record: Any, loc: Location, ctx: Context) -> Iterator[dict[str, Any] | Reject]:
    if not isinstance(record, dict):
        yield Reject("bad_type:record", f"expected a page object, got {type(record).__name__}")
        return
    qas = record.get("qas")
    if qas is None or qas == []:
        yield no_questions(record)
        return
    if not isinstance(qas, list):
        yield Reject("bad_type:qas", f"expected a list, got {type(qas).__name__}", raw={"title": record.get("title")})
        return
    questions = [_Question(qa, i) for i, qa in enumerate(qas)]
    html = record.get("context")
    root = None
    if not isinstance(html, str) or not html.strip():
        html, root = record.get("raw_html"), "#mw-content-text"
        if not isinstance(html, str) or not html.strip():
            for q in questions:
                yield q.reject or Reject("missing_field:context", "the page has no HTML", part=q.part, raw=q.qa)
            return
        for q in questions:  # offsets into raw_html are the html_ ones
            if q.reject is None and isinstance(q.qa.get("answer"), dict):
                answer = q.qa["answer"]
                if isinstance(answer.get("html_answer_text"), str):
                    q.answer_html = answer["html_answer_text"]
                q.start = as_offset(answer.get("html_answer_start"))
    limit = _limit(ctx)
    page = Page(_place_marks(html, questions), root, {q.mark[1]: q.mark[0] for q in questions if q.mark is not None}, limit)
    meta_base = title_meta(record.get("title"))
    if isinstance(record.get("url"), str):
        meta_base["url"] = record["url"]
    for i, q in enumerate(questions):
        if q.reject is not None:
            yield q.reject
            continue
        yield _row(q, i, page, limit, meta_base, loc, ctx)


def _renderings(answer: str, home: str | None) -> list[str]:
    """The answer as rendered alone, and on one line as a table cell or list item renders it (a
    ``<br>`` in a cell is a space there, a line break in the phrase alone). The one the answer's own
    block (``home``) uses comes first; the other is tried when that is not found."""
    flat = one_line(answer) if "\n" in answer else answer
    if flat == answer:
        return [answer]
    return [flat, answer] if home in ("table", "list") else [answer, flat]


def _row(
    q: _Question,
    index: int,
    page: Page,
    limit: int,
    meta_base: dict[str, Any],
    loc: Location,
    ctx: Context,
) -> dict[str, Any] | Reject:
    answer = render_fragment(q.answer_html)
    if not answer:
        return Reject("empty_field:response", "the answer renders to no text", part=q.part, raw=q.qa)
    if len(answer) > limit:
        return Reject("answer_too_long", f"the answer has {len(answer)} characters, more than max_context_chars={limit}", part=q.part, raw=q.qa)
    # Only the blocks around the answer's marker are rendered; a wider window (in the end the whole
    # page) is taken when the search reached the edge of the one it had.
    for blocks, marks in page.windows(q.mark[1] if q.mark is not None else None):
        found = _context(q, answer, blocks, marks, limit, page.may_hold)
        if blocks.settled():
            break
    if isinstance(found, Reject):
        return found
    context, answer, fixed = found
    meta = dict(meta_base)
    meta.update(question_id=q.part, answer_type=_answer_type(q.answer_html))
    if fixed:
        meta["answer_offset_fixed"] = True
    return make_row(
        instruction=q.question,
        context=context,
        response=answer,
        category="closed_qa",
        source=ctx.source,
        id=q.qid or ctx.derived_id(loc, index),
        license=ctx.license,
        meta=meta,
    )


def _context(
    q: _Question, answer: str, blocks: list[Block], marks: dict[str, int], limit: int, may_hold: Callable[[str], bool]
) -> tuple[str, str, bool] | Reject:
    """The bounded context around the answer in ``blocks``, the answer as found, and whether its
    offset was off; or the reason there is none. ``may_hold(text)`` is False when the page cannot
    hold ``text`` (a rendering not worth searching for)."""
    near = marks.get(q.mark[1]) if q.mark is not None else None
    span = None
    renderings = _renderings(answer, blocks[near].kind if near is not None and near < len(blocks) else None)
    for answer in renderings:
        if len(renderings) > 1 and not may_hold(answer):
            continue
        span = _find_span(blocks, answer, near)
        if span is not None:
            break
    if span is None:
        return Reject("answer_not_in_context", f"answer {answer[:80]!r} is not in the page's text", part=q.part, raw=q.qa)
    a, b = span
    fixed = q.fixed or near is None or not a <= near <= b
    span_text = join_blocks(blocks[a : b + 1])
    if len(span_text) > limit:
        context = _cut(span_text, answer, limit)
    else:
        a, b = _widen(blocks, a, b, limit)
        context = join_blocks(blocks[a : b + 1])
    if answer not in context or len(context) > limit:
        return Reject("answer_not_in_context", "the answer does not fit in the bounded context", part=q.part, raw=q.qa)
    return context, answer, fixed


def detect(record: Any) -> float:
    if not isinstance(record, dict) or not isinstance(record.get("qas"), list):
        return 0.0
    if "raw_html" in record or any(isinstance(qa, dict) and isinstance(qa.get("answer"), dict) for qa in record["qas"][:3]):
        return 0.95
    return 0.5 if "context" in record else 0.0


CONVERTER = Converter(
    name="korquad2",
    description="KorQuAD 2.0/2.1 HTML pages: readable text of the answer's paragraph/table/list, bounded, one row per question",
    convert=convert,
    license=LICENSE,
    record_paths=("data.item",),
    detect=detect,
    options={"license": LICENSE, "max_context_chars": DEFAULT_MAX_CONTEXT_CHARS},
)
