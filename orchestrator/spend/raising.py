"""A budget of a run given more room: the one write behind ``council budget raise`` and the
issue's ``/council go on`` and ``/council raise <usd>`` (``forge.steering``).

The raised limits are one keyed record per session (``RAISES``), laid over the config's
``budgets:`` (``budgets.raised``: of the config's figure and a raised one, the larger holds).
A running gate reads it at its next tick (``SpendGate.refresh``) and starts what the budget
held. Writers do not overwrite each other: the record is written compare-and-set, read again
and retried when another process wrote it first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.config.budgets import BudgetsConfig, Limit
from orchestrator.errors import VersionConflict
from orchestrator.events.spend import BudgetRaised
from orchestrator.spend.budgets import raised
from orchestrator.state.protocol import StateStore

__all__ = ["RAISES", "budget_scope", "in_force", "raise_budget", "room_again"]

RAISES = "budget-raises"  # keyed records: session id -> the limits raised for that run
_TRIES = 5  # compare-and-set attempts against other writers


def budget_scope(key: str) -> str:
    """The scope ``council budget raise`` names for a scope key of ``budget.exceeded``:
    ``run``, ``task`` (every task's budget) or an adapter's name."""
    kind, _, name = key.partition(":")
    return name if kind == "adapter" else kind


def _limit_of(budgets: BudgetsConfig, scope: str) -> Limit | None:
    if scope in ("run", "task"):
        found: Limit | None = getattr(budgets, scope)
        return found
    return budgets.adapters.get(scope)


def room_again(
    configured: Limit,
    now: Limit,
    spent: tuple[float, int],
    coming: tuple[float, int] = (0.0, 0),
) -> dict[str, float | int | None]:
    """The figures that answer a budget's ask with "go on" (the issue's ``/council go on``,
    the page's button): room for the held call's forecast (``coming``, when it is known) and
    the budget's configured limit once more, beyond what was spent (``spent``: dollars,
    tokens) or the limit in force (``now``), whichever is more. Bounded and known before it
    is given."""
    new: dict[str, float | int | None] = {"usd": None, "tokens": None}
    if configured.usd is not None:
        new["usd"] = round(max(spent[0], now.usd or 0.0) + coming[0] + configured.usd, 6)
    if configured.tokens is not None:
        new["tokens"] = max(spent[1], now.tokens or 0) + coming[1] + configured.tokens
    return new


async def in_force(
    store: StateStore, budgets: BudgetsConfig, session_id: str, scope: str
) -> Limit | None:
    """Budget ``scope``'s limit in force for the session (the config's, raised)."""
    record = await store.get_record(RAISES, session_id)
    return _limit_of(raised(budgets, record.data if record is not None else {}), scope)


async def raise_budget(
    store: StateStore,
    budgets: BudgetsConfig,
    session_id: str,
    scope: str,
    new: Mapping[str, Any],
    *,
    add: bool = False,
) -> Limit:
    """Give budget ``scope`` (``run``, ``task`` or an adapter's name) of the session the
    figures in ``new`` (``usd``, ``tokens``; None or absent: unchanged), or with ``add`` that
    much more than the limit in force; emit ``budget.raised``; the limit now in force.
    ``ValueError`` when the result is no limit, or ``add`` is asked of a budget the config
    does not have."""
    given = {name: value for name, value in new.items() if value is not None}
    for _ in range(_TRIES):
        record = await store.get_record(RAISES, session_id)
        data: dict[str, Any] = dict(record.data) if record is not None else {}
        wanted = dict(given)
        if add:
            now = _limit_of(raised(budgets, data), scope)
            if now is None:
                raise ValueError(f"the run has no budget {scope!r} to raise")
            for name, more in given.items():
                held = getattr(now, name)
                if held is None:
                    raise ValueError(f"budget {scope!r} has no {name} limit to raise")
                wanted[name] = held + more
        if scope in ("run", "task"):
            data[scope] = {**(data.get(scope) or {}), **wanted}
        else:
            adapters = dict(data.get("adapters") or {})
            adapters[scope] = {**(adapters.get(scope) or {}), **wanted}
            data["adapters"] = adapters
        limit = _limit_of(raised(budgets, data), scope)  # refused here if it makes no limit
        assert limit is not None
        try:
            await store.put_record(
                RAISES,
                session_id,
                data,
                expected_version=record.version if record is not None else 0,
            )
        except VersionConflict:
            continue  # another process raised it meanwhile: read again
        await store.emit(BudgetRaised(scope=scope, limit_usd=limit.usd, limit_tokens=limit.tokens))
        return limit
    raise VersionConflict(f"{RAISES}/{session_id}", _TRIES, None)
