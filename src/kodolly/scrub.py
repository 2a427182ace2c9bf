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
"""

from __future__ import annotations

import re
from functools import lru_cache

MIN_FRAGMENT = 8  # a piece of a secret this long (or the whole secret when shorter) is masked wherever it appears
_SEP = r"(?:\s|\\[nrt]|%0[ad]|%09|%20|\+|[\"',;:|])*"


def _char(c: str) -> str:
    code = ord(c)
    alts = [re.escape(c)]
    if code < 0x80:
        alts.append(f"%{code:02x}")
    else:
        alts.append("".join(f"%{b:02x}" for b in c.encode("utf-8")))
    alts.append(f"\\\\u{code:04x}")
    if c == " ":
        alts.append(r"\+")
    return "(?:" + "|".join(alts) + ")"


@lru_cache(maxsize=16)
def _pattern(secret: str) -> re.Pattern[str]:
    size = min(MIN_FRAGMENT, len(secret))
    windows = sorted({secret[i:i + size] for i in range(len(secret) - size + 1)})
    body = "|".join(_SEP.join(_char(c) for c in w) for w in windows)
    # a lookahead finds every (overlapping) place a piece starts; the spans are merged below
    return re.compile(f"(?=({body}))", re.IGNORECASE)


def scrub_secret(text: str, secret: str | None, mask: str = "***") -> str:
    """``text`` with every form of ``secret`` (see the module doc) replaced by ``mask``."""
    if not text or not secret or len(secret) < 4:
        return text
    spans: list[list[int]] = []
    for m in _pattern(secret).finditer(text):
        start, end = m.start(1), m.end(1)
        if spans and start <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], end)
        else:
            spans.append([start, end])
    if not spans:
        return text
    out, pos = [], 0
    for start, end in spans:
        out.append(text[pos:start])
        out.append(mask)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def scrub_secrets(text: str, secrets: list[str | None] | tuple[str | None, ...], mask: str = "***") -> str:
    for secret in secrets:
        text = scrub_secret(text, secret, mask)
    return text
