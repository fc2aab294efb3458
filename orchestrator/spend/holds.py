"""A call held back, and what the spend gate says of it: the values (``CallPlan``, ``Hold``,
``SpendHeld``) and the ``Voice`` that says each thing once.

A task's call held is said (``call.held``) once per hold: a task held again by the same thing
(each tick of the scheduler asks) is not said again until its call starts (``released``). A
budget spent is said (``budget.exceeded``) once per scope, until a limit is raised, and
``on_exceeded`` hears it (the scheduler stops the run when ``budgets.on_exceed`` is ``stop``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator.events.spend import BudgetExceeded, CallHeld
from orchestrator.spend.budgets import Exceeded, Forecast
from orchestrator.spend.quota import QuotaHold
from orchestrator.state.protocol import StateStore

__all__ = ["CallPlan", "Hold", "SpendHeld", "Voice", "held_text"]


@dataclass(frozen=True)
class CallPlan:
    """A CLI call about to start."""

    task: str  # the attempt's task (a council candidate's own id)
    phase: str
    adapter: str
    attempt: int = 1
    model: str | None = None  # as configured; the CLI may say another
    log: str | None = None  # the name of the file its CLI's output goes to (``LedgerEntry.log``)


class SpendHeld(Exception):
    """The call was not started: a budget has no room for it (``until`` None: until raised),
    or its adapter's quota would not carry it before ``until``."""

    def __init__(self, reason: str, *, until: datetime | None, kind: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.until = until
        self.kind = kind  # "budget" or "quota"


@dataclass(frozen=True)
class Hold:
    """Why a call may not start now: ``kind`` ``quota`` (until ``until``, its reset) or
    ``budget`` (until raised); ``key`` what holds it (``quota:<adapter>``, a budget's scope),
    ``reason`` as people read it (a budget's starts ``budget: ``, as a task's record keeps it)."""

    kind: str
    key: str
    reason: str
    until: datetime | None
    forecast: Forecast | None = None  # a budget hold: the held call's forecast


def held_text(hold: QuotaHold) -> str:
    """A quota's hold as the event, the task's record and ``status`` say it."""
    return f"{hold.reason} until {hold.until.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}"


class Voice:
    """What one gate has said: each task's hold, each spent scope (module doc)."""

    def __init__(
        self,
        store: StateStore,
        on_exceeded: Callable[[Exceeded, str | None], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._on_exceeded = on_exceeded
        self._said: set[str] = set()  # scopes said spent, until raised
        self._holding: dict[str, tuple[str, datetime | None]] = {}  # task -> the hold said

    def raised(self) -> None:
        """A limit was raised: a scope is said again when it is spent again."""
        self._said.clear()

    async def held(self, plan: CallPlan, hold: Hold) -> bool:
        """Say that ``plan``'s call is held (a ``call.held`` event), once per hold of its task.
        True when it was said now."""
        said = (hold.key, hold.until)
        if self._holding.get(plan.task) == said:
            return False
        self._holding[plan.task] = said
        await self._store.emit(
            CallHeld(
                task_id=plan.task,
                phase=plan.phase,
                adapter=plan.adapter,
                reason=hold.reason.removeprefix("budget: "),
                until=hold.until.isoformat() if hold.until is not None else None,
                kind=hold.kind,
                forecast_usd=hold.forecast.usd if hold.forecast is not None else None,
                forecast_tokens=hold.forecast.tokens if hold.forecast is not None else None,
            )
        )
        return True

    def released(self, task: str) -> None:
        """``task``'s hold is over (its call starts, or it left the queue)."""
        self._holding.pop(task, None)

    async def exceeded(self, over: Exceeded, task: str | None, action: str) -> None:
        """Say that ``over``'s scope is spent (``action``: ``budgets.on_exceed``), once per
        scope until a limit is raised; ``on_exceeded`` hears it."""
        if over.scope.key in self._said:
            return
        self._said.add(over.scope.key)
        limit = over.scope.limit
        await self._store.emit(
            BudgetExceeded(
                scope=over.scope.key,
                field=over.scope.field,
                limit_usd=limit.usd,
                limit_tokens=limit.tokens,
                spent_usd=round(over.spend.usd, 6),
                spent_tokens=over.spend.tokens,
                action=action,
                message=over.message(),
                task_id=task,
            )
        )
        if self._on_exceeded is not None:
            await self._on_exceeded(over, task)
