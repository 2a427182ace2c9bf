"""HTML to readable text blocks, for KorQuAD 2.0 pages (a real HTML parser: selectolax/lexbor).

A page becomes a list of :class:`Block` s, each a normalised text (:func:`normalize_text`):

- paragraphs (and any loose text) -> their text, inline markup dropped, ``<br>`` a line break;
- headings ``h1``-``h6`` -> their text, without MediaWiki edit links (``[편집]``, ``[원본 편집]``);
  footnote marks (``<sup>[1]</sup>``, ``<sup>[주 2]</sup>``) are dropped everywhere; a table of
  contents (a ``목차`` / ``Contents`` heading and the list after it) is dropped;
- lists (``ul``, ``ol``) -> one line per item, ``- item``, nested items indented two spaces a level;
  definition lists -> one line per term / definition;
- tables -> the caption, then one line per row with its cells joined by `` | `` (header rows kept as
  the first lines); a table nested in a cell is flattened into that cell;
- ``script``, ``style``, ``noscript``, ``template``, forms, ``nav`` and, when the page still has its
  attributes (``raw_html``), MediaWiki navigation, table of contents, edit links and footers are
  dropped, and so is MediaWiki chrome left as plain text (``둘러보기로 가기``);
- ``\\xa0`` and runs of whitespace in the source become one space.

An answer fragment (a phrase, a ``<p>``, a ``<table>``, ``<li>`` items or ``<tr>``/``<td>`` cells) is
rendered by the same rules with :func:`render_fragment`, so a rendered answer is a substring of the
rendered block that holds it. One difference is left to the caller: a table cell or list item is
rendered on one line (a ``<br>`` in it becomes a space), while a phrase cut out of it and rendered
alone keeps its ``<br>`` as a line break; :func:`one_line` renders such a phrase the way its cell
or item was rendered.

Markers: :func:`render_blocks` accepts private-use characters inserted into the HTML beforehand
(one per answer offset, chosen among those the page does not use) and reports the index of the
block each one ended up in. Private-use characters never reach the rendered text.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterator

from ..normalize import SAFE_RANGES, normalize_text

DROP_TAGS = frozenset(
    {
        "script", "style", "noscript", "template", "head", "title", "meta", "link", "nav", "form",
        "input", "button", "select", "textarea", "iframe", "object", "embed", "svg", "canvas",
        "audio", "video", "source", "img", "map", "area", "-comment", "_comment",
    }
)
HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
LIST_TAGS = frozenset({"ul", "ol"})
BLOCK_TAGS = frozenset(
    {
        "p", "div", "section", "article", "main", "aside", "blockquote", "pre", "figure",
        "figcaption", "center", "address", "details", "summary", "header", "footer", "fieldset",
        "body", "html", "hr", "caption", "li", "dd", "dt", "tr", "td", "th", "tbody", "thead", "tfoot",
    }
)
# Attributes only exist in raw_html; KorQuAD's `context` has them stripped.
DROP_IDS = frozenset({"toc", "mw-navigation", "mw-head", "mw-panel", "footer", "catlinks", "siteSub", "contentSub", "jump-to-nav", "mw-page-base", "mw-head-base"})
DROP_CLASSES = frozenset({"mw-editsection", "navbox", "toc", "mw-jump-link", "printfooter", "catlinks", "noprint", "mw-empty-elt", "sistersitebox", "vertical-navbox"})
EDIT_LINK = re.compile(r"\s*\[\s*(?:편집|원본 편집|소스 편집|edit|edit source)(?:\s*\|\s*(?:편집|원본 편집|소스 편집|edit|edit source))*\s*\]")
# MediaWiki page chrome that survives attribute stripping as plain text (jump links, tagline)
CHROME_LINES = frozenset({
    "위키백과, 우리 모두의 백과사전.", "둘러보기로 가기", "검색하러 가기", "본문으로 이동",
    "From Wikipedia, the free encyclopedia", "Jump to navigation", "Jump to search",
})
REFERENCE_MARK = re.compile(r"^\s*\[\s*(?:[^\W\d_]+\s*)?\d+\s*\]\s*$")
_WS = re.compile(r"[ \t\n\r\f\v\xa0]+")
_SPACE_RUN = re.compile(" {2,}")
_WS_CHARS = "\t\n\r\f\v\xa0"


def _ws(text: str) -> str:
    """``_WS.sub(" ", text)``: every run of source white space one space. Each white-space
    character becomes a space (``str.replace`` in C), then runs of spaces one (the regex only runs
    when there is a run): ``re.sub`` with a match per space is the slow part of rendering."""
    for c in _WS_CHARS:
        if c in text:
            text = text.replace(c, " ")
    return _SPACE_RUN.sub(" ", text) if "  " in text else text

MARK_FIRST, MARK_LAST = 0xE000, 0xF8FF  # Unicode private use area
_MARKS = re.compile("[\ue000-\uf8ff]")


# Plain inline markup: a node holding only text and these (without attributes) renders as its text.
INLINE_TAGS = (
    "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "del", "dfn", "em", "font", "i", "ins", "kbd",
    "label", "mark", "nobr", "q", "rp", "rt", "ruby", "s", "samp", "small", "span", "strike", "strong",
    "sub", "time", "tt", "u", "var",  # not sup: it may be a reference mark (see visit)
)
_INLINE = frozenset(INLINE_TAGS)
_CHROME = re.compile("|".join(re.escape(line) for line in sorted(CHROME_LINES)))
SIMPLE_CANDIDATES = frozenset({"p", "td", "th", "li", "dt", "dd", "caption"}) | HEADING_TAGS


def _plain_text(node: Any) -> str | None:
    """Fast path: the whitespace-collapsed text of a node that holds only text and plain inline
    markup (what walking it would give, computed in C), else ``None``."""
    first = node.child
    if first is None:
        return ""
    if first.next is None and first.tag == "-text":  # only text (most table cells)
        text = _ws(first.text_content or "")
        return None if _CHROME.search(text) else text
    for child in node.iter(include_text=False):
        if not _inline_only(child):
            return None
    text = _ws(node.text(deep=True) or "")
    return None if _CHROME.search(text) else text


def _inline_only(node: Any) -> bool:
    """Whether ``node`` and every element under it is plain inline markup: a tag of
    ``INLINE_TAGS`` without ``class``, ``id`` or ``role`` (what matching the CSS selector
    ``*:not(a):not(b)..., [class], [id], [role]`` against it finds nothing for, without compiling
    that selector on every call; a comment counts as not plain, which only costs the walk)."""
    for el in node.traverse(include_text=False):
        if el.tag not in _INLINE:
            return False
        attrs = el.attributes
        if attrs and ("class" in attrs or "id" in attrs or "role" in attrs):
            return False
    return True


def _chrome(line: str) -> str:
    """``line``, or only its marker characters when it is page chrome."""
    if line in CHROME_LINES:
        return ""
    if _MARKS.search(line) and _MARKS.sub("", line).strip() in CHROME_LINES:
        return "".join(_MARKS.findall(line))
    return line


@dataclass(slots=True)
class Block:
    text: str
    kind: str  # "text", "heading", "list", "table"


def parser(html: str):
    import selectolax.lexbor as lexbor  # a base dependency
    return lexbor.LexborHTMLParser(html)


def _dropped(node: Any, tag: str) -> bool:
    if tag in DROP_TAGS:
        return True
    attrs = node.attributes
    if not attrs:
        return False
    if attrs.get("id") in DROP_IDS or attrs.get("role") == "navigation":
        return True
    classes = attrs.get("class")
    return bool(classes) and not DROP_CLASSES.isdisjoint(classes.split())


class _Renderer:
    """Walks a subtree, collecting inline text into blocks."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.inline: list[str] = []

    # inline text -------------------------------------------------------------------------------
    def flush(self, kind: str = "text") -> None:
        if not self.inline:
            return
        text = "".join(self.inline)
        self.inline = []
        lines = [_chrome(_ws(line).strip()) for line in text.split("\n")]
        text = "\n".join(line for line in lines if line)
        if kind == "heading":
            marks = "".join(_MARKS.findall(text))  # markers stay, wherever the edit link was
            text = EDIT_LINK.sub("", _MARKS.sub("", text) if marks else text).strip() + marks
        self.add(text, kind)

    def add(self, text: str, kind: str) -> None:
        if text.strip():
            self.blocks.append(Block(text, kind))

    # walking -----------------------------------------------------------------------------------
    def walk(self, node: Any) -> None:
        """Visit every child of ``node``."""
        for child in node.iter(include_text=True):
            self.visit(child)

    def visit(self, child: Any) -> None:
        """Render one node: text and inline elements into the current block, blocks on their own."""
        tag = child.tag
        if tag == "-text":
            self.inline.append(_ws(child.text_content or ""))  # source line breaks are spaces
        elif _dropped(child, tag):
            return
        elif tag == "pre":  # preformatted: its line breaks are real
            self.flush()
            self.add("\n".join(_ws(line).rstrip() for line in (child.text(deep=True) or "").split("\n")), "text")
        elif tag == "br":
            self.inline.append("\n")
        elif tag == "table":
            self.flush()
            self.add(render_table(child), "table")
        elif tag in LIST_TAGS or tag == "dl":
            self.flush()
            self.add("\n".join(_list_lines(child, 0)), "list")
        elif tag in HEADING_TAGS or tag in BLOCK_TAGS:
            self.flush()
            plain = _plain_text(child) if tag in SIMPLE_CANDIDATES else None
            if plain is not None:
                self.inline.append(plain)
            else:
                self.walk(child)
            self.flush("heading" if tag in HEADING_TAGS else "text")
        elif tag == "a" and (child.text() or "").strip() in CHROME_LINES:  # jump links
            return
        elif tag == "sup" and REFERENCE_MARK.match(child.text() or ""):  # [1], [주 2]: footnote marks
            return
        else:  # inline element: a, b, span, sup, ...
            self.walk(child)


