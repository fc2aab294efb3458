"""``council status --watch``: the newest run's table, redrawn until the run ends.

It redraws when a task, the session or a workstation's presence is written, as the store's
watcher hears it from any process (the event log, woken by inotify; LISTEN/NOTIFY on a
database: ``StateStore.watch``), at most every ``_REDRAW_EVERY`` seconds while writes keep
coming, and every ``_RECHECK`` seconds without one, for what no write tells (an orchestrator
that died, a presence gone stale). On anything but a terminal it prints one line per task
status change. It ends once the session record says the run ended (every task ended is not
enough: the run writes its session last, what its calls cost with it) or its orchestrator is
gone, then prints that report and exits with the run's exit code; Ctrl-C exits 130. Idle, it
costs next to no CPU: ``bench/watch_bench.py`` measures it against polling.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import typer

from orchestrator.cli import console, event_loop
from orchestrator.cli.status.summary import SUMMARY, finish, summary_table
from orchestrator.cli.store_access import report_reader
from orchestrator.models import SessionStatus
from orchestrator.scheduler.team.presence import NAMESPACE as PRESENCE
from orchestrator.services.records import NAMESPACE as SERVICES
from orchestrator.state.changes import ChangeStream, RecordChange

if TYPE_CHECKING:
    from orchestrator.config.origin import ConfigOrigin
    from orchestrator.config.run import RunConfig
    from orchestrator.run.reports.report import RunReport

__all__ = ["watch_status"]

_RECHECK = 5.0  # seconds between redraws while nothing is written
_REDRAW_EVERY = 0.1  # seconds at least between two redraws while writes keep coming
# The kinds of record the table shows (a session's services: ``services.records``).
_SHOWN = ("tasks", "sessions", f"records/{PRESENCE}", f"records/{SERVICES}")


def watch_status(
    where: Path | RunConfig,
    as_json: bool,
    wide: bool = False,
    events: Path | None = None,
    origin: ConfigOrigin | None = None,
) -> None:
    """``status --watch`` (see the module doc); always ends by raising ``typer.Exit``."""
    try:
        report = event_loop.run(_watch_until_signal, where, events, not as_json, origin)
    except KeyboardInterrupt:  # before the loop listens for it
        report = None
    if report is None:
        console.print_error("interrupted")
        raise typer.Exit(130)
    finish(report, as_json, wide)


async def _watch_until_signal(
    where: Path | RunConfig, events: Path | None, show: bool, origin: ConfigOrigin | None = None
) -> RunReport | None:
    """``_watch``, or None once SIGINT or SIGTERM arrives. The loop listens for them itself:
    asyncio's own Ctrl-C (the main task cancelled, then KeyboardInterrupt) could be taken for
    the end of one of the watch's own timed waits, and the watch went on to the run's end."""
    watched: list[RunReport] = []
    async with anyio.create_task_group() as group:

        async def on_signal() -> None:
            with anyio.open_signal_receiver(*event_loop.stop_signals()) as received:
                async for _ in received:
                    group.cancel_scope.cancel()
                    return

        group.start_soon(on_signal)
        watched.append(await _watch(where, events, show, origin))
        group.cancel_scope.cancel()
    return watched[0] if watched else None


async def _watch(
    where: Path | RunConfig, events: Path | None, show: bool, origin: ConfigOrigin | None
) -> RunReport:
    seen: dict[str, str] = {}
    # The watch is entered before the first read: a write between the two is heard.
    async with report_reader(where, events, origin) as reader, reader.store.watch() as changes:
        columns = list(SUMMARY)  # drawn as they are at each frame: services once a task has
        with console.live_table(columns) as update:
            while True:
                drawn = time.monotonic()
                report, gone = await reader.newest()
                shown, rows, title = summary_table(report)
                columns[:] = shown
                update(rows, title)
                if show and not console.is_terminal():
                    for task in report.tasks:
                        if seen.get(task.task_id) != task.status:
                            seen[task.task_id] = task.status
                            phase = f" ({task.current_phase})" if task.current_phase else ""
                            console.print_lines(f"{task.task_id}: {task.status}{phase}")
                # Every task ended is not the end: the run writes its session last (its
                # status, what its calls cost), and that record is the final frame.
                if report.status != SessionStatus.ACTIVE or gone:
                    return report
                await _next_change(changes, drawn)


async def _next_change(changes: ChangeStream, drawn: float) -> None:
    """Return once a record the table shows was written (or ``_RECHECK`` seconds passed), but
    not sooner than ``_REDRAW_EVERY`` after the last draw began: a burst of writes is one
    redraw, which then reads them all."""
    with anyio.move_on_after(_RECHECK):
        while not any(map(_shown, await changes.next_batch())):
            pass
    await anyio.sleep(max(0.0, drawn + _REDRAW_EVERY - time.monotonic()))


def _shown(change: RecordChange) -> bool:
    return change.resync or change.kind in _SHOWN
