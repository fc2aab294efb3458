"""A spent budget's ask answered from the page: "go on", the issue's ``/council go on``.

A budget with no room left holds what would spend more (``budgets.on_exceed: pause`` or
``ask``) until a person answers. The page offers "Go on" on each budget of the run's spend
line that is spent; the answer gives it room for its configured limit once more beyond what
was spent or the limit in force, whichever is more (``spend.raising.room_again``, the rule of
``/council go on``; the held call's forecast, which only the running orchestrator knows, is
not added), written as ``council budget raise`` writes it (``spend.raising.raise_budget``):
the run's gate reads it at its next tick and starts what the budget held.
"""

from __future__ import annotations

from pydantic import ValidationError

from orchestrator.config.budgets import Limit
from orchestrator.errors import UsageError
from orchestrator.spend.line import NAMESPACE as SPEND_LINES
from orchestrator.spend.line import SpendLine
from orchestrator.spend.raising import budget_scope, in_force, raise_budget, room_again
from orchestrator.web.source import WebSource

__all__ = ["go_on"]


async def go_on(source: WebSource, scope: str) -> str:
    """Budget ``scope`` (``run``, ``task`` or an adapter's name) of the newest session given
    room once more (module doc); what it is now."""
    if source.config is None:
        raise UsageError("answering a budget needs the run's config: start `council web FILE`")
    budgets = source.config.budgets
    configured: Limit | None = (
        getattr(budgets, scope) if scope in ("run", "task") else budgets.adapters.get(scope)
    )
    if configured is None:
        known = ", ".join(["run", "task", *budgets.adapters])
        raise UsageError(f"no budget {scope!r} in the run's config (budgets: {known})")
    session_id = (await source.newest()).session_id
    spent = await _spent(source, session_id, scope)
    now = await in_force(source.store, budgets, session_id, scope) or configured
    new = room_again(configured, now, spent)
    try:
        limit = await raise_budget(source.store, budgets, session_id, scope, new)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return (
        f"budget {scope} is now {limit.said()} (room for its configured limit once more); "
        "what it held goes on at the run's next tick"
    )


async def _spent(source: WebSource, session_id: str, scope: str) -> tuple[float, int]:
    """The most spent in ``scope`` (each task's, for ``task``) as the run's spend line says."""
    record = await source.store.get_record(SPEND_LINES, session_id)
    try:
        line = SpendLine.model_validate(record.data) if record is not None else None
    except ValidationError:
        line = None
    entries = [
        b for b in (line.budgets if line else []) if budget_scope(str(b.get("scope", ""))) == scope
    ]
    usd = max((float(b.get("spent_usd") or 0) for b in entries), default=0.0)
    tokens = max((int(b.get("spent_tokens") or 0) for b in entries), default=0)
    return usd, tokens