def _flat_text(node: Any) -> str:
    """The text of a subtree on one line (table cells)."""
    plain = _plain_text(node)
    if plain is not None:
        return plain.strip()
    r = _Renderer()
    r.walk(node)
    r.flush()
    return _ws(" ".join(b.text for b in r.blocks)).strip()


def render_table(table: Any) -> str:
    lines: list[str] = []
    for child in table.iter(include_text=False):
        tag = child.tag
        if tag == "caption":
            caption = _flat_text(child)
            if caption:
                lines.append(caption)
        elif tag == "tr":
            lines.append(_row(child).strip())
        elif tag in ("thead", "tbody", "tfoot"):
            for row in child.iter(include_text=False):
                if row.tag == "tr":
                    lines.append(_row(row).strip())
    return "\n".join(line for line in lines if line.strip(" |"))


def _row(tr: Any) -> str:
    return " | ".join(_flat_text(cell) for cell in tr.iter(include_text=False) if cell.tag in ("td", "th"))


def _list_lines(node: Any, depth: int) -> list[str]:
    """One line per item of a list (``ul``/``ol``/``dl``); nested lists indented."""
    lines: list[str] = []
    indent = "  " * depth
    for item in node.iter(include_text=True):
        tag = item.tag
        if tag in ("li", "dt", "dd"):
            text, nested = _item(item, depth)
            prefix = "- " if tag == "li" else ""
            if text:
                lines.append(f"{indent}{prefix}{text}")
            lines.extend(nested)
        elif tag in LIST_TAGS or tag == "dl":  # a list directly inside a list (bad but common HTML)
            lines.extend(_list_lines(item, depth + 1))
        elif tag == "-text":
            text = _ws(item.text_content or "").strip()
            if text:
                lines.append(f"{indent}{text}")
        elif not _dropped(item, tag):
            text = _flat_text(item)
            if text:
                lines.append(f"{indent}{text}")
    return lines


