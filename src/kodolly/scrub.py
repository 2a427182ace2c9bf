"""Secret scrubbing: remove a secret's *value* (an API key, a Hub token) from text, in every form a
server may echo it back.

Matched forms, alone or mixed:

* the value as it is;
* URL-encoded, whole or in part, in either hex case (``sk%2Dtest``, ``sk%2dtest``, ``%73%6B-...``), with
  ``+`` or ``%20`` for a space;
* JSON-escaped characters (``\\u002d``);
* split by a server: pieces separated by whitespace, line breaks (real or escaped ``\\n``), quotes, commas,
  colons or ``+``, and any piece of :data:`MIN_FRAGMENT` characters or more anywhere (a key cut in two
  fields of a JSON error lands there as two pieces, each masked).

Scrubbing matches values, never setting names: ``dedup_key: "instruction"`` is not a secret.

Linear time: the text is read once as "units" (escapes decoded, separators dropped, lower case) and each
run of :data:`MIN_FRAGMENT` units is looked up in the set of the secret's pieces (~1 ms for an 8 KB answer
and a 164-character key); every translation is checked this way (see :func:`kodolly.dpo.checks.translation_problem`).
"""

from __future__ import annotations

import re
from functools import lru_cache

from .textedit import splice

MIN_FRAGMENT = 8  # a piece of a secret this long (or the whole secret when shorter) is masked wherever it appears
# one unit of text: a %XX or \uXXXX escape (decoded), a separator (dropped), or any other character
_UNIT = re.compile(r"%([0-9a-fA-F]{2})|\\u([0-9a-fA-F]{4})|(\s|\\[nrt]|\+|[\"',;:|])|(.)", re.S)
_PLAIN_SEP = re.compile(r"[\s+\"',;:|]")  # the separators of a text with no % and no backslash


def _units(text: str) -> list[tuple[str, int, int]]:
    """(character, start, end) of ``text`` read as a server may have encoded it: escapes decoded, separators
    dropped, lower case."""
    out = []
    for m in _UNIT.finditer(text):
        if m.group(3) is not None:
            continue
        hexa = m.group(1) or m.group(2)
        c = chr(int(hexa, 16)) if hexa else m.group(4)
        if hexa and _PLAIN_SEP.fullmatch(c):  # an encoded separator (%20, %0A, \u000a)
            continue
        out.append((c.lower(), m.start(), m.end()))
    return out


@lru_cache(maxsize=16)
def _windows(secret: str) -> tuple[int, frozenset[str]]:
    norm = "".join(c for c, _, _ in _units(secret))
    size = min(MIN_FRAGMENT, len(norm))
    return size, frozenset(norm[i:i + size] for i in range(len(norm) - size + 1))


def _has_window(chars: str, size: int, windows: frozenset[str]) -> bool:
    return any(chars[i:i + size] in windows for i in range(len(chars) - size + 1))


def scrub_secret(text: str, secret: str | None, mask: str = "***") -> str:
    """``text`` with every form of ``secret`` (see the module doc) replaced by ``mask``."""
    if not text or not secret or len(secret) < 4:
        return text
    size, windows = _windows(secret)
    if size == 0:
        return text
    if "%" not in text and "\\" not in text and not _has_window(_PLAIN_SEP.sub("", text).lower(), size, windows):
        return text  # the common case, in linear time: no piece of the secret anywhere
    units = _units(text)
    chars = "".join(c for c, _, _ in units)
    spans: list[list[int]] = []
    for i in range(len(chars) - size + 1):
        if chars[i:i + size] in windows:
            start, end = units[i][1], units[i + size - 1][2]
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
    return splice(text, ((start, end, mask) for start, end in spans))


def scrub_secrets(text: str, secrets: list[str | None] | tuple[str | None, ...], mask: str = "***") -> str:
    for secret in secrets:
        text = scrub_secret(text, secret, mask)
    return text
