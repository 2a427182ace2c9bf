"""Edits of a string at known offsets, in one pass."""

from __future__ import annotations

from typing import Iterable


def splice(text: str, edits: Iterable[tuple[int, int, str]]) -> str:
    """``text`` with each ``(start, end, new)`` edit applied: ``text[start:end]`` replaced by ``new``
    (``start == end`` inserts). Edits are given in order of ``start`` and do not overlap."""
    pieces, last = [], 0
    for start, end, new in edits:
        pieces.append(text[last:start])
        pieces.append(new)
        last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)
