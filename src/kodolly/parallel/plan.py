"""How a filter chain is split between the worker processes and the main process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass
class Plan:
    """How the filter chain is split between the workers and the main process."""

    filters: list[Any]
    n_worker: int  # filters[:n_worker] run in the workers (stateless head of the chain)
    keyed: frozenset[int]  # positions of main-process filters whose prepare() runs in the workers

    @classmethod
    def of(cls, filters: Sequence[Any]) -> "Plan":
        filters = list(filters)
        n_worker = 0
        while n_worker < len(filters) and getattr(filters[n_worker], "stateless", False):
            n_worker += 1
        keyed = set()
        for pos in range(n_worker, len(filters)):
            flt = filters[pos]
            if hasattr(flt, "prepare") and hasattr(flt, "decide"):
                keyed.add(pos)
            elif not getattr(flt, "stateless", False):
                break  # a filter that may change rows: later ones prepare in the main process
        return cls(filters, n_worker, frozenset(keyed))

    def columnar_ok(self) -> bool:
        return all(hasattr(f, "apply_table") for f in self.filters[: self.n_worker]) and all(
            hasattr(self.filters[pos], "prepare_table") for pos in self.keyed
        )
