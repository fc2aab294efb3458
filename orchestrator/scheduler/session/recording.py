"""A run's tasks recorded in its session in batches, while the run already dispatches.

A run of many tasks does not write them all before it starts: ``Scheduler.start`` records the
session first (no task in it yet), and the ``TaskRecorder`` then adds the tasks in batches of
``BATCH`` (``StateStore.add_session_tasks``: one durable write, or one transaction, per
batch), in the order the queue takes them (highest priority first, then the config's order),
each batch ready for dispatch once it is written, its already landed tasks marked done
(``resume.skip_landed``) and its council tasks' candidates recorded (``CouncilMembers``). So
the first task starts after the first batch, not after the last one, and a stop is honoured
between two batches.

A run stopped while recording leaves its session interrupted with the tasks recorded so far;
``council resume`` records the rest (a task already recorded is never recorded twice: the
store leaves it as it is).

A workstation joining a team's session records too (``Opening.join``): the tasks the session
lists but has no record of yet, batch by batch beside the workstation that created it (each
batch serialized with the others on the session's row, ``add_session_tasks``, so what one wrote
the other skips). A joiner never takes such a task for lost, and the session's tasks are all
recorded even when its creator stopped or died while recording. A batch refused because a later
run of the team took a task over (``TaskInActiveSession``) once this session ended elsewhere
means this workstation has nothing left here (``RunContext.ended_elsewhere``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from orchestrator.config.task import TaskConfig
from orchestrator.errors import TaskInActiveSession
from orchestrator.models import TERMINAL_SESSION_STATUSES
from orchestrator.safety.crashpoints import crash_point
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.council.members import CouncilMembers
from orchestrator.scheduler.session.resume import skip_landed

__all__ = ["BATCH", "RECORDING", "TaskRecorder"]

RECORDING = "recording"
"""Session metadata: true from the session's creation until its last task is recorded, so a
resume knows a task without a record was never recorded (it records it, with the rest) rather
than lost (the recovery starts such a one afresh, and says so)."""

BATCH = 256
"""Tasks recorded per batch: a batch is written in a fraction of a second, so a stop waits at
most that long, and 10,000 tasks take 40 durable writes, not 10,000."""


class TaskRecorder:
    """The tasks of the run not recorded in its session yet (module doc)."""

    def __init__(self, run: RunContext, members: CouncilMembers) -> None:
        self._run = run
        self._members = members
        self._todo: list[TaskConfig] = []
        self._resuming = False
        # Task ids not ready for dispatch yet: not recorded, or their batch not yet prepared.
        self.pending: set[str] = set()
        self._readied: set[str] = set()  # left ``pending`` since ``take_readied``

    def plan(self, tasks: Iterable[TaskConfig], *, resuming: bool) -> None:
        """Record ``tasks`` (a resumed session: the ones it lacks), highest priority first."""
        self._todo = sorted(tasks, key=lambda task: -task.priority)  # stable: config order
        self._resuming = resuming
        self.pending = {task.id for task in self._todo}

    def take_readied(self) -> set[str]:
        """The tasks whose batch became ready since the last call (the tick sees them now)."""
        readied, self._readied = self._readied, set()
        return readied

    @property
    def done(self) -> bool:
        return not self._todo

    async def record_next(self) -> int:
        """Record the next batch; how many tasks it held."""
        run = self._run
        assert run.session_id is not None
        batch, self._todo = self._todo[:BATCH], self._todo[BATCH:]
        if not batch:
            return 0
        inits = [{"task_id": task.id, "priority": task.priority} for task in batch]
        try:
            await run.services.store.add_session_tasks(run.session_id, inits)
        except TaskInActiveSession:
            if not await self._ended(run.session_id):
                raise
            run.ended_elsewhere = True  # a later run of the team has its tasks: leave
            self._todo = []
            return 0
        await skip_landed(run, batch)
        await self._members.prepare(batch, resuming=self._resuming)
        self.pending.difference_update(task.id for task in batch)
        self._readied.update(task.id for task in batch)
        if self._todo:
            crash_point("start.batch_recorded", run.session_id)
        else:
            await self._finished(run.session_id)
        return len(batch)

    async def _ended(self, session_id: str) -> bool:
        """Session ``session_id`` ended (another workstation of the team recorded its end)."""
        session = await self._run.services.store.get_session(session_id, metrics=False)
        return session is not None and session.status in TERMINAL_SESSION_STATUSES

    async def _finished(self, session_id: str) -> None:
        """Every task is recorded: the session says so (``RECORDING``)."""
        store = self._run.services.store
        session = await store.get_session(session_id, metrics=False)
        if session is not None and session.metadata.get(RECORDING):
            metadata = {k: v for k, v in session.metadata.items() if k != RECORDING}
            await store.update_session(session_id, {"metadata": metadata}, metrics=False)

    async def record_all(self) -> None:
        """Record every batch, until the run stops."""
        while not self.done and not self._run.stopping:
            await self.record_next()

    async def run(self, recorded: Callable[[], None]) -> None:
        """Record batch after batch until every task is, or the run stops; ``recorded`` after
        each (the tick dispatches what it brought)."""
        while not self.done and not self._run.stopping and not self._run.ended_elsewhere:
            await self.record_next()
            recorded()
