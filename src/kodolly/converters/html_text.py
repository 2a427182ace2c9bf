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

import re
from dataclasses import dataclass
from typing import Any

from ..normalize import normalize_text

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

MARK_FIRST, MARK_LAST = 0xE000, 0xF8FF  # Unicode private use area
_MARKS = re.compile("[\ue000-\uf8ff]")


# Plain inline markup: a node holding only text and these (without attributes) renders as its text.
INLINE_TAGS = (
    "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "del", "dfn", "em", "font", "i", "ins", "kbd",
    "label", "mark", "nobr", "q", "rp", "rt", "ruby", "s", "samp", "small", "span", "strike", "strong",
    "sub", "time", "tt", "u", "var",  # not sup: it may be a reference mark (see visit)
)
_NOT_PLAIN = "*" + "".join(f":not({t})" for t in INLINE_TAGS) + ", [class], [id], [role]"
_CHROME = re.compile("|".join(re.escape(line) for line in sorted(CHROME_LINES)))
SIMPLE_CANDIDATES = frozenset({"p", "td", "th", "li", "dt", "dd", "caption"}) | HEADING_TAGS


def _plain_text(node: Any) -> str | None:
    """Fast path: the whitespace-collapsed text of a node that holds only text and plain inline
    markup (what walking it would give, computed in C), else ``None``."""
    for child in node.iter(include_text=False):
        if child.css_first(_NOT_PLAIN) is not None:
            return None
    text = _WS.sub(" ", node.text(deep=True) or "")
    return None if _CHROME.search(text) else text


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
        lines = [_chrome(_WS.sub(" ", line).strip()) for line in text.split("\n")]
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
            self.inline.append(_WS.sub(" ", child.text_content or ""))  # source line breaks are spaces
        elif _dropped(child, tag):
            return
        elif tag == "pre":  # preformatted: its line breaks are real
            self.flush()
            self.add("\n".join(_WS.sub(" ", line).rstrip() for line in (child.text(deep=True) or "").split("\n")), "text")
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
    return _WS.sub(" ", " ".join(b.text for b in r.blocks)).strip()


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
            text = _WS.sub(" ", item.text_content or "").strip()
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
    return _WS.sub(" ", " ".join(b.text for b in r.blocks)).strip(), nested


# ------------------------------------------------------------------------------------------ public


def render_blocks(html: str, root_selector: str | None = None) -> tuple[list[Block], dict[str, int]]:
    """The page's blocks (normalised text) and, for each marker character found, its block index.

    Marker characters are removed from the blocks. A marker that falls in a block with no other text
    (between two elements) belongs to the next block.
    """
    tree = parser(html)
    root = tree.css_first(root_selector) if root_selector else None
    root = root or tree.body or tree.root
    r = _Renderer()
    if root is not None:
        r.walk(root)
    r.flush()
    blocks: list[Block] = []
    marks: dict[str, int] = {}
    waiting: list[str] = []
    has_marks = bool(_MARKS.search(html))  # markers, or private-use characters of the page: both go
    skip = _toc_blocks(r.blocks)
    for i, block in enumerate(r.blocks):
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
        return normalize_text(_WS.sub(" ", fragment))
    for pattern, before, after in _WRAP:
        if pattern.match(fragment):  # cells or items cut out of their table or list
            fragment = before + fragment + after
            break
    blocks, _ = render_blocks(fragment)
    return join_blocks(blocks)


def one_line(text: str) -> str:
    """Rendered text as a table cell or list item renders it: every line break a space."""
    return normalize_text(_WS.sub(" ", text).strip())


def join_blocks(blocks: list[Block]) -> str:
    return "\n\n".join(b.text for b in blocks)


def mark_chars(html: str, count: int) -> list[str]:
    """``count`` private-use characters that do not occur in ``html`` (to mark offsets with)."""
    if count <= 0:
        return []
    present = set(_MARKS.findall(html)) if _MARKS.search(html) else set()
    out: list[str] = []
    for code in range(MARK_FIRST, MARK_LAST + 1):
        ch = chr(code)
        if ch not in present:
            out.append(ch)
            if len(out) == count:
                break
    return out


def inside_tag(html: str, pos: int) -> bool:
    """Whether ``pos`` falls inside a tag (``<a href=...>``) rather than between tags."""
    return html.rfind("<", 0, pos) > html.rfind(">", 0, pos)