def _item(item: Any, depth: int) -> tuple[str, list[str]]:
    """An item's own text on one line, and the lines of the lists nested in it."""
    plain = _plain_text(item)
    if plain is not None:
        return plain.strip(), []
    r = _Renderer()
    nested: list[str] = []
    for child in item.iter(include_text=True):
        if child.tag in LIST_TAGS or child.tag == "dl":
            nested.extend(_list_lines(child, depth + 1))
        else:
            r.visit(child)
    r.flush()
    return _ws(" ".join(b.text for b in r.blocks)).strip(), nested


# ------------------------------------------------------------------------------------------ public


def _root(tree: Any, root_selector: str | None) -> Any:
    root = tree.css_first(root_selector) if root_selector else None
    return root or tree.body or tree.root


def render_blocks(html: str, root_selector: str | None = None) -> tuple[list[Block], dict[str, int]]:
    """The page's blocks (normalised text) and, for each marker character found, its block index.

    Marker characters are removed from the blocks. A marker that falls in a block with no other text
    (between two elements) belongs to the next block.
    """
    root = _root(parser(html), root_selector)
    r = _Renderer()
    if root is not None:
        r.walk(root)
    r.flush()
    return _finish(r.blocks, bool(_MARKS.search(html)))  # markers, or private-use characters of the page


