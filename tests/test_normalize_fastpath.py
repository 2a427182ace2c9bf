"""The fast check behind the parallel path: a text it does not flag is left unchanged by normalize_text."""

from __future__ import annotations

import random
import re
import unicodedata

import pyarrow as pa
import pyarrow.compute as pc

from kodolly.normalize import _TABLE, SAFE_RANGES, needs_work_pattern, normalize_text


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


def test_unflagged_texts_come_out_unchanged_and_re2_agrees_with_re():
    rng = random.Random(1)
    python_re = re.compile(needs_work_pattern())
    texts = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12))) for _ in range(20000)]
    texts += ["", "가", " 가", "가 ", "가\n", "a  b", "a \nb", "a\n\n\nb", "a\n\nb", "\t가"]
    flagged_re2 = pc.match_substring_regex(pa.array(texts), needs_work_pattern(re2=True)).to_pylist()
    unflagged = 0
    for text, re2_flag in zip(texts, flagged_re2):
        flag = python_re.search(text) is not None
        assert flag == re2_flag, repr(text)
        if not flag:
            unflagged += 1
            assert normalize_text(text) == text, repr(text)
        elif normalize_text(text) != text:
            pass  # flagged texts may or may not change; they go through normalize_text
    assert 1000 < unflagged < 19000
