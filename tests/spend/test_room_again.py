"""The figures a budget's "go on" gives (the issue's `/council go on`, the page's button): room
for the held call's forecast and the configured limit once more, beyond what was spent or the
limit in force, whichever is more."""

from __future__ import annotations

from orchestrator.config.budgets import Limit
from orchestrator.spend.raising import room_again


def test_go_on_counts_from_what_was_spent_when_it_passed_the_limit() -> None:
    configured = Limit(usd=20.0)
    new = room_again(configured, Limit(usd=20.0), (20.4, 0), (0.6, 0))
    assert new == {"usd": 41.0, "tokens": None}


def test_go_on_counts_from_the_limit_in_force_when_it_is_more() -> None:
    configured = Limit(tokens=250)
    assert room_again(configured, Limit(tokens=971), (920, 920)) == {"usd": None, "tokens": 1221}


def test_go_on_gives_each_figure_the_budget_has() -> None:
    configured = Limit(usd=1.0, tokens=1000)
    new = room_again(configured, Limit(usd=1.0, tokens=1000), (0.5, 1200))
    assert new == {"usd": 2.0, "tokens": 2200}
