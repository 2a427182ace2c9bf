"""HTML rendering rules used by korquad2: readable blocks, answers rendered the same way."""

from __future__ import annotations

from kodolly.converters.html_text import Page, inside_tag, join_blocks, mark_chars, render_blocks, render_fragment


def _render(html: str) -> list[tuple[str, str]]:
    blocks, _ = render_blocks(html)
    return [(b.kind, b.text) for b in blocks]


def test_paragraphs_headings_and_edit_links():
    html = (
        "<html><body><h2><span></span><span>역사</span><span><span>[</span><a>편집</a><span>]</span></span></h2>\n"
        "<p>첫 <b>문단</b>이다.\n둘째 줄.</p><p>줄<br>바꿈</p></body></html>"
    )
    assert _render(html) == [("heading", "역사"), ("text", "첫 문단이다. 둘째 줄."), ("text", "줄\n바꿈")]


def test_scripts_styles_comments_and_raw_html_navigation_are_dropped():
    html = (
        '<html><head><title>제목</title><style>p{color:red}</style><script>var a = "보이면 안 됨";</script></head>'
        '<body><div id="mw-navigation"><h2>둘러보기 메뉴</h2><ul><li>대문</li></ul></div>'
        '<nav>목차</nav><!-- 주석 --><p>본문<span class="mw-editsection">[편집]</span></p>'
        "<div>위키백과, 우리 모두의 백과사전.</div><div><a>둘러보기로 가기</a>\n<a>검색하러 가기</a></div>"
        "<script>mw.config.set({});</script><noscript>자바스크립트</noscript></body></html>"
    )
    assert _render(html) == [("text", "본문")]


def test_nbsp_and_source_whitespace_become_one_space():
    assert _render("<p>최초의\xa0인도교\n\n   이다&nbsp;&nbsp;정말</p>") == [("text", "최초의 인도교 이다 정말")]


def test_lists_as_lines_nested_indented():
    html = "<ul><li><a>노들섬</a></li>\n<li>전망 <b>카페</b>\n<ul><li>직녀카페</li><li>견우카페</li></ul></li><li>정자</li></ul><ol><li>하나</li></ol>"
    assert _render(html) == [
        ("list", "- 노들섬\n- 전망 카페\n  - 직녀카페\n  - 견우카페\n- 정자"),
        ("list", "- 하나"),
    ]


def test_tables_as_rows_with_header_and_caption():
    html = (
        "<table><caption>제원</caption><tbody><tr><th>구분</th><th>길이</th></tr>"
        "<tr><td>북단</td><td>440<br>m</td></tr><tr><td></td><td>565m</td></tr>"
        "<tr><td>중첩</td><td><table><tr><td>안</td><td>표</td></tr></table></td></tr></tbody></table>"
    )
    assert _render(html) == [("table", "제원\n구분 | 길이\n북단 | 440 m\n| 565m\n중첩 | 안 | 표")]


def test_fragments_render_like_the_page():
    table = "<table><tbody><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></tbody></table>"
    page = join_blocks(render_blocks(f"<p>앞</p>{table}<p>뒤</p>")[0])
    assert render_fragment(table) in page
    assert render_fragment("<tr><td>1</td><td>2</td></tr>") == "1 | 2"
    assert render_fragment("<td>1</td><td>2</td>") == "1 | 2"
    assert render_fragment("<li>가</li><li>나</li>") == "- 가\n- 나"
    assert render_fragment("최초의\xa0인도교 ") == "최초의 인도교"
    assert render_fragment("<p>가</p><p>나</p>") == "가\n\n나"


def test_markers_report_their_block_and_are_removed():
    a, b = mark_chars("<p>x</p>", 2)
    html = f"<p>앞 문단</p>{a}<table><tr><td>{b}332cm</td></tr></table>"
    blocks, marks = render_blocks(html)
    assert [x.text for x in blocks] == ["앞 문단", "332cm"]
    assert marks == {a: 1, b: 1}


def test_mark_chars_avoid_characters_present_in_the_page():
    assert "\ue000" not in mark_chars("<p>\ue000</p>", 3) and len(mark_chars("", 3)) == 3
    assert mark_chars("<p>x</p>", 0) == []


def test_inside_tag():
    html = '<a href="x">글</a>'
    assert inside_tag(html, 3) and not inside_tag(html, html.index("글"))


def test_footnote_marks_are_dropped_other_superscripts_kept():
    html = "<p>폭파되었다.<sup><a>[1]</a></sup> 넓이 10m<sup>2</sup><sup>[주 3]</sup></p>"
    assert _render(html) == [("text", "폭파되었다. 넓이 10m2")]
    assert render_fragment("폭파되었다.<sup>[1]</sup>") == "폭파되었다."


def test_table_of_contents_is_dropped():
    html = (
        "<p>소개 문단</p><div><div><h2>목차</h2></div><ul><li><a><span>1</span> <span>역사</span></a></li></ul></div>"
        "<h2><span></span><span>역사</span></h2><p>본문</p>"
    )
    assert _render(html) == [("text", "소개 문단"), ("heading", "역사"), ("text", "본문")]


