"""Tasks added to a run after it was built: checked at once, written into its session on the
next tick (a task id another unfinished session owns is refused, never overwritten), each with
its definition (``definitions``), which a workstation joining the team run later compares.

In a team, this is how a task joins a running team run: ``Council.submit``, or a joining
workstation's own new tasks when ``council run --add-tasks`` allowed it; the other
workstations take the task up on their next full read (``Scheduler``)."""

from __future__ import annotations

from orchestrator.config.task import TaskConfig
from orchestrator.errors import RunError, VersionConflict
from orchestrator.events.tasks import TaskRejected, TaskSubmitted
from orchestrator.models import ACTIVE_SESSION_STATUSES, TaskState
from orchestrator.scheduler.context import TASKS_OPTION, RunContext
from orchestrator.scheduler.council.members import CouncilMembers
from orchestrator.scheduler.dispatcher import adapter_chain
from orchestrator.scheduler.team.definitions import DEFINITIONS_OPTION, definitions
from orchestrator.state.transactions import RecordWrite, UpdateSession, UpdateTask

__all__ = ["Submissions"]


class Submissions:
    def __init__(self, run: RunContext, members: CouncilMembers) -> None:
        self._run = run
        self._members = members
        self._pending: list[TaskConfig] = []

    def submit(self, task: TaskConfig) -> None:
        """Add ``task`` to the run; ``RunError`` when it cannot be part of it."""
        tasks = self._run.tasks
        if task.id in tasks:
            raise RunError(f"task {task.id!r} is already part of this run")
        unknown = [dep for dep in task.depends_on if dep not in tasks]
        if unknown:
            raise RunError(f"task {task.id!r} depends on unknown tasks: {', '.join(unknown)}")
        adapter_chain(self._run, task)
        tasks[task.id] = task
        self._pending.append(task)

    def pending(self, task: TaskConfig) -> None:
        """A task of this run that its session lacks (a team session joined): written into
        it on the next tick."""
        self._pending.append(task)

    def clear(self) -> None:
        """The session is being created with every task in it: nothing is pending."""
        self._pending.clear()

    async def write_pending(self) -> None:
        """Write the tasks submitted since the last tick into the run's session.

        The new tasks and the session listing them are one transaction: a task record never
        points at a session that does not list it (a crash in between used to leave exactly
        that, and the submission lost), and when another workstation of the team changed the
        session or one of the tasks meanwhile, nothing is written and the batch waits for the
        next tick."""
        run = self._run
        if not self._pending or run.session_id is None:
            return
        store = run.services.store
        session = await store.get_session(run.session_id, metrics=False)
        assert session is not None
        batch = [t for t in self._pending if t.id not in session.task_ids]
        self._pending.clear()
        writes: list[RecordWrite] = []
        for task in list(batch):
            current = await store.get_task_state(task.id)
            if current is not None and current.session_id not in (None, run.session_id):
                owner = await store.get_session(current.session_id, metrics=False)
                if owner is not None and owner.status in ACTIVE_SESSION_STATUSES:
                    # The id belongs to another unfinished run: never overwrite its state.
                    batch.remove(task)
                    del run.tasks[task.id]
                    error = f"task id taken by unfinished session {owner.session_id!r}"
                    await run.events.emit(TaskRejected(task_id=task.id, error=error))
                    continue
            if current is not None and current.session_id == run.session_id:
                continue  # another workstation of the team wrote it a moment ago: keep it
            fresh = TaskState(task_id=task.id, session_id=run.session_id, priority=task.priority)
            expected = current.version if current is not None else 0
            writes.append(UpdateTask(task.id, fresh.model_dump(exclude={"version"}), expected))
        saved = list(session.options.get(TASKS_OPTION, []))
        saved += [task.model_dump(mode="json") for task in batch]
        shapes = dict(session.options.get(DEFINITIONS_OPTION) or {})
        shapes |= definitions(run.services.config, batch)
        options = {**session.options, TASKS_OPTION: saved, DEFINITIONS_OPTION: shapes}
        task_ids = [*session.task_ids, *(t.id for t in batch)]
        session_update = {"task_ids": task_ids, "options": options}
        writes.append(UpdateSession(run.session_id, session_update, session.version))
        try:
            await store.write_many(writes)
        except VersionConflict:
            # Another workstation of the team changed the session or a task meanwhile.
            self._pending.extend(batch)
            return
        # Council candidates need their parents' records, written just now; a crash before
        # they are made is mended by the resume, which makes the missing ones.
        await self._members.prepare(batch, resuming=False)
        await run.events.emit(TaskSubmitted(task_ids=[t.id for t in batch]))
