"""Category and domain filters: include or exclude lists, matched after NFC and whitespace normalisation.

One class serves both fields. Rows' ``domain`` and ``category`` are already normalised by the
pipeline; the user's list is normalised here the same way (``normalize_text``), so ``"보건 "`` or an
NFD ``"보건"`` typed on macOS match ``"보건"``. Reasons: ``<field>_excluded`` (the value is in the
exclude list) and ``<field>_not_included`` (an include list is given and the value is not in it; an
empty value is not in any include list).

The verdict depends on the row alone (``stateless``): parallel runs apply it in the worker
processes, ``apply_table`` on an Arrow table of rows.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..errors import ConfigError
from ..normalize import normalize_text

LABEL_FIELDS = ("category", "domain")


def split_list(values: str | Iterable[str] | None) -> list[str]:
    """``"예체능,종교, 보건"`` or ``["예체능,종교", "보건"]`` -> normalised, de-duplicated, in order."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise ConfigError(f"expected text in a label list, got {value!r}")
        for part in value.split(","):
            item = normalize_text(part)
            if item and item not in out:
                out.append(item)
    return out


class LabelFilter:
    stateless = True

    def __init__(self, field: str, *, include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None) -> None:
        if field not in LABEL_FIELDS:
            raise ConfigError(f"label filter: field must be one of {', '.join(LABEL_FIELDS)}, not {field!r}")
        self.field = self.name = field
        self.include = split_list(include)
        self.exclude = split_list(exclude)
        self._include = frozenset(self.include)
        self._exclude = frozenset(self.exclude)
        self._excluded = f"{field}_excluded"
        self._not_included = f"{field}_not_included"

    def settings(self) -> dict[str, Any]:
        return {"include": self.include, "exclude": self.exclude}

    def apply(self, rows: list[dict[str, Any]]) -> list[str | None]:
        field, include, exclude = self.field, self._include, self._exclude
        excluded, not_included = self._excluded, self._not_included
        out: list[str | None] = []
        append = out.append
        for row in rows:
            value = row[field]
            if value in exclude:
                append(excluded)
            elif include and value not in include:
                append(not_included)
            else:
                append(None)
        return out

    def apply_table(self, table: Any) -> list[str | None]:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        values = table.column(self.field)
        out: list[str | None] = [None] * len(values)
        if self.include:
            inside = pc.is_in(values, value_set=pa.array(self.include, pa.string())).fill_null(False)
            for i in np.flatnonzero(~inside.to_numpy(zero_copy_only=False)).tolist():
                out[i] = self._not_included
        if self.exclude:
            outside = pc.is_in(values, value_set=pa.array(self.exclude, pa.string())).fill_null(False)
            for i in np.flatnonzero(outside.to_numpy(zero_copy_only=False)).tolist():
                out[i] = self._excluded  # excluded wins over not included, as in apply
        return out