def _generated_pages():
    import random

    from benchmarks.gen_korquad import korquad2_page

    rng = random.Random(5)
    return [korquad2_page(rng, n, 12_000) for n in range(6)]


def test_page_units_render_the_same_blocks_as_the_whole_page():
    a, b = mark_chars("", 2)
    tricky = (
        f"<body>앞 글<div>안 <b>굵게</b><p>문단{a}</p>꼬리<br>둘째</div>\n  \n<script>x</script>"
        f"<h2>목차</h2><ul><li>하나</li></ul><div><div>깊이 <sup>[1]</sup>{b}</div><table><tr><td>1</td></tr></table></div>끝</body>"
    )
    for html in [tricky] + [p["context"] for p in _generated_pages()] + [p["raw_html"] for p in _generated_pages()[:2]]:
        page = Page(html)
        blocks, marks = page.window(0, len(page.units) - 1)
        assert (list(blocks), marks) == render_blocks(html)
        assert blocks.settled()


def test_windowed_korquad2_rows_equal_the_whole_page_rows(monkeypatch):
    from kodolly.converters import Context, korquad2
    from kodolly.io.readers import Location

    pages = _generated_pages()
    ctx = Context(source="kq2", options={}, license="x")
    windowed = [r for i, p in enumerate(pages) for r in korquad2.convert(p, Location("p.json", i), ctx)]
    # the whole page at once: the last (whole-page) window only
    monkeypatch.setattr(Page, "windows", lambda self, mark, reach=4: iter([self.window(0, len(self.units) - 1)]))
    whole = [r for i, p in enumerate(pages) for r in korquad2.convert(p, Location("p.json", i), ctx)]
    assert len(windowed) == len(whole) > 6
    assert windowed == whole
    assert any(isinstance(r, dict) and r["meta"]["answer_type"] in ("table", "list") for r in whole)


def test_white_space_collapsing_is_the_regex_it_replaces():
    from kodolly.converters.html_text import _WS, _ws

    for text in ["", "a", "a b", "a  b", " \t\n\r\f\v\xa0", "가\n나", "x\xa0 \ny", "  앞뒤  ", "a\u3000b", "a\x1cb", "\n\n\n"]:
        assert _ws(text) == _WS.sub(" ", text), repr(text)


def test_plain_inline_markup_is_found_without_a_css_selector():
    # an attribute, a footnote <sup>, a comment or a block inside an item or cell: walked, not taken as plain text
    html = (
        "<ul><li><a>링크</a> 본문</li><li><b class=x>속성</b> 있음</li><li>각주<sup>[1]</sup> 뒤</li>"
        "<li>주석<!-- c --> 뒤</li><li><span><i>깊은</i></span> 인라인</li></ul>"
        "<table><tr><td>x<div>y</div></td><td><span id=a>아이디</span></td></tr></table>"
    )
    assert _render(html) == [
        ("list", "- 링크 본문\n- 속성 있음\n- 각주 뒤\n- 주석 뒤\n- 깊은 인라인"),
        ("table", "x y | 아이디"),
    ]


def test_one_line_check_finds_a_rendering_in_any_unit_nfc_stable_or_not():
    import unicodedata

    flat = "하나 | 둘 셋 | 넷"
    table = "<table><tr><td>하나</td><td>둘</td></tr><tr><td>셋</td><td>넷</td></tr></table>"
    nfd = unicodedata.normalize("NFD", "<p>앞에 하나 | 둘 셋 | 넷 이 있다</p>")
    for html, held in [
        (f"<body>{table}<p>다른 문단</p></body>", False),
        (f"<body>{table}<p>여기 하나 | 둘 셋 | 넷 이 있다</p></body>", True),  # an NFC-stable unit, counted as it is
        (f"<body>{table}{nfd}</body>", True),  # decomposed Hangul: counted in NFD, found once normalised
        (f"<body>{table}<ul><li>하나 | 둘<ul><li>셋</li></ul></li></ul></body>", False),
        (f"<body>{table}<table><tr><td>하나 | 둘 셋</td><td>넷</td></tr></table></body>", True),
    ]:
        assert Page(html).may_hold(flat) is held, html


def test_marker_characters_skip_those_the_page_uses_even_many():
    used = "".join(chr(c) for c in range(0xE000, 0xE010)) + chr(0xE011)
    assert mark_chars(f"<p>{used}</p>", 3) == [chr(0xE010), chr(0xE012), chr(0xE013)]
    assert mark_chars("<p>\ue001</p>", 2) == ["\ue000", "\ue002"]


def test_the_markers_unit_is_the_same_whatever_the_hint():
    a, b = mark_chars("", 2)
    html = f"<body><p>하나</p><h2>제목</h2><p>둘{a}</p><table><tr><td>셋</td></tr></table><p>넷{b}</p>끝</body>"
    plain = Page(html)
    for hints in [{a: 0, b: 0}, {a: len(html), b: len(html)}, {a: html.index(a), b: html.index(b)}]:
        page = Page(html, marks=hints)
        assert page.has_marks
        assert [page.unit_of(m) for m in (a, b)] == [plain.unit_of(m) for m in (a, b)] == [2, 4]
