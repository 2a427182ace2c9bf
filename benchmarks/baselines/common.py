"""The normalisation every baseline applies, with kodolly's whitespace rules (see kodolly.normalize):
NFC, CRLF/CR -> LF, spaces/tabs before a newline dropped, runs of spaces after a non-space collapsed,
three or more newlines -> two, stripped. (kodolly also removes invisible characters; the generated
data has none, so the outputs agree.)"""

from __future__ import annotations

import re
import sys
import unicodedata

_TRAILING = re.compile(r"[ \t]+\n")
_INNER = re.compile(r"(?<=\S) {2,}")
_NEWLINES = re.compile(r"\n{3,}")


def norm(text: str | None) -> str:
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _TRAILING.sub("\n", text)
    text = _INNER.sub(" ", text)
    text = _NEWLINES.sub("\n\n", text)
    return text.strip()


def args() -> tuple[str, str]:
    if len(sys.argv) != 3:
        raise SystemExit(f"usage: {sys.argv[0]} INPUT.jsonl OUTPUT.parquet")
    return sys.argv[1], sys.argv[2]
