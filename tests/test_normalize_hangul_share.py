import random

from kodolly.normalize import hangul_share


def _reference(text):
    letters = hangul = 0
    for ch in text:
        if ch.isalpha():
            letters += 1
            o = ord(ch)
            if 0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F:
                hangul += 1
    return hangul / letters if letters else 0.0


def test_examples():
    assert hangul_share("") == 0.0
    assert hangul_share("123 !?") == 0.0
    assert hangul_share("Seoul") == 0.0
    assert hangul_share("서울") == 1.0
    assert hangul_share("서울 Seoul") == 2 / 7
    assert hangul_share("ㄱㄴ abc") == 2 / 5  # compatibility jamo count as Hangul
    assert hangul_share("漢字 한자") == 0.5  # CJK ideographs are letters that are not Hangul


def test_matches_the_plain_loop_on_mixed_text():
    rnd = random.Random(5)
    pool = [chr(c) for c in [*range(0x20, 0x250), *range(0x1100, 0x1200), *range(0x3130, 0x3190),
                             *range(0xAC00, 0xAC30), *range(0xD790, 0xD7B0), *range(0x4E00, 0x4E20), 0x2026, 0xFF21, 0x00B2]]
    for _ in range(3000):
        text = "".join(rnd.choice(pool) for _ in range(rnd.randint(0, 40)))
        assert hangul_share(text) == _reference(text), text
