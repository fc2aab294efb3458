"""``council cost FILE``: what the newest run of FILE (or ``--session``) cost, from its ledger.

Totals, then one row per task (``--by phase|adapter|account|model|day`` for another cut), the
share of the dollars spent on calls whose work did not land (failed and retried attempts,
council candidates not chosen, cancelled tasks), the costliest tasks, each budget's spend
against its limit, and where each call's price came from: the CLI's own figure (``cli``), the
built-in table (``built-in <date>``), the config's ``prices:``, or none (``none``: counted in
tokens only). A call still open (running, or killed with its orchestrator) counts at its
forecast. ``--json`` prints ``CostReport`` (``orchestrator.spend.totals``): keys stable, money in
US dollars, tokens as counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli import console, event_loop
from orchestrator.cli.meant import meant_config
from orchestrator.cli.store_access import open_store, pick_session
from orchestrator.config.load import load_config
from orchestrator.config.run import RunConfig
from orchestrator.models import utcnow
from orchestrator.money import dollars
from orchestrator.run.stores import describe_state
from orchestrator.spend.budgets import all_spends, raised
from orchestrator.spend.gate import RAISES
from orchestrator.spend.ledger import Ledger
from orchestrator.spend.line import SpendLine
from orchestrator.spend.totals import BY, By, CostGroup, CostReport, cost_report

__all__ = ["cost"]


def cost(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="The run config the run was started from (default: the one meant here)."
        ),
    ] = None,
    by: Annotated[
        str,
        typer.Option("--by", help=f"One row per: {', '.join(BY)}.", show_default=True),
    ] = "task",
    top: Annotated[int, typer.Option("--top", min=0, help="How many costliest tasks.")] = 5,
    session: Annotated[
        str | None, typer.Option("--session", help="Session id (default: the newest run).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Show what the newest run of FILE cost: by task, phase, adapter, account or day."""
    file = meant_config(file, "cost")
    if by not in BY:
        from orchestrator.errors import UsageError

        raise UsageError(f"--by {by!r}: choose one of {', '.join(BY)}")
    config = load_config(file)
    report = event_loop.run(_report, config, by, top, session)
    if as_json:
        console.print_lines(report.model_dump_json(indent=2))
        return
    _print(report)


async def _report(config: RunConfig, by: By, top: int, session_id: str | None) -> CostReport:
    async with open_store(config) as store:
        session = await pick_session(
            store, session_id, unfinished=False, place=describe_state(config), config=config
        )
        sid = session.session_id
        entries = await Ledger(store).entries()
        states = {s.task_id: s for s in await store.list_tasks(sid)}
        record = await store.get_record(RAISES, sid)
        budgets = raised(config.budgets, record.data if record is not None else {})
        spends = all_spends(budgets, entries, sid, utcnow())
        return cost_report(sid, entries, states, by=by, top=top, budgets=spends)


def _row(group: CostGroup) -> tuple[object, ...]:
    priced = "" if not group.unpriced_calls else f"{group.unpriced_calls} no price"
    if group.open_calls:
        priced = ", ".join(p for p in (priced, f"{group.open_calls} open") if p)
    return (
        group.key,
        group.calls,
        dollars(group.usd),
        f"{group.input_tokens:,}",
        f"{group.output_tokens:,}",
        f"{group.cache_read_tokens + group.cache_write_tokens:,}",
        dollars(group.not_landed_usd),
        priced or "-",
    )


_COLUMNS = ("", "calls", "cost", "input", "output", "cache", "not landed", "note")


def _print(report: CostReport) -> None:
    total = report.total
    if not total.calls:
        console.print_lines(f"session {report.session_id}: no CLI call recorded yet")
        return
    rows = [_row(group) for group in report.groups] + [_row(total)]
    console.print_table(
        (report.by, *_COLUMNS[1:]), rows, title=f"session {report.session_id}: cost by {report.by}"
    )
    line = SpendLine(
        usd=total.usd,
        tokens=total.tokens,
        calls=total.calls,
        unpriced_calls=total.unpriced_calls,
        budgets=report.budgets,
    )
    console.print_lines(line.said())
    if report.not_landed_share is not None:
        console.print_lines(
            f"not landed: {dollars(total.not_landed_usd)} ({report.not_landed_share:.0%} of the "
            "cost: failed or retried attempts, candidates not chosen, cancelled tasks)"
        )
    if report.top_tasks and report.by != "task":
        costliest = ", ".join(f"{g.key} {dollars(g.usd)}" for g in report.top_tasks)
        console.print_lines(f"costliest tasks: {costliest}")
    sources = ", ".join(f"{name}: {count}" for name, count in report.cost_sources.items())
    console.print_lines(f"prices from: {sources} (built-in table as of {report.prices_as_of})")
