import unicodedata

from kodolly.normalize import hangul_share, normalize_text


def test_nfd_hangul_to_nfc():
    assert normalize_text(unicodedata.normalize("NFD", "한국어 데이터")) == "한국어 데이터"


def test_invisible_characters_removed():
    assert normalize_text("가\u200b나\u200c다\u200d라\u2060마\ufeff바\u00ad사") == "가나다라마바사"
    assert normalize_text("a\x00b\x07c\x7fd") == "abcd"


def test_odd_spaces_become_one_space_and_lines_are_tidied():
    assert normalize_text("가\xa0\xa0나\u3000다") == "가 나 다"
    assert normalize_text("  첫 줄   \r\n\r\n\r\n\r\n둘째 줄\t \r셋째  ") == "첫 줄\n\n둘째 줄\n셋째"


def test_newlines_and_code_indentation_kept():
    code = "설명:\n\ndef f(x):\n    if x:\n        return 1"
    assert normalize_text(code) == code


def test_whitespace_only_is_empty():
    assert normalize_text(" \u3000\n\t ") == ""
    assert normalize_text("") == ""


def test_hangul_share():
    assert hangul_share("한국어") == 1.0
    assert hangul_share("한국 abc") == 0.4
    assert hangul_share("123 !!") == 0.0


def test_normalize_repeated_gives_what_normalize_text_gives_and_stays_bounded():
    import unicodedata

    from kodolly import normalize

    texts = ["가  나 \n다", unicodedata.normalize("NFD", "한글"), "", "a\r\nb\n\n\n\nc ", "\u200b보이지 않는 문자"]
    for _ in range(2):  # the second time from memory
        assert [normalize.normalize_repeated(t) for t in texts] == [normalize.normalize_text(t) for t in texts]
    for n in range(5000):
        normalize.normalize_repeated(f"텍스트 {n}")
    assert len(normalize._REPEATED) <= 4096


def test_repeat_string_is_the_column_of_copies():
    import pyarrow as pa

    from kodolly.rows import repeat_string

    for value in ("", "train", "한국어"):
        for n in (0, 1, 3):
            assert repeat_string(value, n).equals(pa.array([value] * n, pa.string()))
