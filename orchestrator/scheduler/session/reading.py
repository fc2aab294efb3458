"""The run's reads of its task records, and what it does when they are gone.

``RunReads`` is the scheduler's one way to read the session's tasks while the run ticks:

- ``watching(wake)``: for as long as the run ticks, a ``TaskView`` subscribed to the store (only
  what changed is read again; another workstation's write to one of the run's tasks ends the
  nap at once, ``wake``); an error out of the ticks that came from the whole state being
  deleted says so (``disappeared``), not which file;
- ``states(full=)``: the session's tasks, but those whose batch is not written yet
  (``recording``), with the candidates of its unfinished council tasks;
- ``take_changes()``: the tasks whose record ``states`` may give otherwise than it did when
  last asked (read again, or their batch now ready), None for any (``view.TaskView``);
- ``with_records(states)``: every task of the run has a record, or is given one: the view may
  lag (read again); the whole store gone (no session record, or not the data the run started
  on) stops the run with a way forward; a task record moved away alone (as a damaged record's
  error advises) is started afresh, queued (``task.record_recreated``). A record that is
  there but in another session is never taken back: a later run took the task over (a
  teammate's new run of the team, once this session ended; a `council run` after it). When
  this session has ended (another workstation of the team finished it), this workstation
  leaves it (``RunContext.ended_elsewhere``); else the run stops, naming the session that
  has the tasks now.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from orchestrator.config.task import TaskConfig
from orchestrator.errors import CouncilError, StateError
from orchestrator.events.tasks import TaskRecordRecreated
from orchestrator.models import TERMINAL_SESSION_STATUSES, TaskState
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.council.members import CouncilMembers
from orchestrator.scheduler.session.recording import TaskRecorder
from orchestrator.scheduler.view import TaskView
from orchestrator.state.protocol import StateStore

__all__ = ["RunReads"]


class RunReads:
    def __init__(self, run: RunContext, recorder: TaskRecorder, members: CouncilMembers) -> None:
        self._run = run
        self._recorder = recorder
        self._members = members
        self._view: TaskView | None = None
        self._lost_reported = False  # the state was found gone and said so already
        self._identity: str | None = None  # the store's data this run started on
        self._councils: list[TaskConfig] = []  # the run's council tasks when it had
        self._councils_of = (0, -1)  # ... this many tasks (and this mapping of them)

    @asynccontextmanager
    async def watching(self, wake: Callable[[], None]) -> AsyncIterator[None]:
        run, store = self._run, self._run.services.store
        assert run.session_id is not None
        self._identity = await store.identity()
        self._view = view = TaskView(store, run.session_id, on_remote=wake)
        store.subscribe(view.on_event)
        run.wrote = view.wrote  # this run's writes, as their writers hold them
        try:
            yield
        except Exception as exc:
            # A write that failed because the whole state was deleted says so, not which file.
            if not self._lost_reported and await self._gone():
                raise _disappeared(run.session_id, []) from exc
            raise
        finally:
            store.unsubscribe(view.on_event)
            run.wrote = _nothing
            self._view = None

    def touch(self, task_id: str) -> None:
        """Someone else may have changed ``task_id``: read it again on the next tick."""
        if self._view is not None:
            self._view.touch(task_id)

    def take_changes(self) -> set[str] | None:
        """The tasks ``states`` may give otherwise than when this was last called: records read
        again, batches become ready; None: any of them (no view, or it read everything)."""
        readied = self._recorder.take_readied()
        if self._view is None:
            return None
        changed = self._view.take_changes()
        return None if changed is None else changed | readied

    def recorded(self, task_id: str) -> bool:
        """``task_id``'s batch is written and ready (``recording``)."""
        return task_id not in self._recorder.pending

    async def states(self, *, full: bool = False) -> dict[str, TaskState]:
        """The session's tasks (``TaskView``: only what changed is read again), and the
        candidates of its unfinished council tasks."""
        run = self._run
        assert run.session_id is not None
        if self._view is None:
            tasks = await run.services.store.list_tasks(run.session_id)
            states = {task.task_id: task for task in tasks}
        else:
            states = await self._view.current(full=full)
        pending = self._recorder.pending
        if pending:  # recorded, but not ready to dispatch until their batch is (``recording``)
            for task_id in pending & states.keys():  # ``states`` is a copy of its own
                del states[task_id]
        await self._members.add_states(self._council_tasks(), states)
        return states

    def _council_tasks(self) -> list[TaskConfig]:
        """The run's council tasks (looked for again only when the run's tasks change)."""
        tasks = self._run.tasks
        if self._councils_of != (id(tasks), len(tasks)):
            self._councils = [task for task in tasks.values() if task.council]
            self._councils_of = (id(tasks), len(tasks))
        return self._councils

    async def with_records(self, states: dict[str, TaskState]) -> dict[str, TaskState]:
        """``states``, or read again when some task of the run has no record (module doc)."""
        run = self._run
        absent = run.tasks.keys() - states.keys()  # a set difference: no loop over the tasks
        if not absent or absent <= self._recorder.pending:
            return states
        assert run.session_id is not None
        states = await self.states(full=True)
        missing = [t for t in run.tasks if t not in states and self.recorded(t)]
        if not missing:
            return states
        if await self._gone():
            self._lost_reported = True
            raise _disappeared(run.session_id, missing)
        store = run.services.store
        taken = await _taken(store, run.session_id, missing)
        if taken:
            session = await store.get_session(run.session_id, metrics=False)
            if session is not None and session.status in TERMINAL_SESSION_STATUSES:
                run.ended_elsewhere = True  # the team's session ended: nothing left here
                return states
            raise _taken_over(run.session_id, taken)
        for task_id in missing:
            fresh = TaskState(task_id=task_id, session_id=run.session_id).model_dump()
            await store.update_task_state(task_id, fresh)
            await run.events.emit(
                TaskRecordRecreated(task_id=task_id, reason="its record was missing")
            )
        return await self.states(full=True)

    async def _gone(self) -> bool:
        """The run's state was deleted: its session has no record any more, or the store's
        data is not the data the run started on (a deletion racing the run's own writes can
        leave a session record behind, written back by a write under way)."""
        assert self._run.session_id is not None
        store = self._run.services.store
        try:
            if await store.get_session(self._run.session_id, metrics=False) is None:
                return True
            return self._identity is not None and await store.identity() != self._identity
        except CouncilError:
            return False


async def _taken(store: StateStore, session_id: str, missing: list[str]) -> dict[str, str]:
    """Of the ``missing`` tasks, those recorded in another session: task id -> session."""
    taken: dict[str, str] = {}
    for task_id in missing:
        record = await store.get_task_state(task_id)
        other = record.session_id if record is not None else None
        if other is not None and other != session_id:
            taken[task_id] = other
    return taken


def _taken_over(session_id: str, taken: dict[str, str]) -> StateError:
    where = ", ".join(f"{task} (session {other})" for task, other in sorted(taken.items()))
    return StateError(
        f"session {session_id}: its tasks {where} are recorded in another session now (a later "
        "run of this repository took them over): this run stopped without touching them. "
        "`council status` shows the run that has them"
    )


def _disappeared(session_id: str, tasks: list[str]) -> StateError:
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


def _nothing(state: TaskState) -> None:
    """No view to tell of a write (``RunContext.wrote`` outside ``watching``)."""
