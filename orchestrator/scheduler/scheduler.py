"""The scheduler: fills capacity with attempts from the task queue until every task is settled.

``Scheduler`` is small: it composes parts that each own their state, and runs the tick.

- ``InFlight`` (the attempts in flight and their slots), ``AdapterParks`` (which adapters are
  parked until when), ``AttemptWrites`` (fenced store writes);
- ``Dispatcher`` picks the next tasks and starts attempts; ``AttemptRunner`` runs one from
  claim to workflow; ``Settler`` decides what its result means and ``Lander`` merges it;
- ``Reconciler`` (cancel requests, heartbeats, lost worktrees) with ``Sweeper`` (lapsed
  claims); ``CouncilMembers`` and ``CouncilStep`` (council mode); ``Submissions``;
- ``Opening`` (the session: new, a team's joined, one resumed), ``RunReads`` (the task records
  each tick reads), ``finish`` (the end recorded, as ``ending`` decides it);
- the run's features (team mode, pull requests, budgets, the radar, the checkout wait) are
  ``parts.RunPart``s listed once in ``part_list``: the scheduler calls them at fixed points
  (``RunParts``) and imports none of them.

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

import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc

from orchestrator.config.task import TaskConfig
from orchestrator.errors import StoreUnavailable
from orchestrator.events import Event
from orchestrator.merge.remote import PushIntent
from orchestrator.models import TaskState
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
from orchestrator.scheduler.board import TaskLine
from orchestrator.scheduler.board_book import BoardBook, BoardView
from orchestrator.scheduler.cancel import request_cancel
from orchestrator.scheduler.context import (
    RunContext,
    RunEvents,
    Services,
)
from orchestrator.scheduler.council.closing import CouncilClosing
from orchestrator.scheduler.council.members import CouncilMembers
from orchestrator.scheduler.council.step import CouncilStep
from orchestrator.scheduler.dispatcher import Dispatcher
from orchestrator.scheduler.ending import settled
from orchestrator.scheduler.monitoring import run_monitor
from orchestrator.scheduler.outage import Outage
from orchestrator.scheduler.part_list import run_parts
from orchestrator.scheduler.reconciler import Reconciler
from orchestrator.scheduler.session.finish import RunEnd
from orchestrator.scheduler.session.opening import Opening
from orchestrator.scheduler.session.reading import RunReads
from orchestrator.scheduler.session.recording import TaskRecorder
from orchestrator.scheduler.spending import Spending
from orchestrator.scheduler.submissions import Submissions
from orchestrator.scheduler.sweeper import Sweeper
from orchestrator.scheduler.team.definitions import (
    JoinChoice,
)
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
        self._recorder = TaskRecorder(run, members)  # the tasks not recorded yet (``recording``)
        self._reads = RunReads(run, self._recorder, members)  # the task records (``reading``)
        self._reconciler = Reconciler(
            run, inflight, writes, members, self._sweeper, self._reads.touch
        )
        self._submissions = Submissions(run, members)
        self._wake = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self._end = RunEnd()  # the run's end, recorded once the loop is over
        self._group: anyio.abc.TaskGroup | None = None
        self._seen: dict[str, TaskState] = {}  # the task records as the last tick read them
        self._book = BoardBook()  # the board's lines, built again where they changed
        self._outage = Outage()
        self._opening = Opening(  # the run's session: new, joined or resumed
            run,
            join or JoinChoice(),
            submissions=self._submissions,
            recorder=self._recorder,
            members=members,
            sweeper=self._sweeper,
            parks=parks,
            writes=writes,
        )

    # -- public ---------------------------------------------------------------------------

    @property
    def session_id(self) -> str | None:
        return self._run.session_id

    @property
    def stop_checkpoint(self) -> str | None:
        """The checkpoint this run's stop wrote, if it did (``session.finish``)."""
        return self._run.stop_checkpoint

    @property
    def final_tasks(self) -> dict[str, TaskState] | None:
        """The task records this run read at its end, if it ended by itself (``finish``)."""
        return self._run.final_tasks

    @property
    def listeners(self) -> list[Callable[[Event], None]]:
        """Who hears the workflow's events (phases, CLI output)."""
        return self._run.events.listeners

    async def start(self) -> str:
        """Create the run's session in the store with every task ``queued``, or in team mode
        join the team's session when another workstation runs it (``team.join``); its id.
        The tasks are recorded in batches (``recording``); ``run`` dispatches the first ones
        while it records the rest."""
        session_id = await self._opening.begin()
        await self._recorder.record_all()
        return session_id

    async def run(self) -> None:
        """Run until every task is settled, or until stopped."""
        await self._opening.begin()
        await self._loop()

    async def resume(self, session_id: str) -> None:
        """Continue session ``session_id`` where it stood (``opening``, ``resume``)."""
        if await self._opening.resume(session_id):
            await self._loop()

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
        self._end.cut()

    async def before_push(self, intent: PushIntent) -> None:
        """The merge queue's write-ahead callback in a team (``attempts.landing_log``)."""
        await self._landing.before_push(intent)

    def attempts(self) -> list[Attempt]:
        """The attempts in flight now."""
        return list(self._inflight)

    def board(self) -> list[TaskLine]:
        """Every task of the run now, with what it does or why it waits (``board``)."""
        self._look()
        return self._book.lines()

    def board_view(self, room: int) -> BoardView:
        """What a screen of ``room`` rows shows of the board, and its counts
        (``board_book``): the cost of what changed since the last look and of what it shows."""
        self._look()
        return self._book.view(room)

    def _look(self) -> None:
        parts = self._parts
        self._book.look(
            self._run.tasks,
            self._seen,
            self._inflight,
            self._dispatcher.waits,
            parts.marks(),
            parts.notes(),
        )

    def task(self, task_id: str) -> TaskConfig | None:
        """The definition of task ``task_id`` of the run now (None: not one of its tasks)."""
        return self._run.tasks.get(task_id)

    # -- the tick -------------------------------------------------------------------------

    async def _loop(self) -> None:
        run = self._run
        assert run.session_id is not None
        await self.spending.open(run.session_id)
        async with self._reads.watching(lambda: self._wake.set()):
            await self._ticks()
        await self._end.record(
            run,
            self._parts,
            opening=self._opening,
            members=self._members,
            spending=self.spending,
            seen=self._seen,
            heard=self._outage.since is None,
        )

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
                        if self._run.stopping and not self._inflight:
                            # A stop waits for no store: its end says what it could not
                            # write, bounded as for a store not heard (``session.finish``).
                            for scope in scopes:
                                scope.cancel()
                            break
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
        states = await self._reads.states()
        await self._opening.take_up_added(states)
        self._seen = states = await self._reads.with_records(states)
        changes = self._reads.take_changes()  # what ``states`` gives otherwise than before
        self._book.changed(changes)
        self._dispatcher.changed(changes)
        self._relander.changed(changes)
        await self._parts.tick(states)
        if run.stopping or run.ended_elsewhere:
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
        fresh = await self._reads.states(full=True)
        await self._opening.take_up_added(fresh)
        return self._settled(fresh) and not await self._relander.at_end(fresh)

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

    async def _nap(self) -> None:
        with anyio.move_on_after(self.services.config.scheduler.tick):
            await self._wake.wait()
        self._wake = anyio.Event()

    def _settled(self, states: dict[str, TaskState]) -> bool:
        tasks = self._run.tasks
        depends_on = {task.id: task.depends_on for task in tasks.values()}
        return settled([*tasks, *self._opening.foreign], states, self._parts.parts, depends_on)
