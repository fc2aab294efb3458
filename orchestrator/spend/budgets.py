"""Budgets against the ledger: which scopes a call counts to, what each has spent, and whether
a call with its forecast still fits.

A call counts to the run's budget, its task's (a council candidate's and the judge's calls
count to the council task) and its adapter's. What a scope has spent is the ledger's calls in
it: their cost once closed, their forecast while open (``ledger``). ``per: day`` counts the
calls started on the same UTC day, in every run the store holds; ``per: run`` those of this
run (its resumes included). A call fits when every scope it counts to has room for its
forecast; a scope already at its limit has room for nothing, whatever the forecast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from orchestrator.config.budgets import BudgetsConfig, Limit
from orchestrator.money import dollars
from orchestrator.spend.ledger import LedgerEntry

__all__ = [
    "Exceeded",
    "Forecast",
    "Scope",
    "ScopeSpend",
    "all_spends",
    "check",
    "counts_to",
    "plural",
    "raised",
    "scopes_for",
    "spent",
]

Kind = Literal["run", "task", "adapter"]


@dataclass(frozen=True)
class Scope:
    kind: Kind
    name: str  # "" for the run, the task id, the adapter name
    limit: Limit

    @property
    def key(self) -> str:
        return self.kind if self.kind == "run" else f"{self.kind}:{self.name}"

    @property
    def field(self) -> str:
        """Where it is set in the run config."""
        return {"run": "budgets.run", "task": "budgets.task"}.get(
            self.kind, f"budgets.adapters.{self.name}"
        )

    def said(self) -> str:
        whose = {"run": "the run's", "task": f"task {self.name}'s"}.get(
            self.kind, f"adapter {self.name}'s"
        )
        return f"{whose} budget ({self.limit.said()}, {self.field})"


@dataclass(frozen=True)
class Forecast:
    usd: float = 0.0
    tokens: int = 0
    basis: str = "none"  # "median of N", "budgets.estimate", "none"


@dataclass(frozen=True)
class ScopeSpend:
    scope: Scope
    usd: float
    tokens: int

    def share(self) -> float | None:
        """The larger of the spent shares of its limits (0.5: half)."""
        limit = self.scope.limit
        shares = []
        if limit.usd is not None:
            shares.append(self.usd / limit.usd)
        if limit.tokens is not None:
            shares.append(self.tokens / limit.tokens)
        return max(shares) if shares else None

    def as_data(self) -> dict[str, Any]:
        limit = self.scope.limit
        return {
            "scope": self.scope.key,
            "field": self.scope.field,
            "limit_usd": limit.usd,
            "limit_tokens": limit.tokens,
            "per": limit.per,
            "spent_usd": round(self.usd, 6),
            "spent_tokens": self.tokens,
        }


@dataclass(frozen=True)
class Exceeded:
    """A call that does not fit, and the scope it does not fit in."""

    spend: ScopeSpend
    forecast: Forecast

    @property
    def scope(self) -> Scope:
        return self.spend.scope

    def message(self) -> str:
        spent = dollars(self.spend.usd)
        if self.scope.limit.tokens is not None:
            spent += f" / {self.spend.tokens:,} tokens"
        coming = ""
        if self.forecast.usd or self.forecast.tokens:
            coming = (
                f"; the next call's forecast ({dollars(self.forecast.usd)}, "
                f"{self.forecast.tokens:,} tokens, {self.forecast.basis}) would pass it"
            )
        return f"{self.scope.said()} is spent: {spent} so far{coming}"


def raised(budgets: BudgetsConfig, raises: Mapping[str, Any]) -> BudgetsConfig:
    """``budgets`` with the limits ``council budget raise`` recorded laid over them (the
    larger of the two figures holds, so a config edited upward is not held back)."""
    update: dict[str, Any] = {}
    for kind in ("run", "task"):
        if isinstance(raises.get(kind), Mapping):
            update[kind] = _over(getattr(budgets, kind), raises[kind])
    if isinstance(raises.get("adapters"), Mapping):
        adapters = dict(budgets.adapters)
        for name, limit in raises["adapters"].items():
            if isinstance(limit, Mapping):
                adapters[name] = _over(adapters.get(name), limit)
        update["adapters"] = adapters
    return budgets.model_copy(update=update) if update else budgets


def _over(limit: Limit | None, new: Mapping[str, Any]) -> Limit:
    """The larger of each of ``limit``'s and ``new``'s figures (a raise never lowers one)."""
    base: dict[str, Any] = limit.model_dump() if limit is not None else {}
    for name in ("usd", "tokens"):
        value = new.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            base[name] = value if base.get(name) is None else max(base[name], value)
    return Limit.model_validate(base)


def scopes_for(budgets: BudgetsConfig, task: str, adapter: str) -> list[Scope]:
    scopes = []
    if budgets.run is not None:
        scopes.append(Scope("run", "", budgets.run))
    if budgets.task is not None:
        scopes.append(Scope("task", task, budgets.task))
    if adapter in budgets.adapters:
        scopes.append(Scope("adapter", adapter, budgets.adapters[adapter]))
    return scopes


def counts_to(entry: LedgerEntry, scope: Scope, session_id: str, now: datetime) -> bool:
    """``entry`` is one of the calls ``scope`` counts (on ``now``'s day for one per day)."""
    if scope.limit.per == "day" and entry.started_at.date() != now.date():
        return False
    # An adapter's budget per day is its account's, across runs; every other is this run's.
    across_runs = scope.kind == "adapter" and scope.limit.per == "day"
    if not across_runs and entry.session_id != session_id:
        return False
    if scope.kind == "task":
        return entry.task == scope.name
    if scope.kind == "adapter":
        return entry.adapter == scope.name
    return True


def plural(phase: str, count: int) -> str:
    return f"{phase} call{'s' if count != 1 else ''}"


def spent(
    entries: Iterable[LedgerEntry], scope: Scope, session_id: str, now: datetime
) -> ScopeSpend:
    usd, tokens = 0.0, 0
    for entry in entries:
        if counts_to(entry, scope, session_id, now):
            usd += entry.counted_usd
            tokens += entry.counted_tokens
    return ScopeSpend(scope, usd, tokens)


def all_spends(
    budgets: BudgetsConfig, entries: Iterable[LedgerEntry], session_id: str, now: datetime
) -> list[ScopeSpend]:
    """Every budget's spend: the run's, each adapter's, and the tasks' whose budget is spent."""
    entries = list(entries)
    found = []
    if budgets.run is not None:
        found.append(spent(entries, Scope("run", "", budgets.run), session_id, now))
    for name, limit in budgets.adapters.items():
        found.append(spent(entries, Scope("adapter", name, limit), session_id, now))
    if budgets.task is not None:
        limit = budgets.task
        tasks = sorted({e.task for e in entries if e.session_id == session_id})
        each = [spent(entries, Scope("task", task, limit), session_id, now) for task in tasks]
        found.extend(spend for spend in each if (spend.share() or 0) >= 1)
    return found


def check(
    scopes: Iterable[Scope], coming: Forecast, spent_of: Callable[[Scope], ScopeSpend]
) -> Exceeded | None:
    """The first scope the coming call does not fit in (``spent_of``: what a scope has spent
    so far), None when it fits in all."""
    for scope in scopes:
        spend = spent_of(scope)
        limit = scope.limit
        if limit.usd is not None and (spend.usd >= limit.usd or spend.usd + coming.usd > limit.usd):
            return Exceeded(spend, coming)
        if limit.tokens is not None and (
            spend.tokens >= limit.tokens or spend.tokens + coming.tokens > limit.tokens
        ):
            return Exceeded(spend, coming)
    return None
