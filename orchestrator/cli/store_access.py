"""What the maintenance commands (cancel, checkpoint, worktrees, clean) share.

- ``open_store(config)``: the state store a run config writes to, opened only when a run has
  been recorded there (a command never creates ``.council/state`` in someone's repository)
  and never through a symbolic link in ``.council`` (``preflight.council_dir_problem``),
  checking the workflow's own record rules as a run does (``workflow_rules``), so what a
  command writes (``state resolve``, ``cancel``) keeps a task's phases and handoffs sound.
- ``pick_session``: the session a command acts on, the newest by default.
- ``newest_report``: the newest session's report, for ``status`` (a file store's kept one while
  its records are unchanged: ``run.reports.report_cache``); ``report_reader`` keeps the store
  open for one report after another (``status --watch``).
- ``running_process``: the live orchestrator process running a session, if any. It is known
  from the session's metadata (pid, host and start time, so a reused pid is not mistaken for
  it) and from the holders of the session's live claims; a holder on another host counts as
  alive, since nothing here can tell.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread

from orchestrator.cli import console
from orchestrator.errors import RunError, UnusableRepository, UsageError
from orchestrator.models import ACTIVE_SESSION_STATUSES, SessionRecord, SessionStatus, TaskState
from orchestrator.run.reports.report import RunReport
from orchestrator.run.reports.report_cache import (
    Snapshot,
    keep,
    snapshot_sessions,
    snapshot_tasks,
)
from orchestrator.run.reports.session_report import session_report, timed_session_report
from orchestrator.run.run_lock import check_record_locks
from orchestrator.run.stores import describe_state, open_run_store, run_sessions
from orchestrator.scheduler.context import ORCHESTRATOR
from orchestrator.state import FileStateStore, StateStore

if TYPE_CHECKING:
    from datetime import datetime

    from orchestrator.config.origin import ConfigOrigin

    # A type only: `status` of the current directory's run reads no config, and the config's
    # models and checks (some twenty modules) are no part of reading a report.
    from orchestrator.config.run import RunConfig
    from orchestrator.process.procid import ProcessId

__all__ = [
    "ReportReader",
    "newest_report",
    "open_store",
    "orchestrator_gone",
    "pick_session",
    "report_reader",
    "running_process",
    "sessions_by_age",
]

_START_ONE = "; start one with: council run <config>"  # how a user gets a run to show
# What ``status`` prints of a report, kept beside it (``cli.status.kept_view.view_of``).
Viewer = Callable[[RunReport], Mapping[str, object] | None]


@asynccontextmanager
async def open_store(config: RunConfig) -> AsyncIterator[StateStore]:
    """The run's state store; ``UsageError`` when no run has been recorded yet (the config
    names a repository with no run: exit 2, like any name that names nothing)."""
    if config.state.backend != "file":
        store = await open_run_store(config)
        async with contextlib.aclosing(store):
            _check_workflow_rules(store)
            yield store
        return
    # preflight's checks need git and the plugins; `status` (newest_report) never opens a store
    # this way, so only the commands that write pay for them.
    from orchestrator.run.preflight import council_dir_problem

    problem = await anyio.to_thread.run_sync(council_dir_problem, config.repo)
    if problem is not None:
        raise UnusableRepository(problem)  # never follow a link with the commands that write
    await anyio.to_thread.run_sync(check_record_locks, config.repo)  # nor beside another lock
    state_dir = config.state_dir
    if not await anyio.to_thread.run_sync(state_dir.is_dir):
        raise UsageError(f"no run has been recorded in {state_dir}")
    events = config.repo / ".council" / "events.jsonl"
    rotate = int(config.state.monitor.events_rotate_size)
    async with FileStateStore(
        state_dir, events_path=events, anchor=config.state_anchor, events_rotate_bytes=rotate
    ) as store:
        _check_workflow_rules(store)
        yield store


def _check_workflow_rules(store: StateStore) -> None:
    # Imported here: `status` never opens a store this way, and must not load the workflow.
    from orchestrator.workflow.record_rules import workflow_rules

    for rule in workflow_rules():
        store.validators.add(rule)


async def sessions_by_age(
    store: StateStore, config: RunConfig | None = None
) -> list[SessionRecord]:
    """Every session of the run in the store, oldest first (``run_sessions``)."""
    return await run_sessions(store, config)


async def pick_session(
    store: StateStore,
    session_id: str | None,
    *,
    unfinished: bool,
    place: str = "the store",
    config: RunConfig | None = None,
) -> SessionRecord:
    """Session ``session_id``, or the newest one (only active or interrupted ones when
    ``unfinished``); a clear error when there is none."""
    if session_id is not None:
        session = await store.get_session(session_id)
        if session is None:
            raise UsageError(f"session {session_id!r} does not exist in {place}")
        return session
    others: list[SessionRecord] = []
    sessions = await run_sessions(store, config, others=others)
    from orchestrator.config.origin import origin_of  # the config is read: so is its package

    origin = origin_of(config) if config is not None else None
    of_file = f" started from {origin.path}" if origin is not None and others else ""
    if not sessions:
        raise UsageError(f"no run{of_file} has been recorded in {place}{_START_ONE}")
    newest = sessions[-1]
    if unfinished:
        sessions = [s for s in sessions if s.status in ACTIVE_SESSION_STATUSES]
        if not sessions:
            raise RunError(
                f"every run{of_file} recorded in {place} has ended (the newest, "
                f"{newest.session_id}, {newest.status}); there is nothing left to act on"
            )
    if of_file:  # the store holds other configs' runs too: say which one this is
        console.print_progress(f"run {sessions[-1].session_id}, the newest{of_file}")
    return sessions[-1]


def _recorded(session: SessionRecord) -> ProcessId | None:
    data = session.metadata.get(ORCHESTRATOR)
    if not isinstance(data, dict):
        return None
    from orchestrator.process import procid  # psutil: only when a process is to be looked at

    return procid.ProcessId.from_dict(data)


def running_process(session: SessionRecord, tasks: Sequence[TaskState]) -> ProcessId | None:
    """The live process (other than this one) running ``session``, or None.

    An active session whose recorded orchestrator is alive is being run, even while none of
    its tasks holds a claim (it may be waiting for a rate limit to lift); so is a session one
    of whose tasks holds a live claim of a process that is alive or on another host. A
    finished session none of whose claims is live needs no look at any process (nor psutil).
    """
    live = [task.claim for task in tasks if task.claim is not None and task.claim.is_live()]
    if session.status != SessionStatus.ACTIVE and not live:
        return None
    from orchestrator.process import procid

    me = procid.current()
    recorded = _recorded(session)
    if (
        recorded is not None
        and recorded != me
        and session.status == SessionStatus.ACTIVE
        and procid.is_alive(recorded) is not False
    ):
        return recorded
    for task in tasks:
        claim = task.claim
        if claim is None or not claim.is_live():
            continue
        holder = _holder(claim.holder)
        if holder is None:
            continue
        host, pid = holder
        if recorded is not None and (recorded.host, recorded.pid) == (host, pid):
            if recorded != me and procid.is_alive(recorded) is not False:
                return recorded
        elif host != me.host or (pid != me.pid and _pid_exists(pid)):
            return procid.ProcessId(pid, host, "")
    return None


def orchestrator_gone(session: SessionRecord) -> bool:
    """The process recorded as running ``session`` has ended (or is this one, which is not
    running it now); False while it is unknown, alive, or on another host."""
    recorded = _recorded(session)
    if recorded is None:
        return False
    from orchestrator.process import procid

    return recorded == procid.current() or procid.is_alive(recorded) is False


def _holder(holder: str) -> tuple[str, int] | None:
    """``(host, pid)`` of a claim holder ``<host>:<pid>:<run id>``."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def _pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False  # 0 and negative numbers name process groups, not a process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists; it is someone else's
    return True


