"""The run report as people read it: the summary table ``run``, ``resume`` and ``status``
print, and how a run's command ends (its report, the command that continues a stopped run, the
exit code).

Tables keep ids (task, branch, commit) whole; a terminal too narrow for the rest drops lesser
columns and says which, ``--wide`` shows them all and full commit ids, and piped output is the
plain layout, every cell whole (``console.print_table``). Light on purpose: ``council status``
imports it, and must not import the run machinery.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import typer

from orchestrator.cli import console
from orchestrator.cli.status.summary_columns import (
    HELD_BY,
    SERVICES,
    SHORT_COMMIT,
    SUMMARY,
    JsonOption,
    WideOption,
)
from orchestrator.models import SessionStatus, TaskStatus
from orchestrator.run.reports.report import RunReport, StackLink, StackReport, TaskReport
from orchestrator.services.records import note

__all__ = [
    "SUMMARY",
    "JsonOption",
    "WideOption",
    "finish",
    "print_summary",
    "services_text",
    "spend_lines",
    "status_text",
    "summary",
    "summary_table",
]


def finish(
    report: RunReport, as_json: bool, wide: bool = False, config: Path | None = None
) -> None:
    import shlex  # a run's end only: not on ``status``'s path

    if as_json:
        console.print_lines(report.model_dump_json(indent=2))
    else:
        print_summary(report, wide)
    if report.totals.waiting_for_checkout and config is not None:
        # On stderr, so --json output stays one JSON document.
        for task in report.tasks:
            if task.status == TaskStatus.WAITING_FOR_CHECKOUT:
                console.print_warning(
                    f"{task.task_id} did not land, its work is kept on {task.branch or '-'}: "
                    f"{task.waiting or 'the base branch checkout was not landable'}"
                )
        console.print_warning(
            f"once that is cleared, land it with:\n  council resume {shlex.quote(str(config))}"
        )
    elif report.totals.in_review and config is not None:
        # On stderr, so --json output stays one JSON document.
        for task in report.tasks:
            if task.status == TaskStatus.IN_REVIEW and task.pull is not None:
                console.print_warning(
                    f"{task.task_id}: pull request #{task.pull.number} waits "
                    f"({task.pull.waiting or 'review'}): {task.pull.url}"
                )
        console.print_warning(
            "once they are reviewed or merged, follow them with:\n"
            f"  council resume {shlex.quote(str(config))}"
        )
    elif report.status == SessionStatus.INTERRUPTED and config is not None:
        # On stderr, so --json output stays one JSON document.
        listed = report.totals.tasks
        left = listed - report.totals.done
        if left == 0:  # stopped once the last task had landed: nothing to go on with
            console.print_warning(f"stopped after every task was done ({listed} of {listed})")
        else:
            console.print_warning(
                f"stopped with {left} of {listed} task(s) not done; continue with:\n"
                f"  council resume {shlex.quote(str(config))}"
            )
    raise typer.Exit(report.exit_code)


def summary_table(
    report: RunReport, wide: bool = False
) -> tuple[tuple[console.Column, ...], list[tuple[object, ...]], str]:
    """``summary``'s rows and title with their columns: a ``services`` column when a task of
    the run has services (each session's services and their state)."""
    rows, title = summary(report, wide)
    if not any(task.services for task in report.tasks):
        return SUMMARY, rows, title
    rows = [(*row, services_text(t)) for row, t in zip(rows, report.tasks, strict=True)]
    return (*SUMMARY, SERVICES), rows, title


def print_summary(report: RunReport, wide: bool = False) -> None:
    columns, rows, title = summary_table(report, wide)
    if report.team is None:
        console.print_table(columns, rows, title=title, wide=wide)
        _print_spend(report)
        return
    # A team run: who holds each task, and which workstations are in it now.
    held = [(*row, _holder(task)) for row, task in zip(rows, report.tasks, strict=True)]
    console.print_table((*columns, HELD_BY), held, title=f"{title} (team {report.team})", wide=wide)
    if not report.workstations:
        console.print_lines("no workstation is working in this run now")
    for station in report.workstations:
        console.print_lines(
            f"workstation {station.host}:{station.pid} ({station.workstation}): "
            f"{station.running} running, last seen {_ago(station.last_seen)}"
        )
    _print_spend(report)


def _print_spend(report: RunReport) -> None:
    for line in spend_lines(report):
        console.print_lines(line)


def spend_lines(report: RunReport) -> list[str]:
    """What the run's CLI calls cost, against its budgets; each task a quota holds, and the
    budget the run waits for: the lines after the table."""
    lines = [report.spend.said()] if report.spend is not None else []
    for task in report.tasks:
        if task.held and not task.held.startswith("budget: "):  # a quota's: until its reset
            lines.append(f"held: {task.task_id}: {task.held}")
    held = next((t.waiting for t in report.tasks if (t.waiting or "").startswith("budget: ")), None)
    if held is None and report.spend is not None:
        held = report.spend.held
    if held is not None:
        lines.append(
            f"waiting for a budget: {held.removeprefix('budget: ')}; raise it (`council budget "
            "raise`, or the config) and `council resume` goes on"
        )
    return lines


def services_text(task: TaskReport) -> str:
    """The task's session's services and their state: ``web ready, db failed`` ('-': none)."""
    return note(task.services) or "-"


def _holder(task: TaskReport) -> str:
    """``host:pid`` of the task's claim, with the time its lease has left while held."""
    if task.holder is None:
        return "-"
    who = ":".join(task.holder.split(":")[:2])
    if task.lease_expires is None:
        return who
    left = (task.lease_expires - datetime.now(UTC)).total_seconds()
    return f"{who} (lease {left:.0f}s)" if left > 0 else f"{who} (lease lapsed)"


def _ago(moment: datetime) -> str:
    seconds = max(0.0, (datetime.now(UTC) - moment).total_seconds())
    return f"{seconds:.0f}s ago"


def summary(report: RunReport, wide: bool = False) -> tuple[list[tuple[object, ...]], str]:
    """The summary's rows (commit ids short unless ``wide``) and its title."""
    rows: list[tuple[object, ...]] = [
        (
            t.task_id,
            status_text(t),
            t.adapter or "-",
            t.attempts,
            t.branch or "-",
            _commit(t.merged_commit, wide),
            f"{t.duration_seconds:.1f}s" if t.duration_seconds is not None else "-",
            t.error or "",
        )
        for t in report.tasks
    ]
    totals = report.totals
    title = (
        f"session {report.session_id}: {report.status}, {totals.done}/{totals.tasks} done, "
        f"{totals.failed} failed, {totals.conflict} in conflict"
    )
    if totals.unrecorded:
        title += f"; {totals.unrecorded} of them not recorded yet (queued)"
    return rows, title


def _commit(commit: str | None, wide: bool) -> str:
    if commit is None:
        return "-"
    return commit if wide else commit[:SHORT_COMMIT]


def stack_text(stack: StackReport) -> str:
    """``stack 2: on #12 one, under #14 three``: a pull request's place in its stack."""

    def named(links: Sequence[StackLink]) -> str:
        return ", ".join(f"#{x.number} {x.task_id}" if x.number else x.task_id for x in links)

    where = [f"on {named(stack.below)}"] if stack.below else []
    where += [f"under {named(stack.above)}"] if stack.above else []
    return f"stack {stack.place}: {', '.join(where)}" if where else f"stack {stack.place}"


def status_text(task: TaskReport) -> str:
    """A task's status; a parked one says when its park lifts (local time), on which
    adapter, and which park of the task it is."""
    if task.status != TaskStatus.PARKED or task.parked_until is None:
        shown = f"{task.status}: {task.waiting}" if task.waiting else str(task.status)
        done = [name for name, phase in task.phases.items() if phase == "completed"]
        if task.status == TaskStatus.QUEUED and done:
            # Stopped part-way (Ctrl-C, a budget): what it goes on from, not a bare "queued"
            # beside 0 attempts (an interrupted attempt is not counted as one).
            shown += f" ({', '.join(done)} done)"
        if task.pull is not None:
            pull = task.pull
            shown += (
                f" (PR #{pull.number} {pull.state}, {pull.approvals} approval(s), "
                f"checks {pull.checks}, round {pull.round})"
            )
            if pull.stack is not None:
                shown += f" ({stack_text(pull.stack)})"
        if task.vanished:
            gone = task.vanished[-1]
            again = "landed again" if task.status == TaskStatus.DONE else "not landed again"
            shown += f" (landing {gone.commit[:SHORT_COMMIT]} vanished; {again})"
        if task.collision:
            shown += f" ! {task.collision}"  # the collision radar's mark
        return shown
    clock = task.parked_until.astimezone().strftime("%H:%M:%S")
    return f"parked until {clock} ({task.parked_adapter or task.adapter or '-'}, park {task.parks})"
