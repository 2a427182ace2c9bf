"""kodolly.dpo.pricing."""

import pytest

from kodolly.dpo.pricing import Budget, BudgetExceeded, PriceTable
from kodolly.errors import ConfigError


def test_price_table_defaults_override_and_snapshots(tmp_path):
    t = PriceTable.load(None)
    assert t.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert t.cost("gpt-4o-mini-2024-07-18", 1_000_000, 0) == pytest.approx(0.15)
    assert t.cost("gpt-4o", 1_000_000, 0, batch=True) == pytest.approx(1.25)
    assert t.cost("llama3:8b", 10**6, 10**6) == 0.0
    f = tmp_path / "p.toml"
    f.write_text('[gpt-4o-mini]\ninput = 1.0\noutput = 2.0\n["qwen2.5:7b"]\ninput = 0.01\noutput = 0.02\n')
    t = PriceTable.load(f)
    assert t.cost("gpt-4o-mini", 10**6, 10**6) == pytest.approx(3.0)
    assert t.cost("qwen2.5:7b", 10**6, 0) == pytest.approx(0.01)
    bad = tmp_path / "bad.json"
    bad.write_text('{"m": {"input": "x"}}')
    with pytest.raises(ConfigError, match="numeric 'input' and 'output'"):
        PriceTable.load(bad)


def test_budget_reserves_before_sending_and_then_stops():
    b = Budget(1.0)
    b.reserve(0.6)
    with pytest.raises(BudgetExceeded):
        b.reserve(0.5)  # 0.6 in flight + 0.5 > 1.0
    assert b.exhausted
    b.settle(0.6, 0.4)
    with pytest.raises(BudgetExceeded):
        b.reserve(0.01)  # once refused, no more requests
    assert b.spent == pytest.approx(0.4)
    Budget(None).reserve(10**9)