class ReportReader:
    """A store opened once and read again for each report (``status --watch``)."""

    def __init__(
        self,
        store: StateStore,
        place: str,
        config: RunConfig | None,
        stale: float | None,
        origin: ConfigOrigin | None = None,
    ) -> None:
        self.store = store
        self._place, self._config, self._stale = place, config, stale
        self._origin = origin  # a file store's runs of this config file only (``of_config``)

    async def newest(
        self, *, kept: bool = False, viewer: Viewer | None = None
    ) -> tuple[RunReport, bool]:
        """The newest session's report, and whether it is active but its orchestrator gone (so
        the report will not change until someone resumes it). ``kept``: keep a file store's
        report for the next quick look (``run.reports.report_cache``), its records' identities taken
        before they are read, with what ``viewer`` makes of it (``keep``'s ``view``)."""
        root = self.store.core.root if kept and isinstance(self.store, FileStateStore) else None
        shot = None if root is None else await anyio.to_thread.run_sync(snapshot_sessions, root)
        sessions = await sessions_by_age(self.store, self._config)
        if self._origin is not None:
            from orchestrator.config.origin import of_config

            sessions = of_config(sessions, self._origin)
        if not sessions:
            raise UsageError(f"no run has been recorded in {self._place}{_START_ONE}")
        newest = sessions[-1]
        if root is not None and shot is not None:
            task_ids = list(newest.task_ids)
            await anyio.to_thread.run_sync(snapshot_tasks, root, shot, newest.session_id, task_ids)
            report, ends = await timed_session_report(self.store, newest, self._stale)
            await anyio.to_thread.run_sync(
                _keep_viewed, root, shot, ends, report, self._origin, viewer
            )
        else:
            report = await session_report(self.store, newest, self._stale)
        # Only an active session's orchestrator can be gone unnoticed (no process is looked at
        # for one that ended: status stays light).
        return report, newest.status == SessionStatus.ACTIVE and orchestrator_gone(newest)


