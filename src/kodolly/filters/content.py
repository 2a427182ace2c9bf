"""Content filter: empty fields, Git-LFS pointer text, echoed answers, length and Hangul-share bounds.

Checks run cheapest first and the first failing check names the reason:

1. ``content_empty_instruction`` / ``content_empty_response`` (the pipeline already rejects empty
   fields as ``empty_field:*``; this catches rows handed to the filter directly through the API)
2. ``content_lfs_pointer``: a text field holds a Git-LFS pointer instead of data
3. ``content_response_equals_instruction``: the answer repeats the question (after normalisation,
   ignoring whitespace: ``"물의 끓는점은\n몇 도?"`` repeats ``"물의 끓는점은 몇 도?"``)
4. ``content_too_short:<field>`` / ``content_too_long:<field>``: length in characters (``len``),
   per field (``instruction``, ``context``, ``response``) or ``total`` (the three together)
5. ``content_hangul_share:<field>``: the share of Hangul among the field's letters
   (:func:`kodolly.normalize.hangul_share`) is below the bound; an empty field is not checked

Bounds are given per field, e.g. ``{"response": 2}``; a bare number applies to ``response``.

The verdict depends on the row alone (``stateless``): parallel runs apply it in the worker
processes. ``apply_table`` gives the same verdicts for an Arrow table of rows: the emptiness,
LFS-pointer, exact-echo and length checks are vectorised (Arrow's lengths count code points, as
``len`` does); the echo-up-to-whitespace check (only for rows whose first and last characters match)
and the Hangul share run per row in Python, on the rows still undecided.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import ConfigError
from ..normalize import hangul_share

LENGTH_FIELDS = ("instruction", "context", "response", "total")
HANGUL_FIELDS = ("instruction", "context", "response")
DEFAULT_FIELD = "response"
LFS_PREFIX = "version https://git-lfs.github.com/spec/"


def parse_bounds(value: Any, *, allowed: tuple[str, ...], what: str, integer: bool) -> dict[str, float]:
    """Per-field bounds from a number (-> ``response``), ``"response=2,total=100"``, a list of those, or a mapping."""
    if value is None:
        return {}
    items: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        parts = value if isinstance(value, (list, tuple)) else [value]
        for part in parts:
            if isinstance(part, (int, float)) and not isinstance(part, bool):
                items.append((DEFAULT_FIELD, part))
                continue
            for piece in str(part).split(","):
                piece = piece.strip()
                if not piece:
                    continue
                key, sep, num = piece.partition("=")
                items.append((key.strip(), num.strip()) if sep else (DEFAULT_FIELD, key))
    out: dict[str, float] = {}
    for key, raw in items:
        if key not in allowed:
            raise ConfigError(f"{what}: unknown field {key!r} (fields: {', '.join(allowed)})")
        try:
            num = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{what}: {key}={raw!r} is not a number") from None
        if num < 0 or num != num:
            raise ConfigError(f"{what}: {key}={raw!r} must be a number >= 0")
        if integer:
            if num != int(num):
                raise ConfigError(f"{what}: {key}={raw!r} must be a whole number of characters")
            num = int(num)
        elif num > 1:
            raise ConfigError(f"{what}: {key}={raw!r} is a share and must be between 0 and 1")
        out[key] = num
    return out


class ContentFilter:
    name = "content"
    stateless = True

    def __init__(
        self,
        *,
        min_chars: Any = None,
        max_chars: Any = None,
        min_hangul: Any = None,
        lfs_pointers: bool = True,
        echo: bool = True,
    ) -> None:
        self.min_chars = parse_bounds(min_chars, allowed=LENGTH_FIELDS, what="min_chars", integer=True)
        self.max_chars = parse_bounds(max_chars, allowed=LENGTH_FIELDS, what="max_chars", integer=True)
        self.min_hangul = parse_bounds(min_hangul, allowed=HANGUL_FIELDS, what="min_hangul", integer=False)
        for key, low in self.min_chars.items():
            high = self.max_chars.get(key)
            if high is not None and high < low:
                raise ConfigError(f"content filter: max_chars {key}={high} is below min_chars {key}={low}")
        self.lfs_pointers = bool(lfs_pointers)
        self.echo = bool(echo)
        # (field, bound, reason) triples, prepared once
        self._short = [(k, v, f"content_too_short:{k}") for k, v in self.min_chars.items()]
        self._long = [(k, v, f"content_too_long:{k}") for k, v in self.max_chars.items()]
        self._hangul = [(k, v, f"content_hangul_share:{k}") for k, v in self.min_hangul.items()]
        self._needs_total = "total" in self.min_chars or "total" in self.max_chars

    def settings(self) -> dict[str, Any]:
        return {
            "min_chars": self.min_chars,
            "max_chars": self.max_chars,
            "min_hangul": self.min_hangul,
            "lfs_pointers": self.lfs_pointers,
            "echo": self.echo,
        }

    def apply(self, rows: list[dict[str, Any]]) -> list[str | None]:
        return [self.check(row) for row in rows]

    def apply_table(self, table: Any) -> list[str | None]:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(table)
        out: list[str | None] = [None] * n
        if not n:
            return out
        undecided = np.ones(n, dtype=bool)

        def mark(mask: Any, reason: str) -> None:  # the first failing check names the reason
            hits = np.asarray(mask, dtype=bool) & undecided
            for i in np.flatnonzero(hits).tolist():
                out[i] = reason
            undecided[hits] = False

        def boolean(array: Any) -> Any:
            return array.fill_null(False).to_numpy(zero_copy_only=False)

        instruction, context, response = (table.column(k) for k in ("instruction", "context", "response"))
        mark(_byte_lengths(instruction) == 0, "content_empty_instruction")
        mark(_byte_lengths(response) == 0, "content_empty_response")
        if self.lfs_pointers and undecided.any():
            lfs = boolean(pc.starts_with(response, LFS_PREFIX))
            lfs |= boolean(pc.starts_with(instruction, LFS_PREFIX))
            lfs |= boolean(pc.starts_with(context, LFS_PREFIX))
            mark(lfs, "content_lfs_pointer")
        if self.echo and undecided.any():
            echo = boolean(pc.equal(response, instruction))
            # rows that may be equal up to whitespace: same first character and same last byte (a
            # superset of "same last character"); Python decides those as check() does
            first = boolean(pc.equal(pc.utf8_slice_codeunits(response, 0, 1), pc.utf8_slice_codeunits(instruction, 0, 1)))
            maybe = np.flatnonzero(first & (_last_bytes(response) == _last_bytes(instruction)) & ~echo & undecided)
            if len(maybe):
                idx = pa.array(maybe)
                for i, a, b in zip(maybe.tolist(), response.take(idx).to_pylist(), instruction.take(idx).to_pylist()):
                    if a[0] == b[0] and a[-1] == b[-1] and "".join(a.split()) == "".join(b.split()):
                        echo[i] = True
            mark(echo, "content_response_equals_instruction")
        if not (self._short or self._long or self._hangul) or not undecided.any():
            return out
        lengths = {k: pc.utf8_length(col).to_numpy(zero_copy_only=False) for k, col in
                   (("instruction", instruction), ("context", context), ("response", response))}
        if (self._short or self._long) and undecided.any():
            lengths["total"] = lengths["instruction"] + lengths["context"] + lengths["response"]
            for key, bound, reason in self._short:
                mark(lengths[key] < bound, reason)
            for key, bound, reason in self._long:
                mark(lengths[key] > bound, reason)
        for key, bound, reason in self._hangul:
            if not undecided.any():
                break
            todo = np.flatnonzero(undecided & (lengths[key] > 0))
            if not len(todo):
                continue
            texts = table.column(key).take(pa.array(todo)).to_pylist()
            low = np.zeros(n, dtype=bool)
            for i, text in zip(todo.tolist(), texts):
                if hangul_share(text) < bound:
                    low[i] = True
            mark(low, reason)
        return out

    def check(self, row: dict[str, Any]) -> str | None:
        instruction, response = row["instruction"], row["response"]
        if not instruction:
            return "content_empty_instruction"
        if not response:
            return "content_empty_response"
        if self.lfs_pointers and (
            response.startswith(LFS_PREFIX) or instruction.startswith(LFS_PREFIX) or row["context"].startswith(LFS_PREFIX)
        ):
            return "content_lfs_pointer"
        if self.echo and (
            response == instruction
            or (  # equal up to whitespace (AI Hub has these); the end characters rule most rows out cheaply
                response[0] == instruction[0]
                and response[-1] == instruction[-1]
                and "".join(response.split()) == "".join(instruction.split())
            )
        ):
            return "content_response_equals_instruction"
        if self._short or self._long:
            if self._needs_total:
                lengths = {"instruction": len(instruction), "context": len(row["context"]), "response": len(response)}
                lengths["total"] = lengths["instruction"] + lengths["context"] + lengths["response"]
                get = lengths.__getitem__
            else:
                get = lambda key: len(row[key])  # noqa: E731
            for key, bound, reason in self._short:
                if get(key) < bound:
                    return reason
            for key, bound, reason in self._long:
                if get(key) > bound:
                    return reason
        for key, bound, reason in self._hangul:
            text = row[key]
            if text and hangul_share(text) < bound:
                return reason
        return None


def _per_chunk(column: Any, fn: Any) -> Any:
    """``fn(offsets, data)`` over each chunk of a string column (numpy offsets (n + 1) and data
    bytes), concatenated: no copy of the texts, which ``combine_chunks`` would make."""
    import numpy as np

    parts = []
    for array in getattr(column, "chunks", [column]):
        buffers = array.buffers()
        offsets = np.frombuffer(buffers[1], dtype=np.int32)[array.offset : array.offset + len(array) + 1]
        data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
        parts.append(fn(offsets.astype(np.int64), data))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _byte_lengths(column: Any) -> Any:
    return _per_chunk(column, lambda offsets, data: offsets[1:] - offsets[:-1])


def _last_bytes(column: Any) -> Any:
    """The last byte of each value (-1 for an empty value)."""
    import numpy as np

    def last(offsets: Any, data: Any) -> Any:
        ends = offsets[1:]
        if not len(data):
            return np.full(len(ends), -1, np.int64)
        return np.where(ends > offsets[:-1], data[np.maximum(ends - 1, 0)].astype(np.int64), -1)

    return _per_chunk(column, last)
