import pytest

from kodolly.errors import ConfigError
from kodolly.filters.content import ContentFilter, parse_bounds

from kodolly.rows import make_row


def row(id="r", instruction="질문입니다", response="답입니다", **fields):
    """A row as the pipeline hands it to filters (already normalised)."""
    return make_row(instruction=instruction, response=response, source="test", id=id, **fields)

LFS = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 12345"


def test_default_checks_empty_lfs_and_echo():
    flt = ContentFilter()
    rows = [
        row("ok"),
        row("e1", instruction=""),
        row("e2", response=""),
        row("lfs", response=LFS),
        row("lfs2", context=LFS),
        row("echo", instruction="같은 말", response="같은 말"),
    ]
    assert flt.apply(rows) == [
        None,
        "content_empty_instruction",
        "content_empty_response",
        "content_lfs_pointer",
        "content_lfs_pointer",
        "content_response_equals_instruction",
    ]


def test_echo_ignores_whitespace_but_not_punctuation():
    flt = ContentFilter()
    rows = [
        row("nl", instruction="물의 끓는점은 몇 도인가요?", response="물의 끓는점은\n몇 도인가요?"),
        row("sp", instruction="물의 끓는점은 몇 도인가요?", response="물의끓는점은 몇 도인가요?"),
        row("dot", instruction="물의 끓는점은 몇 도인가요?", response="물의 끓는점은 몇 도인가요."),
    ]
    assert flt.apply(rows) == ["content_response_equals_instruction", "content_response_equals_instruction", None]


def test_checks_can_be_turned_off():
    flt = ContentFilter(lfs_pointers=False, echo=False)
    assert flt.apply([row("lfs", response=LFS), row("echo", instruction="a", response="a")]) == [None, None]


def test_length_bounds_per_field_and_total():
    flt = ContentFilter(min_chars={"response": 3, "instruction": 2}, max_chars="total=12,context=4")
    rows = [
        row("ok", instruction="질문", response="답입니다"),
        row("short_r", instruction="질문", response="답"),
        row("short_i", instruction="질", response="답입니다"),
        row("long_c", instruction="질문", response="답입니다", context="맥락이깁니다"),
        row("long_t", instruction="질문입니다요요", response="답입니다요요"),
    ]
    assert flt.apply(rows) == [
        None,
        "content_too_short:response",
        "content_too_short:instruction",
        "content_too_long:context",
        "content_too_long:total",
    ]


def test_hangul_share_bound_on_response_and_instruction():
    flt = ContentFilter(min_hangul={"response": 0.5, "instruction": 0.3})
    rows = [
        row("ko", instruction="서울은 어디?", response="서울은 한국의 수도입니다."),
        row("half", instruction="서울은 어디?", response="Seoul is the capital 입니다."),
        row("en_q", instruction="Where is Seoul?", response="서울은 한국의 수도입니다."),
        row("digits", instruction="1+1은?", response="2"),
    ]
    assert flt.apply(rows) == [None, "content_hangul_share:response", "content_hangul_share:instruction", "content_hangul_share:response"]


def test_cheap_checks_come_first():
    flt = ContentFilter(min_chars=10, min_hangul=0.9)
    assert flt.apply([row("x", instruction="abc", response="abc")]) == ["content_response_equals_instruction"]


def test_bare_number_applies_to_response():
    assert parse_bounds(5, allowed=("response", "total"), what="min_chars", integer=True) == {"response": 5}
    assert parse_bounds(["7", "total=100"], allowed=("response", "total"), what="x", integer=True) == {"response": 7, "total": 100}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_chars": "reply=3"}, "unknown field 'reply'"),
        ({"min_chars": "2.5"}, "whole number"),
        ({"min_hangul": "1.5"}, "between 0 and 1"),
        ({"min_chars": 10, "max_chars": 5}, "below min_chars"),
    ],
)
def test_bad_bounds_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ContentFilter(**kwargs)
