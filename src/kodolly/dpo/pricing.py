"""Prices (USD per 1M tokens) and the budget that stops a run before it spends more than allowed.

The built-in table is a snapshot of OpenAI's list prices; prices change, so a user passes their own
with ``--prices FILE`` (TOML or JSON), which overrides or adds models::

    # prices.toml
    [gpt-4o-mini]
    input = 0.15
    output = 0.60

The Batch API costs half (``BATCH_DISCOUNT``). A model with no price (a local vLLM/Ollama server)
costs 0 and the report says the price is unknown.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

# USD per 1M tokens: (input, output). Snapshot of OpenAI list prices.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4o": (2.50, 10.00),
}
BATCH_DISCOUNT = 0.5


@dataclass(frozen=True)
class Price:
    input: float
    output: float


class PriceTable:
    def __init__(self, prices: dict[str, tuple[float, float]] | None = None) -> None:
        self.prices = {k: Price(*v) for k, v in (prices or DEFAULT_PRICES).items()}

    @classmethod
    def load(cls, path: str | Path | None) -> "PriceTable":
        table = cls()
        if path is None:
            return table
        p = Path(path)
        try:
            text = p.read_text("utf-8")
            if p.suffix.lower() == ".toml":
                import tomllib

                data: Any = tomllib.loads(text)
            else:
                data = json.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--prices {p}: cannot read the price table: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"--prices {p}: expected a table of models")
        for model, entry in data.items():
            try:
                table.prices[model] = Price(float(entry["input"]), float(entry["output"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(
                    f"--prices {p}: model {model!r} needs numeric 'input' and 'output' (USD per 1M tokens)"
                ) from exc
        return table

    def price(self, model: str) -> Price | None:
        if model in self.prices:
            return self.prices[model]
        # dated snapshots ("gpt-4o-mini-2024-07-18") cost what their family costs: longest prefix wins
        best = max((name for name in self.prices if model.startswith(name + "-")), key=len, default=None)
        return self.prices[best] if best else None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int, *, batch: bool = False) -> float:
        price = self.price(model)
        if price is None:
            return 0.0
        usd = (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000
        return usd * BATCH_DISCOUNT if batch else usd

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {k: {"input": v.input, "output": v.output} for k, v in sorted(self.prices.items())}


class BudgetExceeded(Exception):
    """A request would take the run past ``--max-cost``; it is not sent."""


class Budget:
    """Spent + reserved cost, thread-safe.

    Each attempt reserves its worst case before it is sent (:func:`worst_case_cost`: all of ``max_tokens``
    out, every counted input token in) and settles to its real cost when its usage arrives, so the run never
    passes the cap. A reservation that does not fit waits while other attempts are in flight (their real
    cost is usually far below their worst case); when none is left and it still does not fit, the budget is
    exhausted and no more requests are sent. ``possibly_spent`` is the worst case of attempts whose usage
    never reached the client (they may have been billed): it counts as spent."""

    def __init__(self, max_cost: float | None) -> None:
        self.max_cost = max_cost
        self.spent = 0.0
        self.reserved = 0.0
        self.possibly_spent = 0.0
        self.exhausted = False
        self._cond = threading.Condition()

    def reserve(self, estimate: float, *, wait: bool = False) -> None:
        with self._cond:
            while True:
                if self.exhausted:
                    raise BudgetExceeded(f"budget ${self.max_cost:.4f} reached: no more requests are sent")
                if self.max_cost is None or self._used() + self.reserved + estimate <= self.max_cost:
                    self.reserved += estimate
                    return
                if wait and self.reserved > 1e-12:
                    self._cond.wait(0.5)
                    continue
                self.exhausted = True
                raise BudgetExceeded(
                    f"budget ${self.max_cost:.4f}: spent ${self._used():.4f}, in flight ${self.reserved:.4f}, "
                    f"next request up to ${estimate:.6f}"
                )

    def _used(self) -> float:
        return self.spent + self.possibly_spent

    def settle(self, estimate: float, actual: float) -> None:
        with self._cond:
            self.reserved = max(0.0, self.reserved - estimate)
            self.spent += actual
            self._cond.notify_all()

    def settle_unknown(self, estimate: float) -> None:
        """An attempt whose usage never arrived: its worst case stays counted, as possibly spent."""
        with self._cond:
            self.reserved = max(0.0, self.reserved - estimate)
            self.possibly_spent += estimate
            self._cond.notify_all()

    def release(self, estimate: float) -> None:
        with self._cond:
            self.reserved = max(0.0, self.reserved - estimate)
            self._cond.notify_all()

    def add(self, actual: float) -> None:
        with self._cond:
            self.spent += actual
            self._cond.notify_all()


def worst_case_tokens(counter, system_prompt: str, text: str, max_tokens: int | None) -> tuple[int, int]:
    """(prompt, completion) tokens a request for ``text`` can cost at most: the counted prompt and the whole
    ``max_tokens`` (without a limit, the expected length: see :meth:`TokenCounter.completion_estimate`)."""
    prompt = counter.chat_prompt(system_prompt, text)
    return prompt, (max_tokens if max_tokens else counter.completion_estimate(text, None))
