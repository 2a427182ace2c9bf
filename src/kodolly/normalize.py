"""Text normalisation applied to every text field: NFC, invisible characters removed, whitespace tidied.

Rules, in order:

1. Unicode NFC (only when ``unicodedata.is_normalized`` says the text is not already NFC: most
   text is, and the check is far cheaper than the normalisation). NFD Hangul from macOS becomes
   the same code points as NFC Hangul, so it compares and hashes equal.
2. ``\\r\\n`` and ``\\r`` become ``\\n``; other line and paragraph separators become ``\\n``.
3. Invisible characters are removed: zero-width space/joiners, word joiner, BOM, soft hyphen,
   bidi marks, and C0/C1 control characters other than ``\\n`` and ``\\t``.
4. Unusual spaces (no-break space, ideographic space, en/em spaces, ...) become a plain space.
5. Trailing spaces and tabs at the end of each line are removed; a run of two or more spaces after
   a non-space character becomes one space (leading indentation is kept, for code in answers).
6. Three or more newlines in a row become two (one blank line); the text is stripped at both ends.

Newlines inside answers are kept.
"""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = (
    [0x00AD, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF]
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
    + [c for c in range(0x00, 0x20) if c not in (0x09, 0x0A, 0x0D)]
    + [0x7F]
    + list(range(0x80, 0xA0))
)
_SPACES = [0x00A0, 0x1680, 0x202F, 0x205F, 0x3000] + list(range(0x2000, 0x200B))
_NEWLINES = [0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029]

_TABLE: dict[int, str | None] = {c: None for c in _INVISIBLE}
_TABLE.update({c: " " for c in _SPACES})
_TABLE.update({c: "\n" for c in _NEWLINES})
_TABLE[0x0D] = None  # "\r\n" -> "\n" after the explicit replace below; a lone "\r" is handled there too

_TRAILING_WS = re.compile(r"[ \t]+\n")
_INNER_SPACES = re.compile(r"(?<=\S) {2,}")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_NEEDS_TRANSLATE = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_TABLE)) + "]")


def normalize_text(text: str) -> str:
    """Normalise one text field (see the module docstring for the rules)."""
    if not text:
        return ""
    if not text.isascii():
        if not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
        if _NEEDS_TRANSLATE.search(text):
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            text = text.translate(_TABLE)
    elif "\r" in text or _NEEDS_TRANSLATE.search(text):
        text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_TABLE)
    if "  " in text:
        text = _INNER_SPACES.sub(" ", text)
    if "\n" in text:
        if " \n" in text or "\t\n" in text:
            text = _TRAILING_WS.sub("\n", text)
        if "\n\n\n" in text:
            text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


_REPEATED: dict[str, str] = {}
_REPEATED_CHARS = 0


def normalize_repeated(text: str) -> str:
    """:func:`normalize_text` for texts that come again and again (a KorQuAD paragraph in every row of
    its questions, a conversation's turns in every later row's history): remembered, so each distinct
    text is normalised once. The memory is bounded (cleared at 4,096 texts or 16 M characters)."""
    global _REPEATED_CHARS
    done = _REPEATED.get(text)
    if done is None:
        if len(_REPEATED) >= 4096 or _REPEATED_CHARS >= 1 << 24:
            _REPEATED.clear()
            _REPEATED_CHARS = 0
        done = _REPEATED[text] = normalize_text(text)
        _REPEATED_CHARS += len(text)
    return done


# Characters that normalize_text leaves alone wherever they stand: NFC-stable starters that never
# compose with what precedes them, not in the translation table, not whitespace. Hangul syllables
# and compatibility jamo, CJK ideographs, printable ASCII and common punctuation. (Checked
# character by character against unicodedata in tests/test_normalize_fastpath.py.)
SAFE_RANGES: tuple[tuple[int, int], ...] = (
    (0x21, 0x7E),  # printable ASCII except space
    (0xA9, 0xA9), (0xAE, 0xAE), (0xB0, 0xB1), (0xB7, 0xB7), (0xD7, 0xD7), (0xF7, 0xF7),
    (0x2010, 0x2015), (0x2018, 0x201F), (0x2020, 0x2022), (0x2026, 0x2026), (0x2030, 0x2030),
    (0x203B, 0x203B), (0x2190, 0x2193), (0x2460, 0x2473), (0x25A0, 0x25CF), (0x2605, 0x2606),
    (0x3001, 0x3003), (0x3008, 0x3011), (0x3131, 0x318E), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
    (0xFF01, 0xFF5E),
)


