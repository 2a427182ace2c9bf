"""Score filter: keep rows with ``score > min_score`` (strict, as in the pipelines users already run).

Rows without a score (``None``, NaN, or text that is not a number) are dropped as ``no_score``
unless ``keep_unscored``; a score a converter left as text (``"45"``) is compared as a number.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError


class ScoreFilter:
    name = "score"

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


def _as_number(value: object) -> float | None:
    """A score a converter left as text (``"45"``, ``" 45.5 "``) as a number; anything else is no score."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
