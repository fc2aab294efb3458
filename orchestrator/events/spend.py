"""Spending: a budget spent, raised, and a CLI call held back before it started
(``orchestrator.spend``)."""

from __future__ import annotations

from typing import Literal

from orchestrator.events.base import TypedEvent

__all__ = ["BudgetExceeded", "BudgetRaised", "CallHeld"]


class BudgetExceeded(TypedEvent):
    """A budget has no room for the next call: nothing new starts in its scope (``pause`` and
    ``ask``), or the run stops (``stop``)."""

    type: Literal["budget.exceeded"] = "budget.exceeded"
    scope: str  # "run", "task:<id>", "adapter:<name>"
    field: str  # where it is set: budgets.run, budgets.task, budgets.adapters.<name>
    limit_usd: float | None = None
    limit_tokens: int | None = None
    spent_usd: float
    spent_tokens: int
    action: str  # budgets.on_exceed
    message: str
    task_id: str | None = None  # the task whose call found it spent


class BudgetRaised(TypedEvent):
    """``council budget raise`` (or an edited config on resume) gave a scope more room."""

    type: Literal["budget.raised"] = "budget.raised"
    scope: str
    limit_usd: float | None = None
    limit_tokens: int | None = None


class CallHeld(TypedEvent):
    """A CLI call was not started: a budget has no room for it, or its adapter's quota would
    not carry it before a known reset (``until``). Said once per hold of a task (not each time
    the scheduler asks again), at its dispatch or before a later phase's call."""

    type: Literal["call.held"] = "call.held"
    task_id: str
    phase: str
    adapter: str
    reason: str
    until: str | None = None  # ISO time the quota resets; None: until a budget is raised
    kind: str = ""  # "quota" or "budget" (empty in logs written before it was said)
    # A budget hold: the held call's forecast, the room it needs (``/council go on`` gives it)
    forecast_usd: float | None = None
    forecast_tokens: int | None = None