def clean_pattern(*, re2: bool = False) -> str:
    """A regular expression that a text matches in full only if :func:`normalize_text` returns it unchanged.

    The text must be made of characters in ``SAFE_RANGES``, spaces, tabs and newlines, not start or
    end with whitespace, and hold no double space, no space or tab before a newline and no three
    newlines in a row. Some texts that come out unchanged do not match (any other character, a
    leading indent after a newline...): those just go through :func:`normalize_text`.
    ``re2=True`` gives RE2 syntax for ``pyarrow.compute.match_substring_regex`` (anchored, so a partial
    match is a full one). There a match also proves the text valid UTF-8: every byte of it belongs to
    the encoding of a listed character, so a stray or truncated byte never matches.
    """
    def char(c: int) -> str:
        return f"\\x{{{c:04X}}}" if re2 else f"\\U{c:08X}"

    ranges = "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in SAFE_RANGES)
    safe = f"[{ranges}]+"
    # safe runs joined by whitespace: one or two newlines, then tabs and single spaces (each space
    # followed by a tab or by the next run); never a space or tab before a newline. Each join is
    # non-empty and holds no safe character, so a run ends in one way only (no backtracking in re).
    tabs = "(?:\\t| \\t)"
    join = f"(?:\\n\\n?{tabs}* ?|{tabs}+ ?| )"
    body = f"(?:{safe}(?:{join}{safe})*)?"
    return f"^{body}$" if re2 else body


_CLEAN_RE2: str | None = None


def normalize_column_dirty(array):
    """:func:`normalize_text` over a pyarrow string array: ``(normalised array, dirty)``, where only the
    values the clean pattern (:func:`clean_pattern`, RE2) does not match go through Python and ``dirty``
    is the numpy mask of those values (``None`` when every value matched: the array comes back as it is).

    The pattern also validates the UTF-8 of the values it matches; decoding the others for
    ``normalize_text`` raises ``UnicodeDecodeError`` on invalid UTF-8."""
    import pyarrow as pa
    import pyarrow.compute as pc

    global _CLEAN_RE2
    if _CLEAN_RE2 is None:
        _CLEAN_RE2 = clean_pattern(re2=True)
    clean = pc.match_substring_regex(array, _CLEAN_RE2)
    if pc.all(clean).as_py():
        return array, None
    dirty = pc.invert(clean)
    fixed = [normalize_text(v) for v in array.filter(dirty).to_pylist()]
    return pc.replace_with_mask(array, dirty, pa.array(fixed, pa.string())), dirty.to_numpy(zero_copy_only=False)


def normalize_column(array):
    """:func:`normalize_text` over a pyarrow string array (see :func:`normalize_column_dirty`)."""
    return normalize_column_dirty(array)[0]


_ASCII_OR_SYLLABLES = re.compile("[\x00-\x7f\uac00-\ud7a3]+")
_ASCII_LETTERS = bytes(range(0x41, 0x5B)) + bytes(range(0x61, 0x7B))


def hangul_share(text: str) -> float:
    """Share of Hangul syllables and jamo among the letters of ``text`` (0.0 when it has no letters).

    Letters are the characters for which ``str.isalpha`` is true. The common characters (ASCII and
    precomposed Hangul syllables) are counted with C-speed string operations; only the rest (CJK,
    jamo, punctuation, ...) is looked at one by one, which makes this about ten times faster than
    a plain loop on Korean text.
    """
    if text.isascii():
        return 0.0
    rest = _ASCII_OR_SYLLABLES.sub("", text)
    ascii_part = text.encode("ascii", "ignore")
    letters = len(ascii_part) - len(ascii_part.translate(None, _ASCII_LETTERS))
    hangul = len(text) - len(ascii_part) - len(rest)
    letters += hangul
    for ch in rest:
        if ch.isalpha():
            letters += 1
            o = ord(ch)
            if 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F:
                hangul += 1
    return hangul / letters if letters else 0.0


# Python's white space (``str.isspace``), as an RE2 class: a text made of these only is blank to ``str.strip``
PY_SPACE_RE2 = "[" + "".join(f"\\x{{{c:04X}}}" for c in (
    0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
    0x2028, 0x2029, 0x202F, 0x205F, 0x3000)) + "]"
