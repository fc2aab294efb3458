"""Money shown to the precision that makes it non-zero (``orchestrator.money``), and the texts
that show it: a budget's limit, a spent budget's message, the run's spend line."""

from __future__ import annotations

import math

import pytest

from orchestrator.config.budgets import Limit
from orchestrator.money import dollars
from orchestrator.spend import budgets as rules
from orchestrator.spend.line import SpendLine


@pytest.mark.parametrize(
    ("usd", "shown"),
    [
        (0, "$0.00"),
        (0.0, "$0.00"),
        (0.0002, "$0.0002"),
        (0.00031, "$0.00031"),
        (0.000314159, "$0.00031"),
        (0.0045, "$0.0045"),
        (0.001, "$0.001"),
        (0.00999, "$0.01"),  # two significant digits round up to a cent
        (1e-9, "$0.000000001"),
        (0.01, "$0.01"),
        (0.019, "$0.02"),
        (1.5, "$1.50"),
        (1234.567, "$1,234.57"),
        (20, "$20.00"),
        (-0.5, "-$0.50"),
        (-0.0002, "-$0.0002"),
    ],
)
def test_an_amount_shows_cents_or_two_significant_digits_under_a_cent(
    usd: float, shown: str
) -> None:
    assert dollars(usd) == shown


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "1.00", None, True])
def test_what_is_no_amount_is_refused_naming_it(bad: object) -> None:
    with pytest.raises(ValueError, match="an amount of dollars must be") as raised:
        dollars(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(raised.value)


def test_a_tiny_budget_and_its_spend_are_shown_non_zero() -> None:
    limit = Limit(usd=0.0002)
    assert limit.said() == "$0.0002"
    scope = rules.Scope("run", "", limit)
    over = rules.Exceeded(rules.ScopeSpend(scope, 0.00031, 120), rules.Forecast(0.00005, 40, "x"))
    message = over.message()
    assert message.startswith("the run's budget ($0.0002, budgets.run) is spent: $0.00031 so far")
    assert "forecast ($0.00005, 40 tokens, x)" in message
    line = SpendLine(
        usd=0.00031,
        tokens=120,
        calls=1,
        budgets=[rules.ScopeSpend(scope, 0.00031, 120).as_data()],
    )
    assert line.said() == (
        "spent $0.00031 in 1 CLI calls (120 tokens); run budget $0.00031 of $0.0002 (155%)"
    )