def _finish(raw: list[Block], has_marks: bool) -> tuple[list[Block], dict[str, int]]:
    """Rendered blocks as :func:`render_blocks` returns them: table of contents dropped, markers
    taken out and placed, texts normalised, empty blocks dropped."""
    blocks: list[Block] = []
    marks: dict[str, int] = {}
    waiting: list[str] = []
    skip = _toc_blocks(raw)
    for i, block in enumerate(raw):
        text = block.text
        if i in skip:
            waiting.extend(_MARKS.findall(text))
            continue
        if has_marks:
            found = _MARKS.findall(text)
            if found:
                waiting.extend(found)
                text = _MARKS.sub("", text)
        text = normalize_text(text)
        if not text:
            continue
        for mark in waiting:
            marks[mark] = len(blocks)
        waiting = []
        blocks.append(Block(text, block.kind))
    for mark in waiting:  # markers after the last text
        marks[mark] = max(len(blocks) - 1, 0)
    return blocks, marks


# Tags whose element visit() renders as "flush, walk the children, flush": their children can be
# rendered one unit at a time with the same blocks (see Page).
_CONTAINERS = BLOCK_TAGS - SIMPLE_CANDIDATES - HEADING_TAGS - {"pre"}
_UNIT_TAGS = SIMPLE_CANDIDATES | HEADING_TAGS | LIST_TAGS | {"pre", "table", "dl"}


_UNSAFE = re.compile("[^" + "".join(f"\\U{a:08X}-\\U{b:08X}" for a, b in SAFE_RANGES) + "]")
_NOT_CONTENT = re.compile(r"[\s|\-\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\x00-\x1f\x7f-\x9f]+")


def _content(text: str) -> tuple[str, bool]:
    """The characters of ``text`` that rendering and normalisation keep (white space, separators and
    invisible characters left out), and whether they are all NFC-stable characters that never
    compose with a neighbour (``normalize.SAFE_RANGES``); when not, they are given in NFD."""
    kept = _NOT_CONTENT.sub("", text)
    if _UNSAFE.search(kept) is None:
        return kept, True
    return _NOT_CONTENT.sub("", unicodedata.normalize("NFD", kept)), False


