"""What a run cost, from its ledger: totals, by task, phase, adapter, account, model or day, the
share spent on calls whose work did not land, the costliest tasks and each budget's spend
(``council cost``, the run summary and ``status``).

A call's work landed when its task ended ``done`` by the attempt that made the call (a council
candidate's: when that candidate won; the judge's: when its council task landed). Everything
else (failed and retried attempts, candidates not chosen, cancelled tasks, calls still open) did
not land, whatever it cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, field_serializer

from orchestrator.models import TaskState, TaskStatus
from orchestrator.spend.budgets import ScopeSpend
from orchestrator.spend.ledger import LedgerEntry
from orchestrator.spend.prices import PRICES_AS_OF

__all__ = ["BY", "CostGroup", "CostReport", "cost_report"]

By = Literal["task", "phase", "adapter", "account", "model", "day"]
BY: tuple[By, ...] = ("task", "phase", "adapter", "account", "model", "day")

_KEYS: dict[str, Callable[[LedgerEntry], str]] = {
    "task": lambda e: e.task,
    "phase": lambda e: e.phase,
    "adapter": lambda e: e.adapter,
    "account": lambda e: e.account or f"{e.adapter}: (running)",
    "model": lambda e: e.model or "(the CLI's default)",
    "day": lambda e: e.started_at.date().isoformat(),
}


class CostGroup(BaseModel):
    key: str
    calls: int = 0
    usd: float = 0.0
    tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    unpriced_calls: int = 0  # counted in tokens only: no price known ("no price")
    open_calls: int = 0  # started, never said what they spent: counted at their forecast
    not_landed_usd: float = 0.0

    @field_serializer("usd", "not_landed_usd")
    def _dollars(self, value: float) -> float:
        return round(value, 6)

    def add(self, entry: LedgerEntry, landed: bool) -> None:
        self.calls += 1
        self.usd += entry.counted_usd
        self.tokens += entry.counted_tokens
        self.input_tokens += entry.input_tokens
        self.output_tokens += entry.output_tokens
        self.cache_read_tokens += entry.cache_read_tokens
        self.cache_write_tokens += entry.cache_write_tokens
        self.unpriced_calls += int(not entry.open and not entry.priced)
        self.open_calls += int(entry.open)
        if not landed:
            self.not_landed_usd += entry.counted_usd


class CostReport(BaseModel):
    """``council cost --json``: stable keys, money in US dollars, tokens as counts."""

    session_id: str
    by: str
    total: CostGroup
    not_landed_share: float | None  # of the dollars; None when nothing was priced
    groups: list[CostGroup]
    top_tasks: list[CostGroup]
    budgets: list[dict[str, object]]
    cost_sources: dict[str, int]  # "cli" / "built-in <date>" / "prices.<model>" / "none": calls
    prices_as_of: str = PRICES_AS_OF
    calls: list[LedgerEntry] = []  # every call of the run, oldest first (the ledger's records)

    @field_serializer("not_landed_share")
    def _share(self, value: float | None) -> float | None:
        return None if value is None else round(value, 4)


def _landed(entry: LedgerEntry, states: Mapping[str, TaskState]) -> bool:
    own = states.get(entry.candidate or entry.task)
    if own is None or own.status != TaskStatus.DONE or entry.open:
        return False
    return entry.phase == "council" or own.attempt in (0, entry.attempt)


def cost_report(
    session_id: str,
    entries: Iterable[LedgerEntry],
    states: Mapping[str, TaskState],
    *,
    by: By = "task",
    top: int = 5,
    budgets: Sequence[ScopeSpend] = (),
) -> CostReport:
    total = CostGroup(key="total")
    groups: dict[str, CostGroup] = {}
    tasks: dict[str, CostGroup] = {}
    sources: dict[str, int] = {}
    calls: list[LedgerEntry] = []
    for entry in entries:
        if entry.session_id != session_id:
            continue
        calls.append(entry)
        landed = _landed(entry, states)
        total.add(entry, landed)
        key = _KEYS[by](entry)
        groups.setdefault(key, CostGroup(key=key)).add(entry, landed)
        tasks.setdefault(entry.task, CostGroup(key=entry.task)).add(entry, landed)
        source = "open" if entry.open else entry.cost_source
        sources[source] = sources.get(source, 0) + 1
    share = total.not_landed_usd / total.usd if total.usd > 0 else None
    ordered = sorted(groups.values(), key=lambda g: g.key if by == "day" else (-g.usd, g.key))
    costliest = sorted(tasks.values(), key=lambda g: (-g.usd, -g.tokens, g.key))[:top]
    return CostReport(
        session_id=session_id,
        by=by,
        total=total,
        not_landed_share=share,
        groups=ordered,
        top_tasks=costliest,
        budgets=[spend.as_data() for spend in budgets],
        cost_sources=dict(sorted(sources.items())),
        calls=calls,
    )
