"""``council status [FILE]``: the newest run's tasks, once or until the run ends.

The report of the newest session: of FILE's repository or, without FILE, of the run meant
here (``run_finder``: the one last started from this directory or one above it, else the
``.council/state`` of the repository you stand in; exit 2 when there is none); ``--json`` for
machine output. A parked task shows ``parked until HH:MM:SS (adapter, park n)``
(``parked_until``, ``parked_adapter`` and ``parks`` in the JSON); a waiting one why it waits
(``waiting``); a failed one its ``outcome`` (``rate_limited``, ...) in the JSON. ``--watch``
redraws the table (on anything but a terminal: one line per task status change) until every
task has ended, the run stopped, or its orchestrator is gone, then prints the report and
exits with the run's exit code; Ctrl-C exits 130. It redraws when a task, the session or a
workstation's presence is written, as the store's watcher hears it from any process (the
event log, woken by inotify; LISTEN/NOTIFY on a database: ``StateStore.watch``), at most
every ``_REDRAW_EVERY`` seconds while writes keep coming, and every ``_RECHECK`` seconds
without one, for what no write tells (an orchestrator that died, a presence gone stale).
Idle, it costs next to no CPU: ``bench/watch_bench.py`` measures it against polling.

Reading a report needs the state store, the report and the table, never the run machinery
(scheduler, merge queue, worktrees, git, plugins): this module imports only those, so the
command starts at once (``tests/test_cli_startup.py`` keeps it so). FILE is read for where its
state lives only: its adapters' options and ``${NAME}`` references are a run's business.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio
import typer

from orchestrator.cli import console, event_loop, run_finder
from orchestrator.cli.store_access import newest_report, report_reader
from orchestrator.cli.summary import SUMMARY, JsonOption, WideOption, finish, print_summary, summary
from orchestrator.models import SessionStatus
from orchestrator.scheduler.presence import NAMESPACE as PRESENCE
from orchestrator.state.changes import ChangeStream, RecordChange

if TYPE_CHECKING:
    from orchestrator.config.run import RunConfig
    from orchestrator.run.report import RunReport

__all__ = ["status", "watch_status"]

_RECHECK = 5.0  # seconds between redraws while nothing is written
_REDRAW_EVERY = 0.1  # seconds at least between two redraws while writes keep coming
_SHOWN = ("tasks", "sessions", f"records/{PRESENCE}")  # the kinds of record the table shows


def status(
    file: Annotated[
        Path | None,
        typer.Argument(help="Run config (default: the run meant here, see above)."),
    ] = None,
    as_json: JsonOption = False,
    watch: Annotated[
        bool,
        typer.Option("--watch", help="Redraw on every change until every task has ended."),
    ] = False,
    wide: WideOption = False,
) -> None:
    """Show the newest run's tasks.

    Of FILE or, without it, of the run meant here (the one `council run` or `resume` was last
    started for from this directory or the nearest one above it, else the one kept in the
    .council/state of the repository you stand in)."""
    where, events = _status_source(file)
    if watch:
        watch_status(where, as_json, wide, events)
    report, _ = event_loop.run(newest_report, where)
    if as_json:
        console.print_lines(report.model_dump_json(indent=2))
    else:
        print_summary(report, wide)


def _status_source(file: Path | None) -> tuple[Path | RunConfig, Path | None]:
    """The state directory (with the run's event log, for ``--watch``), or the config of a
    database-backed run, that status reads."""
    if file is None:
        found = run_finder.find_run(Path.cwd())
        console.print_progress(f"status of {found.how}")
        if found.config is None:
            assert found.state_dir is not None  # a FoundRun has one or the other
            return found.state_dir, found.events
        file = found.config
    from orchestrator.config.load import load_config  # YAML and the checks: FILE only
    from orchestrator.run.stores import events_log

    config = load_config(file)
    if config.state.backend == "file":
        return config.state_dir, events_log(config.repo)
    return config, None


def watch_status(
    where: Path | RunConfig, as_json: bool, wide: bool = False, events: Path | None = None
) -> None:
    """``status --watch`` (see the module doc); always ends by raising ``typer.Exit``."""
    try:
        report = event_loop.run(_watch_until_signal, where, events, not as_json)
    except KeyboardInterrupt:  # before the loop listens for it
        report = None
    if report is None:
        console.print_error("interrupted")
        raise typer.Exit(130)
    finish(report, as_json, wide)


async def _watch_until_signal(
    where: Path | RunConfig, events: Path | None, show: bool
) -> RunReport | None:
    """``_watch``, or None once SIGINT or SIGTERM arrives. The loop listens for them itself:
    asyncio's own Ctrl-C (the main task cancelled, then KeyboardInterrupt) could be taken for
    the end of one of the watch's own timed waits, and the watch went on to the run's end."""
    watched: list[RunReport] = []
    async with anyio.create_task_group() as group:

        async def on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
                async for _ in received:
                    group.cancel_scope.cancel()
                    return

        group.start_soon(on_signal)
        watched.append(await _watch(where, events, show))
        group.cancel_scope.cancel()
    return watched[0] if watched else None


async def _watch(where: Path | RunConfig, events: Path | None, show: bool) -> RunReport:
    seen: dict[str, str] = {}
    # The watch is entered before the first read: a write between the two is heard.
    async with report_reader(where, events) as reader, reader.store.watch() as changes:
        with console.live_table(SUMMARY) as update:
            while True:
                drawn = time.monotonic()
                report, gone = await reader.newest()
                rows, title = summary(report)
                update(rows, title)
                if show and not console.is_terminal():
                    for task in report.tasks:
                        if seen.get(task.task_id) != task.status:
                            seen[task.task_id] = task.status
                            phase = f" ({task.current_phase})" if task.current_phase else ""
                            console.print_lines(f"{task.task_id}: {task.status}{phase}")
                if report.totals.pending == 0 or report.status != SessionStatus.ACTIVE or gone:
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