def _keep_viewed(
    root: Path,
    shot: Snapshot,
    ends: datetime | None,
    report: RunReport,
    origin: ConfigOrigin | None,
    viewer: Viewer | None,
) -> None:
    """Blocking: ``report`` kept with what ``viewer`` makes of it (in the worker thread: a
    big run's view is thousands of rows)."""
    keep(root, shot, ends, report, origin, viewer(report) if viewer is not None else None)


@asynccontextmanager
async def report_reader(
    where: Path | RunConfig, events: Path | None = None, origin: ConfigOrigin | None = None
) -> AsyncIterator[ReportReader]:
    """The store of a state directory (its event log ``events``, for watching; beside it by
    default; ``origin``: the runs of that config file only) or of the store a run config
    names, open for reports."""
    stale: float | None = None
    config: RunConfig | None = None
    if isinstance(where, Path):
        if not await anyio.to_thread.run_sync(where.is_dir):
            raise UsageError(f"no run has been recorded in {where}{_START_ONE}")
        store: StateStore = FileStateStore(where, events_path=events)
        place = str(where)
    else:
        config = where
        store = await open_run_store(config)
        place, stale = describe_state(config), config.scheduler.stale_threshold
    async with contextlib.aclosing(store):
        yield ReportReader(store, place, config, stale, origin)


async def newest_report(
    where: Path | RunConfig, origin: ConfigOrigin | None = None, viewer: Viewer | None = None
) -> tuple[RunReport, bool]:
    """The report of the newest session in a state directory (or the store a run config
    names), and whether it is active but the orchestrator that ran it is gone (so the report
    will not change until someone resumes it); a file store's kept with what ``viewer`` makes
    of it."""
    async with report_reader(where, origin=origin) as reader:
        return await reader.newest(kept=True, viewer=viewer)