# The characters that let a unit's text be counted as it is (Page._stable): NFC-stable (SAFE_RANGES),
# left out of the content (_NOT_CONTENT), or markers (private use).
_STABLE_CHARS = (
    "".join(f"\\U{a:08X}-\\U{b:08X}" for a, b in SAFE_RANGES)
    + r"\s|\-\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\x00-\x1f\x7f-\x9f\ue000-\uf8ff"
)
_STABLE_RUN = re.compile("[" + _STABLE_CHARS + "]*")


def _outwards(start: int, n: int) -> Iterator[int]:
    """``start``, ``start - 1``, ``start + 1``, ... : every index of ``range(n)`` once."""
    yield start
    for d in range(1, n):
        if start - d >= 0:
            yield start - d
        if start + d < n:
            yield start + d
        if start - d < 0 and start + d >= n:
            return


def _tally(text: str) -> list[tuple[str, int]]:
    return sorted(((c, text.count(c)) for c in set(text)), key=lambda kv: -kv[1])


class Window(list):
    """A run of consecutive blocks of a page that records which of its indices were looked at."""

    def __init__(self, blocks: list[Block], at_start: bool, at_end: bool) -> None:
        super().__init__(blocks)
        self.at_start, self.at_end = at_start, at_end
        self.low, self.high = len(blocks), -1

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, slice):
            start, stop, _ = key.indices(len(self))
            if stop > start:
                self.low, self.high = min(self.low, start), max(self.high, stop - 1)
        else:
            i = key if key >= 0 else key + len(self)
            self.low, self.high = min(self.low, i), max(self.high, i)
        return super().__getitem__(key)

    def settled(self) -> bool:
        """Whether everything read stayed off the window's edges (so the whole page gives the same)."""
        return (self.at_start or self.low > 0) and (self.at_end or self.high < len(self) - 1)


