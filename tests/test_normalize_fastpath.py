"""The fast check behind the columnar path: a text the clean pattern matches in full is left unchanged by
normalize_text, and (in RE2, on Arrow's bytes) is valid UTF-8."""

from __future__ import annotations

import random
import re
import unicodedata

import pyarrow as pa
import pyarrow.compute as pc

from kodolly.normalize import _TABLE, SAFE_RANGES, clean_pattern, normalize_text


def _composition_second_chars() -> set[int]:
    seconds = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))  # Hangul V and T jamo
    for c in range(0x10000):
        decomposition = unicodedata.decomposition(chr(c))
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2:
                seconds.add(int(parts[1], 16))
    return seconds


def test_safe_characters_never_change_or_combine():
    seconds = _composition_second_chars()
    for lo, hi in SAFE_RANGES:
        for c in range(lo, hi + 1):
            ch = chr(c)
            assert unicodedata.is_normalized("NFC", ch), hex(c)
            assert unicodedata.combining(ch) == 0, hex(c)
            assert c not in seconds, hex(c)
            assert c not in _TABLE and not ch.isspace(), hex(c)


ALPHABET = "가힣한글 abc Z09.?\n\t  " + "\u1100\u1161\u0301\u00a0\u200b\r\u3000\u2028\u201c\u00e9\ufeff\x7f"


def test_clean_texts_come_out_unchanged_and_re2_agrees_with_re():
    rng = random.Random(1)
    python_re = re.compile(clean_pattern())
    texts = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12))) for _ in range(20000)]
    edge = ["", "가", " 가", "가 ", "가\n", "a  b", "a \nb", "a\t\nb", "a\n\n\nb", "a\n\nb", "\t가", "a \tb", "a\t b",
            "a\t\tb", "a\n\tb", "a\n b", "a\n  b", "a\n\n b\tc"]
    texts += edge
    clean_re2 = pc.match_substring_regex(pa.array(texts), clean_pattern(re2=True)).to_pylist()
    clean_count = 0
    for text, re2_clean in zip(texts, clean_re2):
        clean = python_re.fullmatch(text) is not None
        assert clean == re2_clean, repr(text)
        if clean:
            clean_count += 1
            assert normalize_text(text) == text, repr(text)
    assert 1000 < clean_count < 19000
    assert dict(zip(edge, clean_re2[-len(edge):])) == {
        "": True, "가": True, " 가": False, "가 ": False, "가\n": False, "a  b": False, "a \nb": False, "a\t\nb": False,
        "a\n\n\nb": False, "a\n\nb": True, "\t가": False, "a \tb": True, "a\t b": True, "a\t\tb": True, "a\n\tb": True,
        "a\n b": True, "a\n  b": False, "a\n\n b\tc": True,
    }


def test_clean_pattern_never_matches_invalid_utf8():
    """The columnar path skips Arrow's UTF-8 validation of the text columns: the pattern is it."""
    bad = [b"ab\x80cd", b"ab\xea\xb0", b"\xea\xb0a", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff",
           b"a\xe2\x82", "가나다".encode()[:-1], "가나".encode()[1:], b"\xe4\xb8"]
    good = ["가나".encode(), b"abc", "中文 가".encode()]
    binary = pa.array(bad + good, pa.binary())
    strings = pa.Array.from_buffers(pa.string(), len(binary), binary.buffers())  # unchecked, as pyarrow.json leaves them
    assert pc.match_substring_regex(strings, clean_pattern(re2=True)).to_pylist() == [False] * len(bad) + [True] * len(good)
