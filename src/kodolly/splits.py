"""Deterministic train/validation/test splits by a hash of the row's ``id``.

A row's split depends only on its own ``id``: ``xxh3_64(id) / 2**64`` is a number in ``[0, 1)``
and the ratios cut that interval in the fixed order train, validation, test. Adding rows to a
dataset never moves an existing row to another split, and two runs over the same data agree.
(Two rows with the same id land in the same split.)

The split step runs after every filter and never rejects: it sets ``row["split"]``. A run
without split settings writes ``"train"`` for every row.

The split of a row depends on that row alone (``stateless``); ``apply_table`` sets the ``split``
column of an Arrow table of rows and returns ``(verdicts, table)``, as :mod:`kodolly.corridor` expects
of a step that sets a column.
"""

from __future__ import annotations

from typing import Any, Mapping

import xxhash

from .errors import ConfigError
from .rows import SPLIT_FIELD, SPLITS, repeat_string

_SCALE = float(2**64)


def parse_ratios(value: str | Mapping[str, Any] | None) -> dict[str, float]:
    """``"train=0.9,validation=0.1"`` or ``{"train": 0.9, "validation": 0.1}`` -> checked ratios.

    Names are ``train``, ``validation`` (alias ``val``, ``dev``) and ``test``; ratios are >= 0 and
    must add up to 1 (within 1e-6).
    """
    if value is None:
        return {"train": 1.0}
    items: list[tuple[str, Any]]
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        items = []
        for piece in str(value).split(","):
            piece = piece.strip()
            if not piece:
                continue
            name, sep, num = piece.partition("=")
            if not sep:
                raise ConfigError(f"split {piece!r}: expected NAME=RATIO, e.g. train=0.9,validation=0.1")
            items.append((name.strip(), num.strip()))
    ratios: dict[str, float] = {}
    for name, raw in items:
        name = {"val": "validation", "dev": "validation"}.get(name, name)
        if name not in SPLITS:
            raise ConfigError(f"split: unknown split {name!r} (splits: {', '.join(SPLITS)})")
        try:
            ratio = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"split: {name}={raw!r} is not a number") from None
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"split: {name}={raw!r} must be between 0 and 1")
        ratios[name] = ratio
    total = sum(ratios.values())
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"split ratios add up to {total:g}, not 1: {ratios}")
    return {name: ratios[name] for name in SPLITS if ratios.get(name)}


def split_of(row_id: str, bounds: list[tuple[float, str]]) -> str:
    """The split of one id, given the cumulative bounds from :class:`Splitter`."""
    x = xxhash.xxh3_64_intdigest(row_id.encode("utf-8", "surrogatepass")) / _SCALE
    for bound, name in bounds:
        if x < bound:
            return name
    return bounds[-1][1]


class Splitter:
    """The split step: sets ``row["split"]``; through the filter seam it keeps every row."""

    name = "split"
    stateless = True

    def __init__(self, ratios: str | Mapping[str, Any] | None = None) -> None:
        self.ratios = parse_ratios(ratios)
        bounds: list[tuple[float, str]] = []
        acc = 0.0
        for name, ratio in self.ratios.items():
            acc += ratio
            bounds.append((acc, name))
        self._bounds = bounds
        self._only = bounds[0][1] if len(bounds) == 1 else None

    def settings(self) -> dict[str, Any]:
        return {"ratios": dict(self.ratios), "hash": "xxh3_64(id) / 2**64", "order": list(SPLITS)}

    def assign(self, row_id: str) -> str:
        return self._only or split_of(row_id, self._bounds)

    def apply(self, rows: list[dict[str, Any]]) -> list[str | None]:
        if self._only is not None:
            for row in rows:
                row["split"] = self._only
        else:
            bounds = self._bounds
            for row in rows:
                row["split"] = split_of(row["id"], bounds)
        return [None] * len(rows)

    def apply_table(self, table: Any) -> tuple[list[str | None], Any]:
        import pyarrow as pa

        n = len(table)
        if self._only is not None:
            column = repeat_string(self._only, n)
        else:
            bounds = self._bounds
            column = pa.array([split_of(rid, bounds) for rid in table.column("id").to_pylist()], pa.string())
        field = pa.field(SPLIT_FIELD, pa.string(), nullable=False)
        at = table.schema.get_field_index(SPLIT_FIELD)
        table = table.set_column(at, field, column) if at >= 0 else table.append_column(field, column)
        return [None] * n, table
