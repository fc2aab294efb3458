"""The scheduler: fills capacity with attempts from the task queue until every task is settled.

Contract:

- ``run()`` creates a session in the store (tasks ``queued``), then ticks every
  ``scheduler.tick`` seconds (sooner when an attempt ends). Each tick **reconciles first**
  (``scheduler_reconcile``: carries out cancel requests, renews the claims of running
  attempts every ``heartbeat_interval``, sweeps claims whose lease lapsed) — **then
  dispatches** while slots are free (``Slots``: global, per adapter, per phase), in
  ``scheduler_queue`` order, skipping tasks whose dependencies are not merged, whose adapters
  are all parked on a quota (the first unparked one of ``adapter_chain`` is used), or whose
  declared files are owned by a running session (another task is picked meanwhile). The
  attempt itself is ``scheduler_attempt``. A council task (``council: true``) dispatches its
  candidates instead, each like a task, then its council step (``scheduler_council``).
- ``cancel(task_id)`` (or ``scheduler_cancel.request_cancel`` from any process) cancels a
  task: queued, it is never dispatched; running, its attempt is cancelled on the next tick and
  the task ends ``cancelled`` with its work committed on its branch.
- The run ends when every task is terminal (done, failed, cancelled, conflict); the session
  is then ``completed`` (all done) or ``failed``.
- ``stop()``: no new dispatch; running workflows are told to cancel (they commit the CLI's work
  and return); their tasks go back to the queue with claims abandoned; a checkpoint is written
  and the session marked ``interrupted``. ``kill()`` cancels everything at once (a second
  Ctrl-C), leaving the state for ``resume``.
- ``resume(session_id)`` continues an interrupted or killed session: it refuses while the
  orchestrator recorded as running it (or on a live claim) is alive, even while it holds no
  claim (waiting for a rate limit to lift), stops the CLIs the dead orchestrator left
  running (``orphans``: they lead process groups of their own, so its SIGKILL did not reach
  them) and waits until they are gone, then ``recover_session(force=True)`` requeues what it
  left running or merging. The workflow skips phases recorded complete, and the merge queue
  answers ``already_merged`` for work already on the base, so nothing is done or merged twice;
  a task whose merge landed but was never recorded is marked done from its ``Council-Task``
  trailer, as ``run()`` does. Worktrees the dead orchestrator made for this session and
  would have removed are removed, under the usual safety rules (work committed, tip kept by a
  rescue ref unless the base has it): those of tasks that are done, and those no task names
  any more (made just before the orchestrator died, or let go of just before it could remove
  them).
- Events (``run.started``, ``task.dispatched``, ``task.retry``, ``adapter.parked``,
  ``task.failed``, ``task.swept``, ``merge.forecast_conflict``, ``run.finished``, ...) go
  through the store to its subscribers; the workflow's own events reach ``on_event`` listeners.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import anyio
import anyio.abc

from orchestrator.config.task import TaskConfig
from orchestrator.errors import RunError, StateError
from orchestrator.events import Event
from orchestrator.models import (
    ACTIVE_SESSION_STATUSES,
    TERMINAL_TASK_STATUSES,
    ClaimStatus,
    SessionStatus,
    TaskState,
    TaskStatus,
    utcnow,
)
from orchestrator.process import procid
from orchestrator.retry import RetryPolicy
from orchestrator.scheduler.attempt_runner import WORKTREE, Attempt, Services
from orchestrator.scheduler.cancel import request_cancel
from orchestrator.scheduler.candidates import (
    candidate_ready,
    candidate_settled,
    candidates_of,
    group_lock_owner,
)
from orchestrator.scheduler.capacity import Slots
from orchestrator.scheduler.parks import PARKED_SINCE, ParkPolicy
from orchestrator.scheduler.queue import (
    PARKED_ADAPTER,
    PARKED_UNTIL,
    broken_dependency,
    choose_adapter,
    first_phase,
    ordered,
    ready,
    time_of,
    waiting_on,
)
from orchestrator.scheduler.reconciler import ReconcileLifecycle
from orchestrator.scheduler.view import TaskView
from orchestrator.workflow.best_of import COUNCIL_PHASE, judge_adapter
from orchestrator.workflow.task_run import TaskRun, WorkflowFn, WorkflowResult

__all__ = ["Scheduler", "Services", "default_workflow"]

log = logging.getLogger(__name__)

TASKS_OPTION = "tasks"  # session options: every task's config, so a resume can rebuild them
ORCHESTRATOR = "orchestrator"  # session metadata: the process running it (pid, host, start)


async def default_workflow(run: TaskRun) -> WorkflowResult:
    """``orchestrator.workflow.workflow.run_workflow``, imported on first use."""
    from orchestrator.workflow.workflow import run_workflow

    result: WorkflowResult = await run_workflow(run)
    return result


class Scheduler(ReconcileLifecycle):
    def __init__(
        self,
        services: Services,
        *,
        workflow: WorkflowFn | None = None,
        listeners: list[Callable[[Event], None]] | None = None,
    ) -> None:
        config = services.config
        self.services = services
        self.workflow = workflow or default_workflow
        self.policy = RetryPolicy(config.retry)
        self.parks = ParkPolicy(config.rate_limits)
        self.slots = Slots(config.capacity)
        self.run_id = secrets.token_hex(4)
        proc = procid.current()
        self.holder = f"{proc.host}:{proc.pid}:{self.run_id}"
        self.running: dict[str, Attempt] = {}
        self.parked: dict[str, datetime] = {}
        self.rate_limited_since: dict[str, datetime] = {}
        self.stopping = False
        self.killed = False
        self.tasks: dict[str, TaskConfig] = {task.id: task for task in config.tasks}
        self.session_id: str | None = None
        self.listeners = listeners if listeners is not None else []
        self._submitted: list[TaskConfig] = []
        self._wake = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._seq = 0
        self._last_sweep = 0.0
        self._view: TaskView | None = None

    # -- public ---------------------------------------------------------------------------

    async def start(self) -> str:
        """Create the run's session in the store (every task ``queued``); its id."""
        if self.session_id is not None:
            return self.session_id
        for task in self.tasks.values():
            self._chain(task)  # fails early, before anything is written
        store = self.services.store
        session = await store.create_session(
            {TASKS_OPTION: [t.model_dump(mode="json") for t in self.tasks.values()]},
            [{"task_id": t.id, "priority": t.priority} for t in self.tasks.values()],
        )
        self.session_id = session.session_id
        self._submitted.clear()  # submitted before the start: already in the session
        await store.update_session(
            self.session_id, {"metadata": {ORCHESTRATOR: procid.current().as_dict()}}
        )
        await self._emit("run.started", {"session_id": self.session_id, "holder": self.holder})
        await self._skip_landed(self.tasks.values())
        await self.prepare_candidates(self.tasks.values(), resuming=False)
        return self.session_id

    async def _skip_landed(self, tasks: Iterable[TaskConfig]) -> None:
        """Tasks whose work an earlier run already merged (their ``Council-Task`` trailer is on
        the base) are done from the start: running them again could only merge them twice."""
        store, merges = self.services.store, self.services.merges
        pending = list(tasks)
        landed = await merges.landed_commits(task.id for task in pending)
        for task in pending:
            commit = landed.get(task.id)
            if commit is None:
                continue
            now = utcnow()
            await store.update_task_state(
                task.id,
                {
                    "status": TaskStatus.DONE,
                    "merged_commit": commit,
                    "started_at": now,
                    "finished_at": now,
                    "error": None,
                },
            )
            await self._emit("task.already_merged", {"task_id": task.id, "commit": commit})

    async def _retire_left_worktrees(self, since: datetime) -> None:
        """Remove the worktrees made since ``since`` for this session's tasks that a crash
        left behind (see the module doc). A council task's candidates are its own business."""
        assert self.session_id is not None
        states = {s.task_id: s for s in await self.services.store.list_tasks(self.session_id)}
        for worktree in (await self.services.worktrees.sessions()).values():
            task, state = self.tasks.get(worktree.task_id), states.get(worktree.task_id)
            if task is None or task.council or state is None or worktree.created_at < since:
                continue
            named = state.metadata.get(WORKTREE) == worktree.session_id
            if state.status == TaskStatus.DONE or not named:
                await self._remove_worktree(worktree.session_id)

    async def run(self) -> None:
        """Run until every task is settled, or until stopped."""
        await self.start()
        await self._loop()

    async def resume(self, session_id: str) -> None:
        """Continue session ``session_id`` from where it stood (see the module docstring)."""
        store = self.services.store
        await self._refuse_if_alive(session_id)
        await self.stop_orphans()
        snapshot = await store.recover_session(session_id, force=True)
        for task in snapshot.tasks:
            if task.status == TaskStatus.MERGING:
                await store.update_task_state(task.task_id, _abandoned(task, TaskStatus.QUEUED))
            if task.status == TaskStatus.PARKED:
                until = time_of(task.metadata, PARKED_UNTIL)
                adapter = task.metadata.get(PARKED_ADAPTER)
                if until is not None and isinstance(adapter, str):
                    self.parked[adapter] = max(until, self.parked.get(adapter, until))
                    since = time_of(task.metadata, PARKED_SINCE)
                    if since is not None:
                        began = self.rate_limited_since.get(adapter, since)
                        self.rate_limited_since[adapter] = min(began, since)
        for raw in snapshot.session.options.get(TASKS_OPTION, []):
            saved = TaskConfig.model_validate(raw)
            self.tasks.setdefault(saved.id, saved)
        self.tasks = {k: v for k, v in self.tasks.items() if k in snapshot.session.task_ids}
        self.session_id = session_id
        # A merge that landed just before the old orchestrator died was never recorded: the
        # trailer on the base says it is done (running it again could only fail or merge twice).
        unfinished = {t.task_id for t in snapshot.tasks if t.status not in TERMINAL_TASK_STATUSES}
        await self._skip_landed(t for t in self.tasks.values() if t.id in unfinished)
        await self._retire_left_worktrees(snapshot.session.created_at)
        await self.prepare_candidates(self.tasks.values(), resuming=True)
        metadata = {**snapshot.session.metadata, ORCHESTRATOR: procid.current().as_dict()}
        await store.update_session(session_id, {"metadata": metadata})
        await self._emit("run.resumed", {"session_id": session_id, "holder": self.holder})
        await self._loop()

    def submit(self, task: TaskConfig) -> None:
        """Add ``task`` to the run (before or while it runs)."""
        if task.id in self.tasks:
            raise RunError(f"task {task.id!r} is already part of this run")
        unknown = [dep for dep in task.depends_on if dep not in self.tasks]
        if unknown:
            raise RunError(f"task {task.id!r} depends on unknown tasks: {', '.join(unknown)}")
        self._chain(task)
        self.tasks[task.id] = task
        self._submitted.append(task)
        self._wake.set()

    async def cancel(self, task_id: str) -> TaskState:
        """Cancel ``task_id`` (``scheduler_cancel.request_cancel``); a running task is
        cancelled on the next tick, which comes at once. Its state after the request;
        ``CancelError`` if it already ended."""
        state = await request_cancel(self.services.store, task_id)
        self._wake.set()
        return state

    def stop(self) -> None:
        """Graceful stop: no new dispatch, running workflows cancelled, state kept."""
        self.stopping = True
        for attempt in self.running.values():
            attempt.cancel.set()
        self._wake.set()

    def kill(self) -> None:
        """Stop at once: every attempt is cancelled where it stands."""
        self.stopping = self.killed = True
        if self._scope is not None:
            self._scope.cancel()

    def attempts(self) -> list[Attempt]:
        """The attempts in flight now."""
        return list(self.running.values())

    # -- the loop -------------------------------------------------------------------------

    async def _loop(self) -> None:
        assert self.session_id is not None
        store = self.services.store
        self._view = view = TaskView(store, self.session_id)
        store.subscribe(view.on_event)
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                async with anyio.create_task_group() as group:
                    self._group = group
                    while True:
                        await self._add_submitted()
                        await self._reconcile()
                        states = await self._states()
                        if any(task_id not in states for task_id in self.tasks):
                            states = await self._records_lost()
                        if self.stopping:
                            if not self.running:
                                break
                        elif not self.running and self._settled(states):
                            # The view may lag behind other processes: end on a fresh read.
                            if self._settled(await self._states(full=True)):
                                break
                        else:
                            await self._dispatch(states)
                        await self._nap()
        finally:
            store.unsubscribe(view.on_event)
            self._view = None
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await self._finish()

    async def _records_lost(self) -> dict[str, TaskState]:
        """Some task of the run has no record (the view may lag: read again). The whole store
        gone (no session record either) stops the run with a way forward; a task record moved
        away alone (as a damaged record's error advises) is started afresh, queued."""
        assert self.session_id is not None
        states = await self._states(full=True)
        missing = [task_id for task_id in self.tasks if task_id not in states]
        if not missing:
            return states
        store = self.services.store
        if await store.get_session(self.session_id) is None:
            raise StateError(
                f"the run's state disappeared while it ran (session {self.session_id} and "
                f"tasks {', '.join(missing)} have no record any more): stopped. Start the run "
                "again with `council run <config>`: work that landed is recognised on the "
                "base and never merged twice"
            )
        for task_id in missing:
            fresh = TaskState(task_id=task_id, session_id=self.session_id).model_dump()
            await store.update_task_state(task_id, fresh)
            await self._emit(
                "task.record_recreated", {"task_id": task_id, "reason": "its record was missing"}
            )
        return await self._states(full=True)

    async def _nap(self) -> None:
        with anyio.move_on_after(self.services.config.scheduler.tick):
            await self._wake.wait()
        self._wake = anyio.Event()

    def _settled(self, states: dict[str, TaskState]) -> bool:
        return all(
            (state := states.get(task_id)) is not None and state.status in TERMINAL_TASK_STATUSES
            for task_id in self.tasks
        )

    async def _states(self, *, full: bool = False) -> dict[str, TaskState]:
        """The session's tasks (``TaskView``: only what changed is read again), and the
        candidates of its unfinished council tasks."""
        assert self.session_id is not None
        if self._view is None:
            tasks = await self.services.store.list_tasks(self.session_id)
            states = {task.task_id: task for task in tasks}
        else:
            states = await self._view.current(full=full)
        await self.add_candidate_states(self.tasks.values(), states)
        return states

    async def _finish(self) -> None:
        assert self.session_id is not None
        store = self.services.store
        if self.stopping:
            await store.update_session(self.session_id, {"status": SessionStatus.INTERRUPTED})
            if not self.killed:
                await store.create_checkpoint(self.session_id, "interrupted")
            await self._emit("run.interrupted", {"session_id": self.session_id})
            return
        states = await self.services.store.list_tasks(self.session_id)
        done = all(s.status == TaskStatus.DONE for s in states)
        status = SessionStatus.COMPLETED if done else SessionStatus.FAILED
        await store.update_session(self.session_id, {"status": status})
        await self._emit("run.finished", {"session_id": self.session_id, "status": status})

    # -- dispatch -------------------------------------------------------------------------

    async def _dispatch(self, states: dict[str, TaskState]) -> None:
        store = self.services.store
        now = utcnow()
        for task in ordered(list(self.tasks.values()), states):
            if self.slots.full():
                return
            state = states.get(task.id)
            if state is None or task.id in self.running:
                continue
            if state.status in TERMINAL_TASK_STATUSES or not (task.council or ready(state, now)):
                continue
            broken = broken_dependency(task, states)
            if broken is not None:
                error = f"not started: {broken}"
                await store.update_task_state(
                    task.id, {"status": TaskStatus.FAILED, "error": error, "finished_at": now}
                )
                await self._emit("task.failed", {"task_id": task.id, "error": error})
                if task.council:
                    await self.cancel_council(task)
                continue
            if waiting_on(task, states):
                continue
            if task.council:
                await self._dispatch_council(task, state, states, now)
            else:
                await self._start(task, state, now)

    async def _start(
        self, task: TaskConfig, state: TaskState, now: datetime, group: str | None = None
    ) -> bool:
        """Start an attempt at ``task`` if its adapter, a slot and its files are free."""
        sticky = state.metadata.get(PARKED_ADAPTER) if state.status == TaskStatus.PARKED else None
        adapter = choose_adapter(
            self._chain(task), self.parked, now, sticky if isinstance(sticky, str) else None
        )
        if adapter is None:
            return False
        phase = first_phase(self.services.config, task, state)
        files = frozenset(task.files)
        if not self.slots.free(adapter, phase) or not await self._files_free(files, group):
            return False
        self._launch(Attempt(task, adapter, phase, self._next_seq(), files, group=group))
        return True

    async def _dispatch_council(
        self, task: TaskConfig, state: TaskState, states: dict[str, TaskState], now: datetime
    ) -> None:
        """Start the candidates that are ready to run, or, once all of them have settled,
        the council step that compares them and merges the winner."""
        members = [(m, states.get(m.id)) for m in candidates_of(task)]
        if all(candidate_settled(s) for _, s in members):
            if state.status == TaskStatus.RUNNING or ready(state, now):
                ready_ones = [m for m, s in members if s is not None and candidate_ready(s)]
                first = (ready_ones or [m for m, _ in members])[0].adapters[0]
                judge = judge_adapter(self.services.config, first)
                if choose_adapter([judge], self.parked, now) and self.slots.free(
                    judge, COUNCIL_PHASE
                ):
                    attempt = Attempt(task, judge, COUNCIL_PHASE, self._next_seq(), frozenset())
                    attempt.picking = True
                    self._launch(attempt)
            return
        for member, member_state in members:
            if self.slots.full():
                return
            if member_state is None or member.id in self.running or not ready(member_state, now):
                continue
            started = await self._start(member, member_state, now, group=task.id)
            if started and state.status != TaskStatus.RUNNING:
                running = {"status": TaskStatus.RUNNING, "started_at": state.started_at or now}
                state = await self.services.store.update_task_state(task.id, running)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _launch(self, attempt: Attempt) -> None:
        self.slots.take(attempt.key, attempt.adapter, attempt.phase)
        self.running[attempt.key] = attempt
        assert self._group is not None
        self._group.start_soon(self._run_and_wake, attempt)

    async def _run_and_wake(self, attempt: Attempt) -> None:
        try:
            if attempt.picking:
                await self.run_council_step(attempt)
            else:
                await self.run_attempt(attempt)
        finally:
            self._wake.set()

    async def _files_free(self, files: frozenset[str], group: str | None) -> bool:
        """No other running session declared or owns any of ``files`` (a council
        candidate's siblings share its files and their lock owner)."""
        if not files:
            return True
        others = [a for a in self.running.values() if group is None or a.group != group]
        if any(files & other.files for other in others):
            return False
        mine = group_lock_owner(group) if group is not None else None
        for path in sorted(files):
            owner = await self.services.locks.owner_of(path)
            if owner is not None and owner.session != mine:
                return False
        return True

    def _chain(self, task: TaskConfig) -> list[str]:
        config = self.services.config
        chain = config.adapter_chain(task, config.phases_for(task)[0])
        if not chain:
            raise RunError(
                f"task {task.id!r}: no adapter configured; define one under `adapters:` or set "
                "the task's adapters"
            )
        return chain

    async def _add_submitted(self) -> None:
        if not self._submitted or self.session_id is None:
            return
        store = self.services.store
        session = await store.get_session(self.session_id)
        assert session is not None
        batch = [t for t in self._submitted if t.id not in session.task_ids]
        self._submitted.clear()
        for task in list(batch):
            current = await store.get_task_state(task.id)
            if current is not None and current.session_id not in (None, self.session_id):
                owner = await store.get_session(current.session_id)
                if owner is not None and owner.status in ACTIVE_SESSION_STATUSES:
                    # The id belongs to another unfinished run: never overwrite its state.
                    batch.remove(task)
                    del self.tasks[task.id]
                    error = f"task id taken by unfinished session {owner.session_id!r}"
                    await self._emit("task.rejected", {"task_id": task.id, "error": error})
                    continue
            fresh = TaskState(task_id=task.id, session_id=self.session_id, priority=task.priority)
            await store.update_task_state(task.id, fresh.model_dump(exclude={"version"}))
        await self.prepare_candidates(batch, resuming=False)
        saved = list(session.options.get(TASKS_OPTION, []))
        saved += [task.model_dump(mode="json") for task in batch]
        await store.update_session(
            self.session_id,
            {
                "task_ids": [*session.task_ids, *(t.id for t in batch)],
                "options": {**session.options, TASKS_OPTION: saved},
            },
        )
        await self._emit("task.submitted", {"task_ids": [t.id for t in batch]})

    async def _refuse_if_alive(self, session_id: str) -> None:
        store = self.services.store
        session = await store.get_session(session_id)
        if session is None:
            return  # recover_session restores it from a checkpoint, or says why not
        recorded = session.metadata.get(ORCHESTRATOR)
        proc = procid.ProcessId.from_dict(recorded) if isinstance(recorded, dict) else None
        if (
            proc is not None
            and proc != procid.current()
            and session.status == SessionStatus.ACTIVE
            and procid.is_alive(proc) is not False
        ):
            # It may hold no claim right now (every task parked on a rate limit, or waiting
            # for a dependency) and still dispatch the next moment: two orchestrators would
            # then run the same tasks.
            raise RunError(
                f"session {session_id!r} is still being run by process {proc.pid} on "
                f"{proc.host}; stop that process first, or let it finish"
            )
        for task in await store.list_tasks(session_id):
            claim = task.claim
            if claim is None or not claim.is_live() or proc is None:
                continue
            if claim.holder.split(":")[:2] != [proc.host, str(proc.pid)]:
                continue
            if proc == procid.current():
                continue  # an earlier scheduler of this very process: stopped, not running
            if procid.is_alive(proc) is not False:
                raise RunError(
                    f"session {session_id!r} is still being run by process {proc.pid} on "
                    f"{proc.host} (it holds task {task.task_id!r}); stop that process first"
                )


def _abandoned(task: TaskState, status: TaskStatus) -> dict[str, Any]:
    updates: dict[str, Any] = {"status": status, "current_phase": None}
    if task.claim is not None and task.claim.status == ClaimStatus.ACTIVE:
        updates["claim"] = task.claim.model_copy(
            update={"status": ClaimStatus.ABANDONED, "released_at": utcnow()}
        )
    return updates