class Page:
    """A page parsed once and rendered piece by piece: the blocks around a marker on demand.

    The page's body is cut into units (an element rendered as its own blocks, or a run of text and
    inline elements between them) at the points where the renderer starts a new block anyway, so
    the blocks of consecutive units are exactly that part of :func:`render_blocks`' blocks. Each
    unit is rendered at most once.
    """

    def __init__(
        self, html: str, root_selector: str | None = None, marks: dict[str, int] | None = None, reach_chars: int | None = None
    ) -> None:
        """``marks``: where each marker character was put into ``html`` (a hint for :meth:`unit_of`);
        ``reach_chars``: how far the first window around a marker reaches (:meth:`windows`)."""
        self.reach_chars = reach_chars
        self.has_marks = bool(marks) or bool(_MARKS.search(html))  # markers put in are in it
        self.units: list[list[Any]] = []
        root = _root(parser(html), root_selector)
        if root is not None:
            self._plan(root)
        self.rendered: dict[int, list[Block]] = {}
        self.hints = {mark: pos / max(len(html), 1) for mark, pos in (marks or {}).items()}
        self._texts: list[str | None] = [None] * len(self.units)
        self._stable_units: list[bool] | None = None

    def _plan(self, node: Any) -> None:
        run: list[Any] = []
        for child in node.iter(include_text=True):
            tag = child.tag
            if tag == "-text" or tag not in _UNIT_TAGS and tag not in _CONTAINERS or _dropped(child, tag):
                run.append(child)  # inline: text, br, a, span, ... (dropped elements render nothing)
                continue
            self._add_run(run)
            run = []
            if tag in _CONTAINERS:
                self._plan(child)
            else:
                self.units.append([child])
        self._add_run(run)

    def _add_run(self, run: list[Any]) -> None:
        # a run of white space between elements renders nothing: it is no unit
        if any(n.tag != "-text" or (n.text_content or "").strip(" \t\n\r\f\v\xa0") for n in run):
            self.units.append(run)

    def _raw(self, u: int) -> list[Block]:
        blocks = self.rendered.get(u)
        if blocks is None:
            r = _Renderer()
            for node in self.units[u]:
                r.visit(node)
            r.flush()
            blocks = self.rendered[u] = r.blocks
        return blocks

    def unit_of(self, mark: str) -> int | None:
        """The unit whose source text holds ``mark``. Only one can (a marker character occurs once),
        so units are looked at outwards from where the marker's offset in the HTML suggests
        (``hints``), computing the text of as few units as it takes."""
        n = len(self.units)
        if not n:
            return None
        hint = self.hints.get(mark)
        start = min(int(hint * n), n - 1) if hint is not None and n else 0
        for u in _outwards(start, n):
            if mark in self._unit_text(u):
                return u
        return None

    def may_hold(self, text: str) -> bool:
        """False only when no block of the page can hold the one-line ``text`` (so the whole page
        need not be rendered to look for it). A block's characters, apart from white space and the
        separators rendering adds (``|``, ``-``), are some of its unit's source characters (up to
        Unicode normalisation, hence counted in NFD when a unit has characters that normalisation
        may change): a unit without enough of each is skipped; the blocks of the others are
        rendered and looked at. A unit whose characters are all NFC-stable (:func:`_content`) is
        counted in its source text as it is (the characters left out of the content are none of
        the answer's), so only the others are cut down to their content."""
        if "\n" in text:
            return True
        need, safe = _content(text)
        counts = _tally(need)
        nfd: tuple[str, list[tuple[str, int]]] | None = (need, counts) if not safe else None
        stable = self._stable()
        size, (first, most) = len(need), counts[0] if counts else ("", 0)
        for u, have in enumerate(self._texts):
            if stable[u]:  # the unit's content is its text's characters as they are
                if len(have) < size or have.count(first) < most or not all(have.count(c) >= k for c, k in counts):
                    continue
            else:
                if nfd is None:  # the answer in the unit's form
                    got = _content(unicodedata.normalize("NFD", text))[0]
                    nfd = (got, _tally(got))
                got, got_counts = nfd
                have = _content(_MARKS.sub("", self._unit_text(u)))[0]
                if len(have) < len(got) or not all(have.count(c) >= k for c, k in got_counts):
                    continue
            for block in self._raw(u):
                if text in normalize_text(_MARKS.sub("", block.text)):
                    return True
        return False

    def _stable(self) -> list[bool]:
        """For each unit, whether all of its content characters are NFC-stable (what
        :func:`_content` calls safe), found with one regex pass over the page's text."""
        if self._stable_units is None:
            texts = [self._unit_text(u) for u in range(len(self.units))]
            stable = [True] * len(texts)
            ends, total = [], 0
            for t in texts:
                total += len(t) + 1
                ends.append(total)
            joined = "\n".join(texts)
            pos = 0
            while True:
                at = _STABLE_RUN.match(joined, pos).end()  # a run of stable characters: faster than a search
                if at == len(joined):
                    break
                u = bisect.bisect_right(ends, at)
                stable[u] = False
                pos = ends[u]
            self._stable_units = stable
        return self._stable_units

    def _unit_text(self, u: int) -> str:
        text = self._texts[u]
        if text is None:
            unit = self.units[u]
            if len(unit) == 1:
                n = unit[0]
                text = (n.text_content if n.tag == "-text" else n.text(deep=True)) or ""
            else:
                text = "".join((n.text_content if n.tag == "-text" else n.text(deep=True)) or "" for n in unit)
            self._texts[u] = text
        return text

    def _reach(self, u: int, step: int, chars: int, margin: int = 1) -> int:
        """The unit ``step`` (-1 or 1) units at a time from ``u`` where ``chars`` characters of
        blocks have been passed or a heading reached, and ``margin`` units with blocks more."""
        size, more, v, end = 0, None, u, (0 if step < 0 else len(self.units) - 1)
        while v != end and (more is None or more > 0):
            v += step
            blocks = self._raw(v)
            if more is not None:
                more -= 1 if blocks else 0
                continue
            size += sum(len(b.text) + 2 for b in blocks)
            if size > chars or any(b.kind == "heading" for b in blocks):
                more = margin
        return v

    def window(self, first: int, last: int) -> tuple[Window, dict[str, int]]:
        """Blocks and markers of units ``first..last`` (clipped to the page)."""
        first, last = max(first, 0), min(last, len(self.units) - 1)
        raw = [b for u in range(first, last + 1) for b in self._raw(u)]
        blocks, marks = _finish(raw, self.has_marks)
        return Window(blocks, first == 0, last == len(self.units) - 1), marks

    def windows(self, mark: str | None, reach: int = 4) -> Iterator[tuple[Window, dict[str, int]]]:
        """Ever wider windows around the unit of ``mark``, ending with the whole page. With
        ``reach_chars``, the first one reaches that many rendered characters or a heading each way
        (and two units more: what the search looks at next to its edge)."""
        u = self.unit_of(mark) if mark is not None else None
        if u is not None:
            if self.reach_chars is not None:
                first, last = self._reach(u, -1, self.reach_chars), self._reach(u, 1, self.reach_chars)
                yield self.window(first, last)
                reach = 4 * max(u - first, last - u, 1)
            while reach < len(self.units):
                yield self.window(u - reach, u + reach)
                reach *= 4
        yield self.window(0, len(self.units) - 1)


