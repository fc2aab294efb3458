"""What the page reads and does, through the store and the reports ``status`` reads.

``open_source`` opens the run's store once (a file store as the commands that write open it:
never through a link in ``.council``, with the workflow's record rules; a database as a run
does). ``WebSource.report`` is the newest session's report, the one ``status`` shows, built by
``run.reports.session_report.report_of`` from the records ``session_report`` reads; the
session's tasks are kept, and after a write only the tasks written are read again (a run of
10,000 tasks is not read whole on every change); when the session's status changes (it ended,
was interrupted or resumed), every task is read again after it, so an ended run is never shown
beside a task as it was before its last write. The actions are the command line's own
operations: a cancel is ``request_cancel`` (``council cancel``), a retry ``request_retry``, a
budget raised ``spend.raising.raise_budget`` (``council budget raise``); each checks the task
or the budget belongs to the run first. ``log`` is the tail of a task's CLI logs
(``.council/logs``, masked as they were written), bounded; ``diff`` its changes against its
base, as ``council mcp``'s read-only desk tells them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from orchestrator.errors import UnusableRepository, UsageError
from orchestrator.ids import check_id
from orchestrator.models import SessionRecord, TaskState, TaskStatus, utcnow
from orchestrator.radar.records import collisions
from orchestrator.run.reports.report import RunReport
from orchestrator.run.reports.session_report import STALE, report_of
from orchestrator.run.run_lock import check_record_locks
from orchestrator.run.stores import describe_state, open_run_store, run_sessions
from orchestrator.scheduler.team.presence import alive_workstations
from orchestrator.services.records import NAMESPACE as SERVICES
from orchestrator.spend.line import NAMESPACE as SPEND_LINES
from orchestrator.state import FileStateStore, StateStore

if TYPE_CHECKING:
    from orchestrator.config.run import RunConfig
    from orchestrator.state.changes import ChangeStream

__all__ = ["LOG_TAIL", "LogPart", "WebSource", "open_source"]

LOG_TAIL = 64 * 1024  # bytes of each CLI log the page shows, its end


@dataclass(frozen=True)
class LogPart:
    """One CLI call's log: its file's name and its last ``LOG_TAIL`` bytes."""

    name: str
    text: str
    clipped: bool


class WebSource:
    """The run's store, open, and what the page reads and does with it."""

    def __init__(self, store: StateStore, config: RunConfig | None, logs: Path | None) -> None:
        self.store, self.config, self._logs = store, config, logs
        self.place = describe_state(config) if config is not None else "the state directory"
        self._session: str | None = None
        self._said: str | None = None  # the session's status when its tasks were last read
        self._tasks: dict[str, TaskState] = {}  # the newest session's tasks, as last read

    def watch(self) -> ChangeStream:
        """Every write to the store, from any process (``StateStore.watch``)."""
        return self.store.watch()

    async def newest(self) -> SessionRecord:
        sessions = await run_sessions(self.store, self.config)
        if not sessions:
            raise UsageError(f"no run has been recorded in {self.place}")
        return sessions[-1]

    async def report(self, changed: Collection[str] | None = None) -> RunReport:
        """The newest session's report, as ``council status`` builds it (``report_of`` over
        the records ``session_report`` reads). ``changed``: only these tasks were written
        since the last report, so only they are read again (None: every task)."""
        session = await self.newest()
        sid = session.session_id
        if changed is None or sid != self._session or session.status != self._said:
            # Every task looked at again, after the session: a session that just ended (or was
            # interrupted, or resumed) is never shown beside a task as it was before, whose
            # write came first but whose change is heard in a later batch. Only the records
            # not held as they are now are read (``list_tasks_changed``: as exact).
            held = self._tasks if sid == self._session else {}
            changes = await self.store.list_tasks_changed(sid, held)
            self._tasks = changes.states(held)
            self._session, self._said = sid, session.status
        else:
            for task_id in changed:
                state = await self.store.get_task_state(task_id)
                if state is not None and state.session_id == sid:
                    self._tasks[task_id] = state
        stale = self.config.scheduler.stale_threshold if self.config is not None else None
        present = await alive_workstations(self.store, sid, stale or STALE)
        line = await self.store.get_record(SPEND_LINES, sid)
        found = await collisions(self.store)
        services = await self.store.list_records(SERVICES)
        tasks = list(self._tasks.values())
        report, _ = report_of(session, tasks, present, line, utcnow(), found, services)
        return report

    def kept_tasks(self, session_id: str) -> list[TaskState]:
        """The tasks of ``session_id`` as the last report read them (none for another)."""
        return list(self._tasks.values()) if session_id == self._session else []

    async def _task_of_run(self, task_id: str) -> str:
        task_id = check_id(task_id, "task id")
        session = await self.newest()
        state = await self.store.get_task_state(task_id)
        if task_id not in session.task_ids or state is None:
            raise UsageError(f"task {task_id!r} is not part of session {session.session_id}")
        return task_id

    async def cancel(self, task_id: str) -> str:
        """``council cancel``'s operation: what became of the task."""
        from orchestrator.council import request_cancel  # the run machinery: only for an action

        after = await request_cancel(self.store, await self._task_of_run(task_id))
        if after.status == TaskStatus.CANCELLED:
            return f"cancelled task {task_id}"
        return f"cancel of task {task_id} requested: its orchestrator stops it at its next tick"

    async def retry(self, task_id: str) -> str:
        """``/council retry``'s operation: the ended task queued again."""
        from orchestrator.scheduler.retry import request_retry

        await request_retry(self.store, await self._task_of_run(task_id))
        return f"task {task_id} queued again; a running orchestrator takes it up"

    async def raise_budget(self, scope: str, usd: float | None, tokens: int | None) -> str:
        """``council budget raise``'s operation on the newest session."""
        if self.config is None:
            raise UsageError("raising a budget needs the run's config: start `council web FILE`")
        if usd is None and tokens is None:
            raise UsageError("give the new limit: usd, tokens or both")
        if (usd is not None and usd <= 0) or (tokens is not None and tokens <= 0):
            raise UsageError("a new limit must be above 0")
        budgets = self.config.budgets
        if scope not in ("run", "task") and scope not in budgets.adapters:
            known = ", ".join(["run", "task", *budgets.adapters])
            raise UsageError(f"no budget {scope!r} in the run's config (budgets: {known})")
        from orchestrator.spend.raising import raise_budget

        session = await self.newest()
        new: dict[str, Any] = {"usd": usd, "tokens": tokens}
        try:
            limit = await raise_budget(self.store, budgets, session.session_id, scope, new)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return f"budget {scope} is now {limit.said()}; the run goes on at its next tick"

    async def diff(self, task_id: str) -> str:
        """The task's newest session's changes against its base, as ``council mcp``'s
        read-only desk answers ``session_changes`` (bounded, masked); said when unknown."""
        task_id = await self._task_of_run(task_id)
        if self.config is None:
            return "the diff needs the run's config: start `council web FILE`"
        from orchestrator.coordination.desk import Desk

        desk = Desk(self.store, self.config.repo, caller=None)
        answer = await desk.call("session_changes", {"session": task_id})
        return answer.text

    async def log(self, task_id: str) -> list[LogPart]:
        """The task's CLI logs, oldest first, each its last ``LOG_TAIL`` bytes."""
        task_id = await self._task_of_run(task_id)
        if self._logs is None:
            return []
        return await anyio.to_thread.run_sync(_read_logs, self._logs, task_id)


