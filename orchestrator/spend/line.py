"""The run's spend in a line (``SpendLine``): what the run summary and ``status`` show, kept by
the spend gate in the store (``NAMESPACE``, keyed by session) so a report reads one record, not
the ledger. A plain model: ``status``'s quick look imports it without the store."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from orchestrator.money import dollars

__all__ = ["NAMESPACE", "SpendLine"]

NAMESPACE = "spend"


class SpendLine(BaseModel):
    model_config = ConfigDict(defer_build=True)  # built when first read, not on import
    usd: float  # closed calls' cost, open ones' forecast
    tokens: int
    calls: int
    unpriced_calls: int = 0  # counted in tokens only
    budgets: list[dict[str, Any]] = []  # each budget's limit and spend (``ScopeSpend.as_data``)
    held: str | None = None  # the budget the run waits for, when one has no room

    def said(self) -> str:
        """``spent $1.23 in 14 calls (120,456 tokens); run budget $1.23 of $20.00 (6 %)``."""
        text = f"spent {dollars(self.usd)} in {self.calls} CLI calls ({self.tokens:,} tokens)"
        if self.unpriced_calls:
            text += f", {self.unpriced_calls} with no price"
        for budget in self.budgets:
            text += f"; {_budget(budget)}"
        return text


def _budget(data: dict[str, Any]) -> str:
    scope = str(data.get("scope", "?")).replace(":", " ")
    per = " a day" if data.get("per") == "day" else ""
    parts = []
    if isinstance(data.get("limit_usd"), int | float):
        limit, spent = float(data["limit_usd"]), float(data.get("spent_usd") or 0)
        parts.append(f"{dollars(spent)} of {dollars(limit)}{per} ({spent / limit:.0%})")
    if isinstance(data.get("limit_tokens"), int):
        limit_t, spent_t = int(data["limit_tokens"]), int(data.get("spent_tokens") or 0)
        parts.append(f"{spent_t:,} of {limit_t:,} tokens{per} ({spent_t / limit_t:.0%})")
    return f"{scope} budget " + ", ".join(parts)