TOC_TITLES = frozenset({"목차", "Contents", "차례"})


def _toc_blocks(blocks: list[Block]) -> set[int]:
    """Indices of table-of-contents blocks: a ``목차`` heading and the list that follows it."""
    skip: set[int] = set()
    for i, block in enumerate(blocks[:-1]):
        if block.kind == "heading" and _MARKS.sub("", block.text).strip() in TOC_TITLES and blocks[i + 1].kind == "list":
            skip.update((i, i + 1))
    return skip


_WRAP = (
    (re.compile(r"^\s*<t[dh][\s>]", re.I), "<table><tr>", "</tr></table>"),
    (re.compile(r"^\s*<tr[\s>]", re.I), "<table>", "</table>"),
    (re.compile(r"^\s*<(?:thead|tbody|tfoot)[\s>]", re.I), "<table>", "</table>"),
    (re.compile(r"^\s*<li[\s>]", re.I), "<ul>", "</ul>"),
    (re.compile(r"^\s*<d[td][\s>]", re.I), "<dl>", "</dl>"),
)


def render_fragment(fragment: str) -> str:
    """A piece of HTML (an answer) rendered by the page's rules, blocks joined by a blank line."""
    if "<" not in fragment and "&" not in fragment:
        return normalize_text(_ws(fragment))
    for pattern, before, after in _WRAP:
        if pattern.match(fragment):  # cells or items cut out of their table or list
            fragment = before + fragment + after
            break
    blocks, _ = render_blocks(fragment)
    return join_blocks(blocks)


def one_line(text: str) -> str:
    """Rendered text as a table cell or list item renders it: every line break a space."""
    return normalize_text(_ws(text).strip())


def join_blocks(blocks: list[Block]) -> str:
    return "\n\n".join(b.text for b in blocks)


def mark_chars(html: str, count: int) -> list[str]:
    """``count`` private-use characters that do not occur in ``html`` (to mark offsets with)."""
    if count <= 0:
        return []
    out: list[str] = []
    present: set[str] | str = html  # a find per candidate: cheaper than a regex over the page ...
    for code in range(MARK_FIRST, MARK_LAST + 1):
        ch = chr(code)
        if code - MARK_FIRST == len(out) + 8 and present is html:  # ... unless the page uses many
            present = set(_MARKS.findall(html))
        if ch not in present:
            out.append(ch)
            if len(out) == count:
                break
    return out


def inside_tag(html: str, pos: int) -> bool:
    """Whether ``pos`` falls inside a tag (``<a href=...>``) rather than between tags."""
    return html.rfind("<", 0, pos) > html.rfind(">", 0, pos)
