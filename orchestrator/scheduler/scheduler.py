"""The scheduler: fills capacity with attempts from the task queue until every task is settled.

``Scheduler`` is small: it composes parts that each own their state, and runs the tick.

- ``InFlight`` (the attempts in flight and their slots), ``AdapterParks`` (which adapters are
  parked until when), ``AttemptWrites`` (fenced store writes);
- ``Dispatcher`` picks the next tasks and starts attempts; ``AttemptRunner`` runs one from
  claim to workflow; ``Settler`` decides what its result means and ``Lander`` merges it;
- ``Reconciler`` (cancel requests, heartbeats, lost worktrees) with ``Sweeper`` (lapsed
  claims); ``CouncilMembers`` and ``CouncilStep`` (council mode); ``Submissions``.

Contract:

- ``run()`` creates a session in the store (tasks ``queued``), then ticks every
  ``scheduler.tick`` seconds (sooner when an attempt ends). Each tick **reconciles first**,
  **then dispatches** while slots are free (global, per adapter, per phase).
- ``cancel(task_id)`` (or ``cancel.request_cancel`` from any process) cancels a task: queued,
  it is never dispatched; running, its attempt is cancelled on the next tick and the task
  ends ``cancelled`` with its work committed on its branch.
- The run ends when every task is terminal (done, failed, cancelled, conflict); the session
  is then ``completed`` (all done) or ``failed``. A task that ended ``waiting_for_checkout``
  (its landing waited ``landing.wait_timeout`` for the base's checkout), and every task that
  waits for it through ``depends_on``, no longer holds the run: it ends when the rest is
  settled, the session ``interrupted`` (checkpoint written), so `council resume` lands it.
- ``stop()``: no new dispatch; running workflows are told to cancel (they commit the CLI's work
  and return); their tasks go back to the queue with claims abandoned; a checkpoint is written
  and the session marked ``interrupted``. ``kill()`` cancels everything at once (a second
  Ctrl-C), leaving the state for ``resume``.
- ``resume(session_id)`` continues an interrupted or killed session (``resume``).
- ``keep_open`` (``council serve``): a settled run does not end; it waits for tasks still to
  come (``submit``: a source's new issues, a team's additions) and for its pull requests,
  until ``stop()``.
- Events (``run.started``, ``task.dispatched``, ``task.retry``, ``adapter.parked``,
  ``task.failed``, ``task.swept``, ``merge.forecast_conflict``, ``run.finished``, ...) go
  through the store to its subscribers; the workflow's own events reach ``listeners``.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc

from orchestrator.config.task import TaskConfig
from orchestrator.errors import CouncilError, StateError, StoreUnavailable
from orchestrator.events import Event
from orchestrator.events.runs import (
    RunFinished,
    RunInterrupted,
    RunJoined,
    RunLeft,
    RunResumed,
    RunStarted,
)
from orchestrator.events.tasks import TaskRecordRecreated
from orchestrator.merge.remote import PushIntent
from orchestrator.models import TERMINAL_TASK_STATUSES, SessionStatus, TaskState
from orchestrator.process import procid
from orchestrator.retry import RetryPolicy
from orchestrator.scheduler.attempts.adapter_parks import AdapterParks
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.attempts.lander import Lander
from orchestrator.scheduler.attempts.landing_log import LandingLog
from orchestrator.scheduler.attempts.relander import Relander
from orchestrator.scheduler.attempts.runner import AttemptRunner
from orchestrator.scheduler.attempts.settler import Settler
from orchestrator.scheduler.attempts.writes import AttemptWrites
from orchestrator.scheduler.board import TaskLine, board
from orchestrator.scheduler.cancel import request_cancel
from orchestrator.scheduler.context import (
    ORCHESTRATOR,
    TASKS_OPTION,
    TEAM,
    RunContext,
    RunEvents,
    Services,
)
from orchestrator.scheduler.council.closing import CouncilClosing
from orchestrator.scheduler.council.members import CouncilMembers
from orchestrator.scheduler.council.step import CouncilStep
from orchestrator.scheduler.dispatcher import Dispatcher, adapter_chain
from orchestrator.scheduler.ending import decide, settled
from orchestrator.scheduler.liveness import refuse_if_alive
from orchestrator.scheduler.monitoring import run_monitor
from orchestrator.scheduler.outage import Outage
from orchestrator.scheduler.part_list import run_parts
from orchestrator.scheduler.reconciler import Reconciler
from orchestrator.scheduler.recording import RECORDING, TaskRecorder
from orchestrator.scheduler.resume import recover, retire_left_worktrees, skip_landed
from orchestrator.scheduler.spending import Spending
from orchestrator.scheduler.submissions import Submissions
from orchestrator.scheduler.sweeper import Sweeper
from orchestrator.scheduler.team.definitions import (
    DEFINITIONS_OPTION,
    JoinChoice,
    definitions,
    plan_join,
)
from orchestrator.scheduler.team.join import join_team_run, point_team_run
from orchestrator.scheduler.team.presence import alive_workstations
from orchestrator.scheduler.view import TaskView
from orchestrator.workflow.task_run import TaskRun, WorkflowFn, WorkflowResult

__all__ = ["Scheduler", "Services", "default_workflow"]

log = logging.getLogger(__name__)


async def default_workflow(run: TaskRun) -> WorkflowResult:
    """``orchestrator.workflow.workflow.run_workflow``, imported on first use."""
    from orchestrator.workflow.workflow import run_workflow

    result: WorkflowResult = await run_workflow(run)
    return result


class Scheduler:
    def __init__(
        self,
        services: Services,
        *,
        workflow: WorkflowFn | None = None,
        listeners: list[Callable[[Event], None]] | None = None,
        join: JoinChoice | None = None,
    ) -> None:
        config = services.config
        self._join_choice = join or JoinChoice()
        self.services = services
        self.keep_open = False  # ``council serve``: settled is not the end (module doc)
        proc = procid.current()
        self._run = run = RunContext(
            services=services,
            events=RunEvents(services, listeners),
            holder=f"{proc.host}:{proc.pid}:{secrets.token_hex(4)}",
            tasks={task.id: task for task in config.tasks},
        )
        policy = RetryPolicy(config.retry)
        self._inflight = inflight = InFlight(config.capacity)
        self._parks = parks = AdapterParks(config.rate_limits)
        self._writes = writes = AttemptWrites(run)
        self._members = members = CouncilMembers(run, inflight, writes)
        closing = CouncilClosing(run, inflight)
        self.spending = spending = Spending(run, parks, self.stop)
        # The run's features, each a part in a room of its own (``part_list``, ``parts``).
        self._parts = parts = run_parts(run, inflight, writes, spending, lambda: self._wake.set())
        self._landing = landing = LandingLog(run, inflight)
        lander = Lander(run, writes, inflight, landing, parts)
        settler = Settler(run, writes, parks, policy, lander, parts)
        # Landed means still landed: vanished landings land again (``attempts.relander``).
        self._relander = Relander(
            run, writes, inflight, lander, lambda: self._seen, self._launch_relandings, parts
        )
        self._runner = AttemptRunner(
            run,
            workflow or default_workflow,
            inflight,
            writes,
            settler,
            candidate_ended=closing.release_if_over,
            parts=parts,
            spend=lambda: spending.gate,
        )
        self._council = CouncilStep(
            run, inflight, writes, members, closing, settler, spend=lambda: spending.gate
        )
        self._dispatcher = Dispatcher(
            run, inflight, parks, members, self._launch, spending, parts=parts
        )
        self._sweeper = Sweeper(run, policy)
        self._reconciler = Reconciler(run, inflight, writes, members, self._sweeper, self._touch)
        self._submissions = Submissions(run, members)
        self._recorder = TaskRecorder(run, members)  # the tasks not recorded yet (``recording``)
        self._wake = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._view: TaskView | None = None
        self._seen: dict[str, TaskState] = {}  # the task records as the last tick read them
        self._lost_reported = False  # the state was found gone and said so already
        self._identity: str | None = None  # the store's data this run started on
        self._outage = Outage()
        # A team session's tasks this workstation waits for without running them (their
        # definition is not this config's to run: ``definitions``), and the ids of the
        # session's records found not to be tasks of it (council candidates).
        self._foreign: set[str] = set()
        self._not_tasks: set[str] = set()

    # -- public ---------------------------------------------------------------------------

    @property
    def session_id(self) -> str | None:
        return self._run.session_id

    @property
    def listeners(self) -> list[Callable[[Event], None]]:
        """Who hears the workflow's events (phases, CLI output)."""
        return self._run.events.listeners

    async def start(self) -> str:
        """Create the run's session in the store with every task ``queued``, or in team mode
        join the team's session when another workstation runs it (``team_join``); its id.
        The tasks are recorded in batches (``recording``); ``run`` dispatches the first ones
        while it records the rest."""
        session_id = await self._begin()
        await self._recorder.record_all()
        return session_id

    async def _begin(self) -> str:
        """The session on record, none of its tasks yet (``recording`` writes them)."""
        run = self._run
        if run.session_id is not None:
            return run.session_id
        for task in run.tasks.values():
            adapter_chain(run, task)  # fails early, before anything is written
        store, team = self.services.store, self.services.team
        wanted: str | None = None
        if team is not None:
            joined = await join_team_run(store, team, self._others_in)
            if not joined.created:
                return await self._join(joined.session_id)
            wanted = joined.session_id
        # The session lists every task, with its config, from the start (what `council
        # status` and `council resume` read); their records follow in batches (``recording``).
        # Each task's resolved definition is kept for the team's joiners only (``definitions``;
        # without one a joiner resolves the stored config): 10,000 of them cost seconds.
        shapes = definitions(self.services.config, run.tasks.values()) if team else None
        session = await store.create_session(
            {
                TASKS_OPTION: [t.model_dump(mode="json") for t in run.tasks.values()],
                **({DEFINITIONS_OPTION: shapes} if shapes is not None else {}),
            },
            [],
            session_id=wanted,
            listed=list(run.tasks),
        )
        run.session_id = session.session_id
        self._submissions.clear()  # submitted before the start: already in the session
        await store.update_session(
            run.session_id,
            {
                "metadata": {
                    ORCHESTRATOR: procid.current().as_dict(),
                    **({TEAM: team.run_key} if team is not None else {}),
                    **({RECORDING: True} if run.tasks else {}),
                },
            },
            metrics=False,
        )
        self._recorder.plan(run.tasks.values(), resuming=False)
        await run.events.emit(RunStarted(session_id=run.session_id, holder=run.holder))
        return run.session_id

    async def _join(self, session_id: str) -> str:
        """Work in another workstation's session, on the team's definition of each task
        (``definitions.plan_join``: a config whose tasks differ is refused here, before
        anything is written, unless the user allowed the difference); this config's tasks the
        session lacks are added to it, like submitted ones, when the user asked for that."""
        run, store, team = self._run, self.services.store, self.services.team
        assert team is not None
        session = await store.get_session(session_id, metrics=False)
        if session is None:
            raise StateError(f"team session {session_id!r} disappeared while joining it")
        plan = plan_join(self.services.config, run.tasks, session, team.run_key, self._join_choice)
        for task in plan.tasks.values():
            adapter_chain(run, task)  # fails early, before anything is written
        run.tasks = plan.tasks
        self._foreign = plan.foreign
        run.session_id = session_id
        self._submissions.clear()
        for task in plan.added:
            self._submissions.pending(task)
        await run.events.emit(
            RunJoined(session_id=session_id, holder=run.holder, tasks=len(session.task_ids))
        )
        await skip_landed(run, run.tasks.values())
        await self._members.prepare(
            [t for t in run.tasks.values() if t.id in session.task_ids], resuming=True
        )
        return session_id

    async def _others_in(self, session_id: str) -> bool:
        """Another workstation still works in ``session_id``."""
        team = self.services.team
        if team is None:
            return False
        stale = self.services.config.scheduler.stale_threshold
        store = self.services.store
        return bool(await alive_workstations(store, session_id, stale, but=team.workstation))

    async def run(self) -> None:
        """Run until every task is settled, or until stopped."""
        await self._begin()
        await self._loop()

    async def resume(self, session_id: str) -> None:
        """Continue session ``session_id`` where it stood (``orchestrator.scheduler.resume``)."""
        run, store, team = self._run, self.services.store, self.services.team
        if team is not None and await self._others_in(session_id):
            # Teammates still run it: this workstation joins them, nothing to recover.
            await self._join(session_id)
            await self._loop()
            return
        if team is None:
            await refuse_if_alive(store, session_id)
        added: list[TaskConfig] = []
        if team is not None:
            # A clone resuming the team's session works on the team's definitions, as one
            # joining it does: refused here, before anything is written, when they differ.
            session = await store.get_session(session_id, metrics=False)
            if session is not None:
                plan = plan_join(
                    self.services.config, run.tasks, session, team.run_key, self._join_choice
                )
                run.tasks, self._foreign, added = plan.tasks, plan.foreign, plan.added
        await self._sweeper.stop_orphans()
        if not await self._record_unrecorded(session_id):
            return  # stopped while recording: the session stays as it was, resumable
        # In a team only lapsed claims go back to the queue: a teammate that is merely quiet
        # (not in presence right now) keeps what it still holds until its lease says otherwise.
        snapshot = await recover(run, self._parks, session_id, force=team is None)
        for task_id in self._foreign:
            run.tasks.pop(task_id, None)  # the team's to run: waited for
        for task in added:
            run.tasks[task.id] = task
            self._submissions.pending(task)
        if team is not None:
            await point_team_run(store, team, session_id)
        # A merge that landed just before the old orchestrator died was never recorded: the
        # trailer on the base says it is done (running it again could only fail or merge twice).
        unfinished = {t.task_id for t in snapshot.tasks if t.status not in TERMINAL_TASK_STATUSES}
        await skip_landed(run, (t for t in run.tasks.values() if t.id in unfinished))
        await retire_left_worktrees(run, self._writes, snapshot.session.created_at)
        await self._members.prepare(run.tasks.values(), resuming=True)
        metadata = {**snapshot.session.metadata, ORCHESTRATOR: procid.current().as_dict()}
        await store.update_session(session_id, {"metadata": metadata}, metrics=False)
        await run.events.emit(RunResumed(session_id=session_id, holder=run.holder))
        await self._loop()

    async def _record_unrecorded(self, session_id: str) -> bool:
        """Record the tasks session ``session_id`` lists without a record yet (a run stopped
        while recording them, ``recording``), before its recovery would start each afresh
        one by one; False when the run was stopped meanwhile."""
        store = self.services.store
        session = await store.get_session(session_id, metrics=False)
        if session is None or not session.metadata.get(RECORDING):
            # All were recorded once: one without a record now was lost, and the recovery
            # starts it afresh and says so (or brings the session back from a checkpoint).
            return True
        recorded = {state.task_id for state in await store.list_tasks(session_id)}
        missing = [task_id for task_id in session.task_ids if task_id not in recorded]
        if not missing:
            return True
        saved = {raw.get("id"): raw for raw in session.options.get(TASKS_OPTION, [])}
        run, tasks = self._run, []
        for task_id in missing:  # one whose config is nowhere is the recovery's to start afresh
            task = run.tasks.get(task_id)
            if task is None and task_id in saved:
                task = TaskConfig.model_validate(saved[task_id])
            if task is not None:
                tasks.append(task)
        previous, run.session_id = run.session_id, session_id
        try:
            self._recorder.plan(tasks, resuming=True)
            await self._recorder.record_all()
        finally:
            run.session_id = previous
        return not run.stopping

    def submit(self, task: TaskConfig) -> None:
        """Add ``task`` to the run (before or while it runs)."""
        self._submissions.submit(task)
        self._wake.set()

    async def cancel(self, task_id: str) -> TaskState:
        """Cancel ``task_id`` (``cancel.request_cancel``); a running task is cancelled on the
        next tick, which comes at once. Its state after the request; ``CancelError`` if it
        already ended."""
        state = await request_cancel(self.services.store, task_id)
        self._wake.set()
        return state

    def stop(self) -> None:
        """Graceful stop: no new dispatch, running workflows cancelled, state kept."""
        self._run.stopping = True
        for attempt in self._inflight:
            attempt.cancel.set()
        self._wake.set()

    def kill(self) -> None:
        """Stop at once: every attempt is cancelled where it stands, and given back to the
        queue uncounted (``AttemptRunner.run``): the user's stop is no attempt at the work."""
        self._run.stopping = self._run.killed = True
        if self._scope is not None:
            self._scope.cancel()

    async def before_push(self, intent: PushIntent) -> None:
        """The merge queue's write-ahead callback in a team (``attempts.landing_log``)."""
        await self._landing.before_push(intent)

    def attempts(self) -> list[Attempt]:
        """The attempts in flight now."""
        return list(self._inflight)

    def board(self) -> list[TaskLine]:
        """Every task of the run now, with what it does or why it waits (``board``)."""
        tasks, waits = self._run.tasks.values(), self._dispatcher.waits
        return board(tasks, self._seen, self._inflight, waits, self._parts.marks())

    def task(self, task_id: str) -> TaskConfig | None:
        """The definition of task ``task_id`` of the run now (None: not one of its tasks)."""
        return self._run.tasks.get(task_id)

    # -- the tick -------------------------------------------------------------------------

    async def _loop(self) -> None:
        run = self._run
        assert run.session_id is not None
        store = self.services.store
        self._identity = await store.identity()
        await self.spending.open(run.session_id)
        # Another workstation's write to one of the run's tasks ends the nap at once.
        self._view = view = TaskView(store, run.session_id, on_remote=lambda: self._wake.set())
        store.subscribe(view.on_event)
        try:
            await self._ticks()
        except Exception as exc:
            # A write that failed because the whole state was deleted says so, not which file.
            if not self._lost_reported and await self._state_gone():
                raise _state_disappeared(run.session_id, []) from exc
            raise
        finally:
            store.unsubscribe(view.on_event)
            self._view = None
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            try:
                await self._finish()
            except StoreUnavailable as exc:
                # This workstation is done; the session's own end is recorded by whoever
                # finishes next, or by `council run`/`resume` once the database is back.
                log.warning("the end of the run could not be recorded: %s", exc)
            finally:
                await self._parts.left()

    async def _ticks(self) -> None:
        with anyio.CancelScope() as scope:
            self._scope = scope
            async with anyio.create_task_group() as group:
                self._group = group
                # The loops beside the tick, each until the tick ends the run
                beside: list[Callable[[anyio.CancelScope], Coroutine[Any, Any, None]]] = [
                    self._watch_leases,
                    self._monitor_state,
                    *self._parts.beside(lambda: self._wake.set(), self._outage.down),
                ]
                if not self._recorder.done:
                    beside.append(self._record)
                scopes = [anyio.CancelScope() for _ in beside]
                for loop, scope in zip(beside, scopes, strict=True):
                    group.start_soon(loop, scope)
                while True:
                    try:
                        if await self._tick():
                            for scope in scopes:
                                scope.cancel()
                            break
                    except StoreUnavailable as exc:
                        # The team's database is away (a restart, the network): keep the
                        # attempts going, let heartbeats fence what cannot be renewed in
                        # time, and try again next tick; the run goes on once it is back.
                        self._outage.down(exc)
                    else:
                        self._outage.up()
                    await self._nap()

    async def _record(self, scope: anyio.CancelScope) -> None:
        """Record the run's tasks batch after batch while the tick dispatches those already
        recorded (``recording``); each batch wakes the tick."""
        with scope:
            await self._recorder.run(self._wake.set)
        self._wake.set()

    async def _watch_leases(self, scope: anyio.CancelScope) -> None:
        """Fence, on time, the attempts whose claims went unrenewed too long, even while a
        tick waits for an unreachable store (``Reconciler.fence_overdue``)."""
        every = max(0.05, self.services.config.scheduler.heartbeat_interval / 2)
        with scope:
            while True:
                await anyio.sleep(every)
                await self._reconciler.fence_overdue()

    async def _monitor_state(self, scope: anyio.CancelScope) -> None:
        """The store's caretaker for as long as the run ticks (``state.monitor``): stale
        locks, integrity, oversized records, auto-checkpoints. Its failures are logged and
        never end the run."""
        with scope:
            await run_monitor(self.services.store, self.services.config, self._run.session_id)

    async def _tick(self) -> bool:
        """One tick: reconcile, then dispatch; True when the run is over."""
        run = self._run
        await self._submissions.write_pending()
        await self._reconciler.reconcile()
        states = await self._states()
        await self._take_up_added(states)
        if any(task_id not in states for task_id in run.tasks if self._recorded(task_id)):
            states = await self._records_lost()
        self._seen = states
        await self._parts.tick(states)
        if run.stopping:
            return not self._inflight
        if not self._inflight and self._settled(states) and not self.keep_open:
            # Decided under what each part holds still meanwhile (``parts.end_when``).
            return await self._parts.end_when(self._ends)
        await self._dispatcher.dispatch(states)
        return False

    async def _ends(self) -> bool:
        """The view may lag behind other processes: the run ends on a fresh read, which may
        also show a task another workstation of the team added meanwhile; and only once every
        landing recorded done is still on the base (``attempts.relander``)."""
        fresh = await self._states(full=True)
        await self._take_up_added(fresh)
        return self._settled(fresh) and not await self._relander.at_end(fresh)

    async def _take_up_added(self, states: dict[str, TaskState]) -> None:
        """Tasks another workstation added to the team session since this one read it
        become this run's too: run here as the team defines them, or, when this config cannot
        run them so, waited for (``definitions``). Either way this workstation's run ends only
        once they have, and its report counts them like any other task of the team."""
        run, team = self._run, self.services.team
        if team is None or run.session_id is None:
            return
        unknown = states.keys() - run.tasks.keys() - self._foreign - self._not_tasks
        if not unknown:
            return
        session = await self.services.store.get_session(run.session_id, metrics=False)
        if session is None:
            return  # the state is gone: the tick's own checks say so
        plan = plan_join(self.services.config, {}, session, team.run_key, JoinChoice())
        added = [task for task_id, task in plan.tasks.items() if task_id not in run.tasks]
        run.tasks.update((task.id, task) for task in added)
        self._foreign |= plan.foreign - run.tasks.keys()
        self._not_tasks |= unknown - set(session.task_ids)
        if added:
            await self._members.prepare(added, resuming=True)

    def _launch(self, attempt: Attempt) -> None:
        self._inflight.launch(attempt)
        assert self._group is not None
        self._group.start_soon(self._run_and_wake, attempt)

    def _launch_relandings(self, attempts: list[Attempt]) -> None:
        assert self._group is not None
        self._group.start_soon(self._reland_and_wake, attempts)

    async def _reland_and_wake(self, attempts: list[Attempt]) -> None:
        try:
            await self._relander.reland(attempts)
        finally:
            self._wake.set()

    async def _run_and_wake(self, attempt: Attempt) -> None:
        try:
            if attempt.picking:
                await self._council.run(attempt)
            else:
                await self._runner.run(attempt)
        finally:
            self._wake.set()

    def _touch(self, task_id: str) -> None:
        """Someone else may have changed ``task_id``: read it again on the next tick."""
        if self._view is not None:
            self._view.touch(task_id)

    async def _records_lost(self) -> dict[str, TaskState]:
        """Some task of the run has no record (the view may lag: read again). The whole store
        gone (no session record either) stops the run with a way forward; a task record moved
        away alone (as a damaged record's error advises) is started afresh, queued."""
        run = self._run
        assert run.session_id is not None
        states = await self._states(full=True)
        missing = [t for t in run.tasks if t not in states and self._recorded(t)]
        if not missing:
            return states
        store = self.services.store
        if await self._state_gone():
            self._lost_reported = True
            raise _state_disappeared(run.session_id, missing)
        for task_id in missing:
            fresh = TaskState(task_id=task_id, session_id=run.session_id).model_dump()
            await store.update_task_state(task_id, fresh)
            await run.events.emit(
                TaskRecordRecreated(task_id=task_id, reason="its record was missing")
            )
        return await self._states(full=True)

    def _recorded(self, task_id: str) -> bool:
        """``task_id``'s batch is written and ready (``recording``)."""
        return task_id not in self._recorder.pending

    async def _state_gone(self) -> bool:
        """The run's state was deleted: its session has no record any more, or the store's
        data is not the data the run started on (a deletion racing the run's own writes can
        leave a session record behind, written back by a write under way)."""
        assert self._run.session_id is not None
        store = self.services.store
        try:
            if await store.get_session(self._run.session_id, metrics=False) is None:
                return True
            return self._identity is not None and await store.identity() != self._identity
        except CouncilError:
            return False

    async def _nap(self) -> None:
        with anyio.move_on_after(self.services.config.scheduler.tick):
            await self._wake.wait()
        self._wake = anyio.Event()

    def _settled(self, states: dict[str, TaskState]) -> bool:
        tasks = self._run.tasks
        depends_on = {task.id: task.depends_on for task in tasks.values()}
        return settled([*tasks, *self._foreign], states, self._parts.parts, depends_on)

    async def _states(self, *, full: bool = False) -> dict[str, TaskState]:
        """The session's tasks (``TaskView``: only what changed is read again), and the
        candidates of its unfinished council tasks."""
        run = self._run
        assert run.session_id is not None
        if self._view is None:
            tasks = await self.services.store.list_tasks(run.session_id)
            states = {task.task_id: task for task in tasks}
        else:
            states = await self._view.current(full=full)
        pending = self._recorder.pending
        if pending:  # recorded, but not ready to dispatch until their batch is (``recording``)
            states = {task_id: s for task_id, s in states.items() if task_id not in pending}
        await self._members.add_states(run.tasks.values(), states)
        return states

    async def _finish(self) -> None:
        run = self._run
        assert run.session_id is not None
        store = self.services.store
        if run.stopping and await self._others_in(run.session_id):
            # The team goes on without this workstation: its tasks are back in the queue.
            await run.events.emit(RunLeft(session_id=run.session_id))
            return
        states = await store.list_tasks(run.session_id)
        by_id = {s.task_id: s for s in states}
        await self._members.add_states(run.tasks.values(), by_id)  # council candidates
        with contextlib.suppress(CouncilError):  # the spend line is for reports only
            await self.spending.publish(list(by_id.values()))
        if run.stopping:
            await store.update_session(
                run.session_id, {"status": SessionStatus.INTERRUPTED}, metrics=False
            )
            if not run.killed:
                await store.create_checkpoint(run.session_id, "interrupted")
            await run.events.emit(RunInterrupted(session_id=run.session_id))
            return
        own = {s.task_id: s for s in states}
        end = decide(own, self._parts.parts, team=self.services.team is not None, seen=by_id)
        if end.status is None:
            # A team session with tasks other workstations go on with: theirs to finish.
            await run.events.emit(RunLeft(session_id=run.session_id))
            return
        if end.checkpoint is not None:  # `council resume` goes on from it
            await store.create_checkpoint(run.session_id, end.checkpoint)
        await store.update_session(run.session_id, {"status": end.status}, metrics=False)
        await run.events.emit(RunFinished(session_id=run.session_id, status=end.status))


def _state_disappeared(session_id: str, tasks: list[str]) -> StateError:
    records = (
        f"session {session_id} and tasks {', '.join(tasks)} have"
        if tasks
        else (f"session {session_id} has")
    )
    return StateError(
        f"the run's state disappeared while it ran ({records} no record any more): stopped. "
        "Start the run again with `council run <config>`: work that landed is recognised on "
        "the base and never merged twice"
    )
