"""``council run`` and ``council resume``: run a config, continue one.

- ``run FILE``: runs every task of FILE with a live table of the sessions (task, phase,
  adapter, status, elapsed, last message), then prints a summary table. ``--json`` prints the
  ``RunReport`` as JSON instead (and no table); ``--dry-run`` prints the plan (task order,
  phases, adapters) and the exact redacted command of each phase's first adapter, and runs
  nothing.
- ``resume FILE``: continues the newest interrupted (or killed) session of FILE's repository.

The summary table is ``council status``'s too (``status_cmd``), so this module imports the run
machinery (``Council``) only inside the commands that run.

``run`` and ``resume`` refuse, before they write anything, a config or a setup that cannot
work (``preflight``: a missing CLI binary, a symlinked ``.council``...) and a repository on
which another orchestrator is running (``run_lock``), each in one line.

Ctrl-C (or SIGTERM) stops gracefully: no new sessions, running CLIs cancelled with their work
committed, a checkpoint written; a second one stops at once, CLIs killed. Exit codes: 0 every
task done, 1 some task did not end done, 2 bad usage or config (or another orchestrator runs
on the repository), 130 interrupted.
"""

from __future__ import annotations

import json
import shlex
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio
import typer

from orchestrator.cli import console
from orchestrator.errors import CouncilError
from orchestrator.event_text import TRANSITIONS, sentence
from orchestrator.events import Event
from orchestrator.models import TaskStatus
from orchestrator.run.report import RunReport, TaskReport

if TYPE_CHECKING:
    from orchestrator.council import Council
    from orchestrator.run.plan import RunPlan, TaskPlan

__all__ = ["resume", "run"]

_COLUMNS = ("task", "phase", "adapter", "status", "elapsed", "last message")
_SUMMARY = ("task", "status", "adapter", "attempts", "branch", "merged", "time", "error")
_REFRESH = 0.25

JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


def run(
    file: Annotated[Path, typer.Argument(help="Run config (YAML).")],
    as_json: JsonOption = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and commands; run nothing.")
    ] = False,
) -> None:
    """Run every task of FILE until each is merged, failed or in conflict."""
    from orchestrator.council import Council

    council = Council.from_config(file)
    if dry_run:
        _print_plan(council.plan(), as_json)
        return
    report = anyio.run(_drive, council, council.run, not as_json)
    _finish(report, as_json)


