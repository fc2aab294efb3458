"""What the run cost, cut by task, phase, adapter, account, model or day: ``council cost``'s
report (``spend.totals.cost_report`` over the ledger, the tasks and the budgets in force,
raised ones included), for the page's chart. Without the calls themselves: the chart needs the
groups, and a long run's calls are many."""

from __future__ import annotations

from typing import Any

from orchestrator.errors import UsageError
from orchestrator.models import utcnow
from orchestrator.spend.budgets import ScopeSpend, all_spends, raised
from orchestrator.spend.gate import RAISES
from orchestrator.spend.ledger import Ledger
from orchestrator.spend.totals import BY, cost_report
from orchestrator.web.source import WebSource

__all__ = ["cost_of"]


async def cost_of(source: WebSource, by: str) -> dict[str, Any]:
    """``council cost --by BY --json`` of the newest session, less its calls."""
    if by not in BY:
        raise UsageError(f"cost by {by!r}: choose one of {', '.join(BY)}")
    session = await source.newest()
    sid = session.session_id
    entries = await Ledger(source.store).entries()
    states = {state.task_id: state for state in source.kept_tasks(sid)}
    spends: list[ScopeSpend] = []
    if source.config is not None:
        record = await source.store.get_record(RAISES, sid)
        budgets = raised(source.config.budgets, record.data if record is not None else {})
        spends = all_spends(budgets, entries, sid, utcnow())
    report = cost_report(sid, entries, states, by=by, top=5, budgets=spends)
    data = report.model_dump(mode="json")
    data.pop("calls", None)
    return data
