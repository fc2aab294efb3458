"""Dispatch: fill the free slots with attempts, in queue order (``queue``).

A task is skipped while it is not ready (backoff, park), its dependencies are not merged, all
of its adapters are parked on a quota (the first unparked one of its chain is used; a parked
task keeps its own), no slot is free for its adapter and phase, or its declared files are held
by another running session (another task is picked meanwhile), or a part of the run holds it
(``parts.dispatch``: with ``radar: sequence``, a live collision on its files). A dependency that
can never be merged fails the task at once. A council task dispatches its candidates, each like
a task, and once all of
them have settled its council step (``council.step``).

A pass goes through the unfinished tasks in the order ``queue_order`` keeps between passes,
and stops once every slot is taken: what it costs is what it looks at, never every task of
the run. It leaves ``waits``: for each task it looked at and did not start, why (a phrase for
the live view: ``after add-cli``, ``README.md is held by add-changelog``, ``no free slot for
claude (build)``). It costs nothing extra: the reasons are the decisions the pass made anyway.
A task the pass did not reach waits for a slot; the board says what its record holds it for.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

from orchestrator.config.task import TaskConfig
from orchestrator.errors import RunError
from orchestrator.events.tasks import TaskFailed
from orchestrator.models import TERMINAL_TASK_STATUSES, TaskState, TaskStatus, utcnow
from orchestrator.scheduler.attempts.adapter_parks import AdapterParks
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.candidates import (
    candidate_ready,
    candidate_settled,
    candidates_of,
    group_lock_owner,
)
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.council.members import CouncilMembers
from orchestrator.scheduler.parts import RunParts
from orchestrator.scheduler.queue_order import QueueOrder
from orchestrator.scheduler.rules.queue import (
    broken_dependency,
    first_phase,
    ready,
    wait_reason,
    waiting_on,
)
from orchestrator.scheduler.spending import Spending
from orchestrator.spend.gate import Hold
from orchestrator.task_meta import TaskMeta
from orchestrator.workflow.best_of import COUNCIL_PHASE, judge_adapter

__all__ = ["Dispatcher", "adapter_chain"]

States = dict[str, TaskState]


class Dispatcher:
    def __init__(
        self,
        run: RunContext,
        inflight: InFlight,
        parks: AdapterParks,
        members: CouncilMembers,
        launch: Callable[[Attempt], None],
        spending: Spending,
        parts: RunParts | None = None,
    ) -> None:
        self._run = run
        # A part may hold a task back (``parts.dispatch``: ``radar: sequence`` holds a task
        # whose files a collision is on).
        self._parts = parts or RunParts(())
        self._inflight = inflight
        self._parks = parks
        self._members = members
        self._spending = spending
        self._launch = launch  # starts the attempt (the scheduler owns the task group)
        self._seq = 0
        self._order = QueueOrder()
        self.waits: dict[str, str] = {}  # task id -> why the last pass did not start it

    def changed(self, task_ids: Collection[str] | None) -> None:
        """The records of ``task_ids`` may have changed (None: any): the order moves them."""
        self._order.changed(task_ids)

    async def dispatch(self, states: States) -> None:
        store, emit = self._run.services.store, self._run.events.emit
        now = utcnow()
        waits: dict[str, str] = {}
        self.waits = waits
        tasks = self._run.tasks
        for task_id in self._order.tasks(tasks, states):
            if self._inflight.full():
                break  # the rest wait for a slot: nothing of theirs to look at (module doc)
            task, state = tasks.get(task_id), states.get(task_id)
            if task is None or state is None or task_id in self._inflight:
                continue
            if state.status in TERMINAL_TASK_STATUSES:
                continue  # ended since the order last heard of it
            held = wait_reason(task.depends_on, state, states, now)
            if held is not None:
                waits[task.id] = held
            if not (task.council or ready(state, now)):
                continue
            broken = broken_dependency(task, states)
            if broken is not None:
                error = f"not started: {broken}"
                await store.update_task_state(
                    task.id, {"status": TaskStatus.FAILED, "error": error, "finished_at": now}
                )
                await emit(TaskFailed(task_id=task.id, error=error))
                if task.council:
                    await self._members.cancel(task)
                continue
            if set(waiting_on(task, states)) - self._parts.stands_on(task, states):
                continue
            if task.council:
                await self._dispatch_council(task, state, states, now)
            else:
                why = await self._start(task, state, now)
                if why is not None:
                    waits[task.id] = why

    async def _start(
        self, task: TaskConfig, state: TaskState, now: datetime, group: str | None = None
    ) -> str | None:
        """Start an attempt at ``task`` if its adapter, a slot and its files are free; None
        when it started, else why not."""
        parked = state.status == TaskStatus.PARKED
        sticky = TaskMeta.read(state.metadata).park.adapter if parked else None
        chain = adapter_chain(self._run, task)
        stay = sticky if isinstance(sticky, str) else None
        # A parked task keeps its own adapter; another takes the first of its chain not parked,
        # nor held by a quota or an adapter's budget (then a fallback takes the call).
        options = [stay] if stay is not None else chain
        config = self._run.services.config
        phase = first_phase(config, task, state)
        free = [a for a in options if self._parks.choose([a], now) == a]
        # The phase it starts in may run on adapters of its own (``adapter:`` on the phase):
        # its first call is then held only while none of those has room, whichever adapter
        # the attempt takes (``Spending.held_by_budget`` judges the same chain).
        calls = config.adapter_chain(task, config.phase(phase))
        own = (
            None
            if stay is not None or calls == chain
            else _first_room(self._spending, task.id, calls, phase, now)
        )
        adapter: str | None = None
        held: Hold | None = None
        held_on = ""
        for option in free:
            hold, on = own or (self._spending.hold(task.id, option, phase, now), option)
            if hold is None:
                adapter = option
                break
            if held is None:
                held, held_on = hold, on
        if adapter is None:
            if held is None:  # every adapter it may use is parked: held by the first one's
                held_on = options[0]
                held = self._spending.hold(task.id, held_on, phase, now)
            if held is None:
                return f"{', '.join(chain)} parked on a quota"
            await self._spending.mark(state, held, held_on, phase)
            return held.reason
        # Nothing holds its call any more: a hold kept on its record ends now, not only once
        # it starts (a slot or a file may keep it waiting a while yet).
        state = await self._spending.mark(state, None, adapter, phase)
        if not self._inflight.free(adapter, phase):
            return f"no free slot for {adapter} ({phase})"
        state, held_by = await self._parts.dispatch(task, state)
        if held_by is not None:
            return held_by
        blocked = await self._file_held(frozenset(task.files), group)
        if blocked is not None:
            return blocked
        self._launch(
            Attempt(task, adapter, phase, self._next_seq(), frozenset(task.files), group=group)
        )
        return None

    async def _dispatch_council(
        self, task: TaskConfig, state: TaskState, states: States, now: datetime
    ) -> None:
        """Start the candidates that are ready to run, or, once all of them have settled,
        the council step that compares them and merges the winner."""
        members = [(m, states.get(m.id)) for m in candidates_of(task)]
        if all(candidate_settled(s) for _, s in members):
            if state.status == TaskStatus.RUNNING or ready(state, now):
                ready_ones = [m for m, s in members if s is not None and candidate_ready(s)]
                first = (ready_ones or [m for m, _ in members])[0].adapters[0]
                judge = judge_adapter(self._run.services.config, first)
                if self._parks.choose([judge], now) and self._inflight.free(judge, COUNCIL_PHASE):
                    attempt = Attempt(task, judge, COUNCIL_PHASE, self._next_seq(), frozenset())
                    attempt.picking = True
                    self._launch(attempt)
            return
        for member, member_state in members:
            if self._inflight.full():
                return
            if member_state is None or member.id in self._inflight or not ready(member_state, now):
                continue
            started = await self._start(member, member_state, now, group=task.id) is None
            if started and state.status != TaskStatus.RUNNING:
                running = {"status": TaskStatus.RUNNING, "started_at": state.started_at or now}
                state = await self._run.services.store.update_task_state(task.id, running)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _file_held(self, files: frozenset[str], group: str | None) -> str | None:
        """Which of ``files`` another running session declared or owns (a council
        candidate's siblings share its files and their lock owner), said for people; None
        when all are free."""
        if not files:
            return None
        declared = self._inflight.holding(files, group)
        if declared is not None:
            return f"{declared[0]} is held by {declared[1].key}"
        mine = group_lock_owner(group) if group is not None else None
        for path in sorted(files):
            owner = await self._run.services.locks.owner_of(path)
            if owner is not None and owner.session != mine:
                holder = next(
                    (
                        a.key
                        for a in self._inflight
                        if a.session is not None and a.session.session_id == owner.session
                    ),
                    f"session {owner.session}",
                )
                return f"{path} is held by {holder}"
        return None


def _first_room(
    spending: Spending, task: str, calls: list[str], phase: str, now: datetime
) -> tuple[Hold | None, str]:
    """Whether a call of ``phase`` on one of ``calls`` may start: (None, the adapter) when one
    has room, else (the first one's hold, that adapter)."""
    first: tuple[Hold | None, str] | None = None
    for adapter in calls:
        hold = spending.hold(task, adapter, phase, now)
        if hold is None:
            return None, adapter
        first = first or (hold, adapter)
    return first if first is not None else (None, "")


def adapter_chain(run: RunContext, task: TaskConfig) -> list[str]:
    """The adapters ``task`` may start on, primary first; ``RunError`` when it has none."""
    config = run.services.config
    chain = config.adapter_chain(task, config.phases_for(task)[0])
    if not chain:
        raise RunError(
            f"task {task.id!r}: no adapter configured; define one under `adapters:` or set "
            "the task's adapters"
        )
    return chain