def resume(
    file: Annotated[Path, typer.Argument(help="The run config the session was started from.")],
    session: Annotated[
        str | None, typer.Option("--session", help="Session id (default: the newest).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Continue an interrupted or killed run from where it stood."""
    from orchestrator.council import Council, check_resumable

    council = Council.from_config(file)
    # Refused in this order, and before `async with` creates `.council`: the setup's own
    # problems first, then a repository where no run ever kept state.
    anyio.run(council.preflight)
    check_resumable(council.config)
    report = anyio.run(_drive, council, lambda: council.resume(session), not as_json)
    _finish(report, as_json)


async def _drive(
    council: Council, start: Callable[[], Awaitable[RunReport]], live: bool
) -> RunReport:
    if not console.is_terminal():
        # Piped or redirected (nohup, CI): no live table can be drawn, so one line per task
        # transition says what happens as it happens (on stderr when stdout is --json data).
        council.subscribe(_transition_lines(to_stderr=not live))
    async with council:
        report: RunReport | None = None
        refused: CouncilError | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(_on_signals, council)
            if live:
                group.start_soon(_show_live, council)
            try:
                report = await start()
            except CouncilError as exc:
                # Raised here, the task group would wrap it in an ExceptionGroup, which the
                # command's error handler does not know: a traceback instead of one line.
                refused = exc
            group.cancel_scope.cancel()
        if refused is not None:
            raise refused
        assert report is not None  # start() returned, or its error went up
        return report


def _transition_lines(*, to_stderr: bool) -> Callable[[Event], None]:
    def show(event: Event) -> None:
        if event.type in TRANSITIONS:
            stamp = event.ts.astimezone().strftime("%H:%M:%S")
            console.print_plain(f"{stamp} {sentence(event)}", to_stderr=to_stderr)

    return show


async def _on_signals(council: Council) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        received = 0
        async for _ in signals:
            received += 1
            if received == 1:
                console.print_error("stopping: sessions are committing their work (again: kill)")
                council.stop()
            else:
                council.kill()


async def _show_live(council: Council) -> None:
    with console.live_table(_COLUMNS) as update:
        while True:
            rows = [
                (s.task_id, s.phase or "-", s.adapter, s.status, f"{s.elapsed:.0f}s", s.message)
                for s in council.live()
            ]
            update(rows, f"council: {len(rows)} running")
            await anyio.sleep(_REFRESH)


def _finish(report: RunReport, as_json: bool) -> None:
    if as_json:
        console.print_lines(report.model_dump_json(indent=2))
    else:
        _print_summary(report)
    raise typer.Exit(report.exit_code)


def _print_summary(report: RunReport) -> None:
    rows, title = _summary(report)
    if report.team is None:
        console.print_table(_SUMMARY, rows, title=title)
        return
    # A team run: who holds each task, and which workstations are in it now.
    held = [(*row, _holder(task)) for row, task in zip(rows, report.tasks, strict=True)]
    console.print_table((*_SUMMARY, "held by"), held, title=f"{title} (team {report.team})")
    if not report.workstations:
        console.print_lines("no workstation is working in this run now")
    for station in report.workstations:
        console.print_lines(
            f"workstation {station.host}:{station.pid} ({station.workstation}): "
            f"{station.running} running, last seen {_ago(station.last_seen)}"
        )


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


def _summary(report: RunReport) -> tuple[list[tuple[object, ...]], str]:
    rows: list[tuple[object, ...]] = [
        (
            t.task_id,
            _status(t),
            t.adapter or "-",
            t.attempts,
            t.branch or "-",
            (t.merged_commit or "-")[:10],
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
    return rows, title


def _status(task: TaskReport) -> str:
    """A task's status; a parked one says when its park lifts (local time), on which
    adapter, and which park of the task it is."""
    if task.status != TaskStatus.PARKED or task.parked_until is None:
        return str(task.status)
    clock = task.parked_until.astimezone().strftime("%H:%M:%S")
    return f"parked until {clock} ({task.parked_adapter or task.adapter or '-'}, park {task.parks})"


def _print_plan(plan: RunPlan, as_json: bool) -> None:
    if as_json:
        console.print_lines(plan.model_dump_json(indent=2))
        return
    lines = [f"plan for {plan.repo} (base {plan.base_branch}, capacity {plan.capacity}):"]
    for number, task in enumerate(plan.tasks, 1):
        after = f", after {', '.join(task.depends_on)}" if task.depends_on else ""
        files = f", files {', '.join(task.files)}" if task.files else ""
        lines.append(f"{number}. {task.task_id} (priority {task.priority}{after}{files})")
        if task.candidates:
            judge = f"; if more than one passes, {task.judge} picks the one merged"
            lines.append(f"   council of {len(task.candidates)} candidates{judge}:")
            for candidate in task.candidates:
                lines.append(f"   - {candidate.task_id}")
                lines.extend(_phase_lines(candidate, "     "))
        lines.extend(_phase_lines(task, "   "))
    console.print_lines("\n".join(lines))


def _phase_lines(task: TaskPlan, indent: str) -> list[str]:
    lines = []
    for phase in task.phases:
        chain = " -> ".join(phase.adapters) or "no adapter"
        command = shlex.join(phase.argv) if phase.argv is not None else f"({phase.error})"
        lines.append(f"{indent}{phase.phase} [{chain}]: {command}")
        if phase.env:
            lines.append(f"{indent}  env: {json.dumps(phase.env, sort_keys=True)}")
    return lines