def _read_logs(logs: Path, task_id: str) -> list[LogPart]:
    """``<task>-<phase>-<time>-<pid>-<n>.log`` of ``task_id`` (not of a task whose id it
    begins: the phase after it never holds a dash-free time)."""
    if not logs.is_dir() or logs.is_symlink():
        return []
    found = []
    for path in logs.glob(f"{task_id}-*.log"):
        rest = path.name[len(task_id) + 1 :].split("-")
        if len(rest) < 4 or path.is_symlink() or not path.is_file():
            continue
        found.append((path.stat().st_mtime_ns, path))
    parts = []
    for _, path in sorted(found):
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - LOG_TAIL))
            text = handle.read(LOG_TAIL).decode("utf-8", "replace")
        parts.append(LogPart(path.name, text, size > LOG_TAIL))
    return parts


@asynccontextmanager
async def open_source(
    config: RunConfig | None, state_dir: Path | None = None, events: Path | None = None
) -> AsyncIterator[WebSource]:
    """The run of ``config`` (or of a bare state directory, its event log ``events``), open."""
    if config is not None and config.state.backend != "file":
        store = await open_run_store(config)
        async with contextlib.aclosing(store):
            _workflow_rules(store)
            yield WebSource(store, config, config.repo / ".council" / "logs")
        return
    if config is not None:
        from orchestrator.run.preflight import council_dir_problem

        problem = await anyio.to_thread.run_sync(council_dir_problem, config.repo)
        if problem is not None:
            raise UnusableRepository(problem)
        state_dir, events = config.state_dir, config.repo / ".council" / "events.jsonl"
    if state_dir is None:
        raise UsageError("no run to show: give a run config or a state directory")
    if not await anyio.to_thread.run_sync(state_dir.is_dir):
        raise UsageError(f"no run has been recorded in {state_dir}")
    anchor = config.state_anchor if config is not None else None
    logs = config.repo / ".council" / "logs" if config is not None else None
    if logs is None and state_dir.name == "state":
        logs = state_dir.parent / "logs"  # a bare state directory: .council/state
    if config is not None:  # the page writes (cancel, retry, resume): never beside another lock
        await anyio.to_thread.run_sync(check_record_locks, config.repo)
    async with FileStateStore(state_dir, events_path=events, anchor=anchor) as file_store:
        _workflow_rules(file_store)
        yield WebSource(file_store, config, logs)


def _workflow_rules(store: StateStore) -> None:
    from orchestrator.workflow.record_rules import workflow_rules

    for rule in workflow_rules():
        store.validators.add(rule)
