"""``Council``: the facade a Python user holds to run CLI Council (``orchestrator.council``).

It composes its parts: ``opening`` (what entering it opens), ``listening`` (who hears the
run's events); ``checks`` are the refusals the ``council`` command makes before a run.

::

    async with Council.from_config("configs/demo.yaml") as council:
        council.subscribe(print)                # every event, as it happens
        report = await council.run()            # until every task is settled
        print(report.totals.done, "of", report.totals.tasks, "merged")

Contract:

- ``Council(config)`` or ``Council.from_config(path)`` only builds; entering the async
  context first checks what can be refused without writing (``preflight``: the repository,
  a symlinked ``.council``, and, with the default workflow, that every adapter the tasks use
  can run here), then takes the repository's run lock (``run_lock``: a second orchestrator on
  the same repository is refused with ``RunLocked``), then opens the state store
  (``config.state_dir``, events in ``<repo>/.council/``), the plugin host, the worktree and
  lock managers and the merge queue; leaving it releases every lock this process holds and
  closes the store. Calls that need them fail outside the context.
- ``run()`` runs the config's tasks (and any ``submit``-ted ones) to the end and returns the
  ``RunReport``; before it dispatches anything it takes in the worktrees a run whose state is
  gone left (``worktrees.orphans``: their work committed on their branches, a
  ``worktree.adopted`` warning each); ``resume(session_id=None)`` continues an interrupted
  or killed session (the newest one not finished when no id is given) and returns its report.
- ``cancel(task_id)`` cancels one task, during a run or between runs (see
  ``scheduler.cancel``): queued, it is never started; running, its attempt is cancelled and
  the task ends ``cancelled`` with its work committed on its branch. ``CancelError`` when the
  task already ended. Another process can do the same with ``request_cancel(store, task_id)``.
- ``stop()`` asks a running ``run``/``resume`` to stop gracefully (it then returns a report
  with status ``interrupted``); ``kill()`` stops at once.
- ``status()`` is the report of the current session, or of the newest one in the store.
- ``subscribe(callback)`` receives every event: the store's (state, claims, merges, the
  scheduler's ``task.*`` and ``run.*``) and the workflow's. Callbacks must not block.
- ``events(buffer=10_000)`` is the same events for ``async for``, each its type's model
  (``orchestrator.events``): an ``EventStream`` that hears from the call on, never makes the
  run wait (a consumer that falls behind gets an ``EventsDropped`` marker where events had to
  be dropped), and ends when the run ends::

      stream = council.events()               # before the run starts: it hears all of it
      async with anyio.create_task_group() as tg:
          tg.start_soon(council.run)
          async for event in stream:
              if isinstance(event, TaskEvent):
                  print(event.task_id, event.type)
- ``plan()`` is the dry run: what would run, in which order, with which exact commands.

``join=`` (a ``JoinChoice``) says what joining a team run whose tasks differ from this config's
may do (``scheduler.team.definitions``: work on the team's definitions, add this config's new
tasks); by default such a join is refused before anything is written.

``workflow=`` replaces the ADW workflow (``orchestrator.workflow.workflow.run_workflow``) with any
``WorkflowFn``, for tests and for callers with a workflow of their own.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from orchestrator.config.load import load_config
from orchestrator.config.origin import origin_of
from orchestrator.config.run import RunConfig
from orchestrator.config.task import TaskConfig
from orchestrator.council.checks import nothing_to_resume
from orchestrator.council.listening import Callback, Listeners
from orchestrator.council.opening import open_run, services_for
from orchestrator.errors import ConfigIssue, RecordNotFound, RunError, UsageError
from orchestrator.events import Event
from orchestrator.events.phases import CliSurvivorsStopped
from orchestrator.locks.manager import LockManager
from orchestrator.merge.remote import PushIntent
from orchestrator.models import ACTIVE_SESSION_STATUSES, SessionRecord, TaskState
from orchestrator.plugins.host import PluginHost, default_plugins
from orchestrator.process.allocator import limit_arenas
from orchestrator.process.stop import stop_adopted
from orchestrator.process.tree import become_subreaper, since_now
from orchestrator.run.demo_repo import ensure_sample_repo
from orchestrator.run.plan import RunPlan, build_plan
from orchestrator.run.preflight import (
    check_adapters,
    check_repository,
    check_sandbox,
    warn_mcp_servers,
)
from orchestrator.run.pull_landing_check import pull_landing_finding
from orchestrator.run.reports.report import RunReport
from orchestrator.run.reports.session_report import session_report, stopped_report
from orchestrator.run.run_lock import RunLock
from orchestrator.run.stores import describe_state, run_sessions
from orchestrator.safety import crashpoints, secret_allow
from orchestrator.scheduler.board import TaskLine
from orchestrator.scheduler.board_book import BoardView
from orchestrator.scheduler.scheduler import Scheduler
from orchestrator.scheduler.team.definitions import JoinChoice
from orchestrator.state import StateStore
from orchestrator.state.team import team_for
from orchestrator.task_meta import TaskMeta
from orchestrator.workflow.record_rules import workflow_rules
from orchestrator.workflow.task_run import WorkflowFn

if TYPE_CHECKING:  # imported where a caller asks for a stream (`listening`)
    from orchestrator.run.event_stream import EventStream

__all__ = ["Council", "LiveSession"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveSession:
    """One attempt running now, for a live view."""

    task_id: str
    phase: str | None
    adapter: str
    status: str
    elapsed: float
    message: str


class Council:
    def __init__(
        self,
        config: RunConfig,
        *,
        workflow: WorkflowFn | None = None,
        plugins: PluginHost | None = None,
        join: JoinChoice | None = None,
    ) -> None:
        self.config = config
        self._workflow = workflow
        self._join = join
        self._plugins = plugins
        self._listeners = Listeners()  # the subscribers and the event streams
        self._store: StateStore | None = None
        self._run_lock: RunLock | None = None
        self._locks: LockManager | None = None
        self._scheduler: Scheduler | None = None
        self._pending: list[TaskConfig] = []
        self._adapters_checked = False  # ``preflight``'s checks of the config, made once
        self._sandbox_said: set[str] = set()  # why the CLIs run unconfined: said once a run

    @classmethod
    def from_config(cls, path: str | Path, **kwargs: Any) -> Council:
        """A council for the run config file at ``path`` (``ConfigError`` if it is invalid:
        its adapters' options are checked against their plugins' models, and every ``${NAME}``
        in their ``env`` must be set in this process's environment)."""
        host = kwargs.get("plugins") or default_plugins()
        slips: list[ConfigIssue] = []
        config = load_config(
            path, options_models=host.registry.options_models(), environ=os.environ, slips=slips
        )
        for slip in slips:  # a phase `biuld` and no `build`: said, the run goes on
            log.warning("%s", slip)
        return cls(config, **kwargs)

    # -- context --------------------------------------------------------------------------

    async def preflight(self) -> None:
        """Refuse, before anything is written, what cannot work (see ``preflight``): a mistyped
        crash point, an unavailable backend or adapter, an unusable repository."""
        crashpoints.check_armed()  # a mistyped crash point must not pass as a survived crash
        config = self.config
        # A workflow of the caller's own may not use the adapters. These checks read the
        # config only (each task's prompt against its adapters: seconds for 10,000 tasks), so
        # the `council` command's early preflight and the run's own make them once.
        if self._workflow is None and not self._adapters_checked:
            check_adapters(config, self.plugins.registry)
            warn_mcp_servers(config, self.plugins.registry)
            self._adapters_checked = True
        await check_repository(config)
        pulls = await pull_landing_finding(config)
        if pulls is not None:
            raise UsageError(pulls.message)
        await check_sandbox(config, self._sandbox_said)

    async def __aenter__(self) -> Council:
        if self._plugins is None:  # reading every installed package's entry points: off the loop
            self._plugins = await anyio.to_thread.run_sync(default_plugins)
        await self.preflight()
        config = self.config
        secret_allow.allow(config.secrets.allow)  # the gate and the posts read it
        if config.sample_repo:
            await ensure_sample_repo(config.repo, config.base_branch)
        team = await team_for(config)
        opened = await open_run(config, team)
        self._run_lock = opened.run_lock
        self._store = store = opened.store
        for rule in (*workflow_rules(), *self.plugins.record_rules):
            store.validators.add(rule)  # every write of the run passes them (``validators``)
        self._locks = locks = LockManager(config.repo, store=store)
        services = await services_for(config, self.plugins, team, opened, locks, self._before_push)
        self._scheduler = Scheduler(
            services, workflow=self._workflow, listeners=[], join=self._join
        )
        for callback in self._listeners.subscribers:
            self._attach(callback)
        for task in self._pending:
            self._scheduler.submit(task)
        self._pending.clear()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end_streams()
        try:
            if self._locks is not None:
                await self._locks.aclose()
        finally:
            try:
                if self._store is not None:
                    await self._store.aclose()
            finally:
                if self._run_lock is not None:
                    self._run_lock.release()
                self._store = self._locks = self._scheduler = self._run_lock = None

    async def _before_push(self, intent: PushIntent) -> None:
        await self.scheduler.before_push(intent)

    @property
    def plugins(self) -> PluginHost:
        if self._plugins is None:
            self._plugins = default_plugins()
        return self._plugins

    @property
    def session_id(self) -> str | None:
        return self._scheduler.session_id if self._scheduler is not None else None

    @property
    def scheduler(self) -> Scheduler:
        if self._scheduler is None:
            raise RunError("use the Council inside `async with` first")
        return self._scheduler

    # -- running --------------------------------------------------------------------------

    async def run(self) -> RunReport:
        since = since_now()
        await self._take_in_left_worktrees()
        running = self._run_with_sources() if self.config.sources else self.scheduler.run()
        return await self._reported(running, since)

    async def _run_with_sources(self) -> None:
        """The run with its ``sources:``: the issues read before it starts, read again while
        it goes on, and told what happens to their tasks (``run.issue_feed``)."""
        # Imported here: the forge's client library is for runs with sources only.
        from orchestrator.run.issue_feed import IssueFeed

        scheduler, store = self.scheduler, self._require_store()
        feed = await IssueFeed.open(self.config, self.plugins, store.emit, scheduler)
        self._attach(feed.subscriber())
        await feed.join(self.config, scheduler)
        await feed.following(scheduler, scheduler.run())

    async def _resume_with_sources(self, session_id: str) -> None:
        """A resumed run with its ``sources:``: its issue tasks are the session's (their issues
        told what happens from now on), and the sources are read again every ``poll``."""
        from orchestrator.run.issue_feed import IssueFeed

        scheduler, store = self.scheduler, self._require_store()
        feed = await IssueFeed.open(self.config, self.plugins, store.emit, scheduler)
        self._attach(feed.subscriber())
        await feed.following(scheduler, scheduler.resume(session_id))

    async def resume(self, session_id: str | None = None) -> RunReport:
        scheduler = self.scheduler
        if session_id is None:
            session = await self._newest(resumable=True)
            if session is None:
                raise nothing_to_resume(self.config.state_dir, origin_of(self.config))
            session_id = session.session_id
        since = since_now()
        if self.config.sources:
            return await self._reported(self._resume_with_sources(session_id), since)
        return await self._reported(scheduler.resume(session_id), since)

    async def serve(self) -> RunReport:
        """Run until ``stop()``: the newest unfinished session resumed, else a new one; its
        sources read every ``poll`` and new tasks run as they come, pull requests followed,
        and a settled queue waits for more instead of ending (``council serve``)."""
        self.scheduler.keep_open = True
        if await self._newest(resumable=True) is not None:
            return await self.resume()
        return await self.run()

    async def _reported(self, running: Awaitable[object], since: float) -> RunReport:
        """Await the run, stop what it left, end the event streams (each given the report
        when there is one) and return the report."""
        try:
            try:
                await running
            finally:
                await self._stop_leftovers(since)
            report = await self._ended_report()
        except BaseException:
            self._end_streams()
            raise
        self._end_streams(report)
        return report

    async def _take_in_left_worktrees(self) -> None:
        """Take in the worktrees a run whose state is gone left (``worktrees.orphans``), before
        anything is dispatched: this process holds the run lock, so none is a live run's."""
        store = self._require_store()
        tasks = await store.list_tasks()
        claimed = {s for t in tasks if (s := TaskMeta.read(t.metadata).worktree.session)}
        await self.scheduler.services.worktrees.adopt_orphans(
            claimed=claimed, tasks={t.task_id for t in tasks}
        )

    @staticmethod
    def adopt_orphans() -> bool:
        """Make this process the one a CLI's double-forked daemons are reparented to, so the
        run finds and stops every one of them, even one that dropped its environment and left
        its worktree (``process.tree``, adoption; Linux). The ``council`` command does this; a
        program of your own should only if no other part of it starts processes in sessions
        of their own and waits for them by pid. False where it is not possible."""
        return become_subreaper()

    @staticmethod
    def limit_arenas() -> bool:
        """Keep this process's C allocator to two arenas, so memory each ended task's worker
        threads freed is used again rather than kept in an arena per thread (glibc;
        ``process.allocator``). The ``council`` command does this before any thread starts;
        a program of your own may too. False where it is not possible."""
        return limit_arenas()

    async def _stop_leftovers(self, since: float) -> None:
        """Stop what the run's CLIs left running that no CLI's own end could claim (a daemon
        adopted while several CLIs ran; ``process.tree``), and say so."""
        with anyio.CancelScope(shield=True):
            stopped = await stop_adopted(since)
            if stopped and self._store is not None:
                await self._store.emit(CliSurvivorsStopped(processes=stopped))

    def submit(self, task: TaskConfig | Mapping[str, Any]) -> TaskConfig:
        """Add a task to the run; before ``run`` or while it runs."""
        config = task if isinstance(task, TaskConfig) else TaskConfig.model_validate(task)
        if self._scheduler is None:
            self._pending.append(config)
        else:
            self._scheduler.submit(config)
        return config

    async def cancel(self, task_id: str) -> TaskState:
        """Cancel ``task_id`` (module doc); its state right after the request."""
        return await self.scheduler.cancel(task_id)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.stop()

    def kill(self) -> None:
        if self._scheduler is not None:
            self._scheduler.kill()

    # -- looking ----------------------------------------------------------------------------

    async def status(self) -> RunReport:
        store = self._require_store()
        session = None
        if self.session_id is not None:
            session = await store.get_session(self.session_id, metrics=False)
        if session is None:
            session = await self._newest(resumable=False)
        if session is None:
            raise RecordNotFound(f"no run has been recorded in {describe_state(self.config)}")
        held = self._scheduler.final_tasks if self._scheduler is not None else None
        return await session_report(store, session, self.config.scheduler.stale_threshold, held)

    async def _ended_report(self) -> RunReport:
        """The report of the run just returned: a stop's from the records its checkpoint
        read (``session_report.stopped_report``), else ``status``."""
        made = self._scheduler.stop_checkpoint if self._scheduler is not None else None
        if made is None:
            return await self.status()
        store = self._require_store()
        checkpoint = await store.get_checkpoint(made)
        return await stopped_report(store, checkpoint, self.config.scheduler.stale_threshold)

    def subscribe(self, callback: Callback) -> None:
        self._listeners.subscribers.append(callback)
        if self._scheduler is not None:
            self._attach(callback)

    def events(
        self, *, buffer: int = 10_000, types: Iterable[type[Event] | str] | None = None
    ) -> EventStream:
        """The events from now until the run ends, typed, for ``async for`` (module doc;
        ``run.event_stream``); ``buffer`` is how many may wait for the consumer before newer
        ones are dropped; ``types`` keeps only those (event classes or type names); the
        stream's ``report`` is the run's once it ended."""
        return self._listeners.stream(buffer, types)

    def live(self) -> list[LiveSession]:
        """The attempts running now (empty outside a run)."""
        if self._scheduler is None:
            return []
        now = time.monotonic()
        return [
            LiveSession(
                task_id=a.key,
                phase=a.phase,
                adapter=a.adapter,
                status="merging" if a.slot_free else "running",
                elapsed=now - a.started,
                message=a.last_message,
            )
            for a in self._scheduler.attempts()
        ]

    def board(self) -> list[TaskLine]:
        """Every task of the run now, one line each: what it does, or why it waits (empty
        outside a run)."""
        return [] if self._scheduler is None else self._scheduler.board()

    def board_view(self, room: int) -> BoardView:
        """What a screen of ``room`` rows shows of the board now, and its counts: the lines
        that stay and those folded (``scheduler.board_book``), at the cost of what changed."""
        if self._scheduler is None:
            return BoardView([], Counter(), Counter(), 0)
        return self._scheduler.board_view(room)

    def plan(self) -> RunPlan:
        return build_plan(self.config, self.plugins.registry)

    # -- helpers --------------------------------------------------------------------------

    def _attach(self, callback: Callback) -> None:
        assert self._store is not None and self._scheduler is not None
        self._listeners.attach(self._store, self._scheduler, callback)

    def _end_streams(self, report: RunReport | None = None) -> None:
        self._listeners.end(report)

    def _require_store(self) -> StateStore:
        if self._store is None:
            raise RunError("use the Council inside `async with` first")
        return self._store

    async def _newest(self, *, resumable: bool) -> SessionRecord | None:
        sessions = await run_sessions(self._require_store(), self.config)
        if resumable:
            sessions = [s for s in sessions if s.status in ACTIVE_SESSION_STATUSES]
        return max(sessions, key=lambda s: s.created_at, default=None)
