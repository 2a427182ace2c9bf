"""Score filter: keep rows with ``score > min_score`` (strict, as in the pipelines users already run).

Rows without a score (``None``, NaN, or text that is not a number) are dropped as ``no_score``
unless ``keep_unscored``; a score a converter left as text (``"45"``) is compared as a number.

The verdict depends on the row alone (``stateless``), so parallel runs apply it in the worker
processes; ``apply_table`` gives the same verdicts for an Arrow table of rows (``score`` float64).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError


class ScoreFilter:
    name = "score"
    stateless = True

    def __init__(self, min_score: float, *, keep_unscored: bool = False) -> None:
        try:
            self.min_score = float(min_score)
        except (TypeError, ValueError):
            raise ConfigError(f"score filter: min score {min_score!r} is not a number") from None
        if self.min_score != self.min_score:
            raise ConfigError("score filter: min score is NaN")
        self.keep_unscored = bool(keep_unscored)

    def settings(self) -> dict[str, Any]:
        return {"min_score": self.min_score, "strict": True, "keep_unscored": self.keep_unscored}

    def apply(self, rows: list[dict[str, Any]]) -> list[str | None]:
        threshold = self.min_score
        unscored = None if self.keep_unscored else "no_score"
        out: list[str | None] = []
        append = out.append
        for row in rows:
            score = row["score"]
            if score is not None and type(score) is not float and type(score) is not int:
                score = _as_number(score)
            if score is None or score != score:  # None or NaN
                append(unscored)
            elif score > threshold:
                append(None)
            else:
                append("score_below")
        return out


    def apply_table(self, table: Any) -> list[str | None]:
        import numpy as np
        import pyarrow as pa

        column = table.column("score")
        if not pa.types.is_floating(column.type) and not pa.types.is_integer(column.type):
            return self.apply([{"score": v} for v in column.to_pylist()])
        scores = column.to_numpy().astype(np.float64)  # nulls come back as NaN
        out: list[str | None] = [None] * len(scores)
        unscored = None if self.keep_unscored else "no_score"
        with np.errstate(invalid="ignore"):
            below = ~(scores > self.min_score)
        nan = np.isnan(scores)
        for i in np.flatnonzero(below & ~nan).tolist():
            out[i] = "score_below"
        if unscored is not None:
            for i in np.flatnonzero(nan).tolist():
                out[i] = unscored
        return out


def _as_number(value: object) -> float | None:
    """A score a converter left as text (``"45"``, ``" 45.5 "``) as a number; anything else is no score."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
