"""How a run gets its session: a new one recorded, a team's joined, an interrupted one resumed.

``Opening`` is the scheduler's part for the run's start:

- ``begin()``: the session on record with every task listed (their records follow in batches,
  ``recording``); in a team, the team's session joined instead when another workstation runs
  it (``team.join``);
- ``join(session_id)``: work in another workstation's session on the team's definition of each
  task (``team.definitions``), this config's extra tasks added when the user allowed it, and
  the tasks its creator has not recorded yet recorded here too (``recording``);
- ``resume(session_id)``: an interrupted or killed session taken up where it stood
  (``resume``): its unrecorded tasks recorded, claims recovered (in a team only lapsed ones),
  landed work recognised on the base, worktrees left behind retired;
- ``take_up_added(states)``: tasks another workstation added to the team's session since this
  one read it become this run's too (or are waited for, ``foreign``);
- ``others_in(session_id)``: another workstation still works in the session.
"""

from __future__ import annotations

from orchestrator.config.origin import SESSION_KEY, origin_of
from orchestrator.config.task import TaskConfig
from orchestrator.errors import StateError
from orchestrator.events.runs import RunJoined, RunResumed, RunStarted
from orchestrator.models import TERMINAL_TASK_STATUSES, TaskState
from orchestrator.process import procid
from orchestrator.safety.crashpoints import crash_point
from orchestrator.scheduler.attempts.adapter_parks import AdapterParks
from orchestrator.scheduler.attempts.writes import AttemptWrites
from orchestrator.scheduler.context import ORCHESTRATOR, TASKS_OPTION, TEAM, RunContext
from orchestrator.scheduler.council.members import CouncilMembers
from orchestrator.scheduler.dispatcher import adapter_chain
from orchestrator.scheduler.session.liveness import refuse_if_alive
from orchestrator.scheduler.session.recording import RECORDING, TaskRecorder
from orchestrator.scheduler.session.resume import recover, retire_left_worktrees, skip_landed
from orchestrator.scheduler.submissions import Submissions
from orchestrator.scheduler.sweeper import Sweeper
from orchestrator.scheduler.team.dead_holders import release_dead_holders
from orchestrator.scheduler.team.definitions import (
    DEFINITIONS_OPTION,
    JoinChoice,
    definitions,
    plan_join,
)
from orchestrator.scheduler.team.join import join_team_run, point_team_run
from orchestrator.scheduler.team.presence import alive_workstations

__all__ = ["Opening"]


class Opening:
    def __init__(
        self,
        run: RunContext,
        join_choice: JoinChoice,
        *,
        submissions: Submissions,
        recorder: TaskRecorder,
        members: CouncilMembers,
        sweeper: Sweeper,
        parks: AdapterParks,
        writes: AttemptWrites,
    ) -> None:
        self._run = run
        self._services = run.services
        self._join_choice = join_choice
        self._submissions = submissions
        self._recorder = recorder
        self._members = members
        self._sweeper = sweeper
        self._parks = parks
        self._writes = writes
        # A team session's tasks this workstation waits for without running them (their
        # definition is not this config's to run: ``definitions``), and the ids of the
        # session's records found not to be tasks of it (council candidates).
        self.foreign: set[str] = set()
        self._not_tasks: set[str] = set()

    async def begin(self) -> str:
        """The session on record, none of its tasks yet (``recording`` writes them)."""
        run = self._run
        if run.session_id is not None:
            return run.session_id
        for task in run.tasks.values():
            adapter_chain(run, task)  # fails early, before anything is written
        await self._sweeper.sweep_scratch()  # what killed runs left in the temporary directory
        store, team = self._services.store, self._services.team
        wanted: str | None = None
        if team is not None:
            joined = await join_team_run(store, team, self.others_in)
            if not joined.created:
                return await self.join(joined.session_id)
            wanted = joined.session_id
        # The session lists every task, with its config, from the start (what `council
        # status` and `council resume` read); their records follow in batches (``recording``).
        # Each task's resolved definition is kept for the team's joiners only (``definitions``;
        # without one a joiner resolves the stored config): 10,000 of them cost seconds.
        shapes = definitions(self._services.config, run.tasks.values()) if team else None
        session = await store.create_session(
            {
                TASKS_OPTION: [t.model_dump(mode="json") for t in run.tasks.values()],
                **({DEFINITIONS_OPTION: shapes} if shapes is not None else {}),
            },
            [],
            session_id=wanted,
            listed=list(run.tasks),
            # With the session, not a write after it: a session listing 10,000 tasks with
            # their configs is megabytes to read and write again.
            metadata={
                ORCHESTRATOR: procid.current().as_dict(),
                **_origin_entry(run),
                **({TEAM: team.run_key} if team is not None else {}),
                **({RECORDING: True} if run.tasks else {}),
            },
        )
        run.session_id = session.session_id
        self._submissions.clear()  # submitted before the start: already in the session
        self._recorder.plan(run.tasks.values(), resuming=False)
        crash_point("start.session_recorded", run.session_id)
        await run.events.emit(RunStarted(session_id=run.session_id, holder=run.holder))
        return run.session_id

    async def join(self, session_id: str) -> str:
        """Work in another workstation's session, on the team's definition of each task
        (``definitions.plan_join``: a config whose tasks differ is refused here, before
        anything is written, unless the user allowed the difference); this config's tasks the
        session lacks are added to it, like submitted ones, when the user asked for that."""
        run, store, team = self._run, self._services.store, self._services.team
        assert team is not None
        session = await store.get_session(session_id, metrics=False)
        if session is None:
            raise StateError(f"team session {session_id!r} disappeared while joining it")
        plan = plan_join(self._services.config, run.tasks, session, team.run_key, self._join_choice)
        for task in plan.tasks.values():
            adapter_chain(run, task)  # fails early, before anything is written
        run.tasks = plan.tasks
        self.foreign = plan.foreign
        run.session_id = session_id
        self._submissions.clear()
        for task in plan.added:
            self._submissions.pending(task)
        await run.events.emit(
            RunJoined(session_id=session_id, holder=run.holder, tasks=len(session.task_ids))
        )
        # The tasks the session lists without a record yet (its creator records them in
        # batches): recorded here too, beside it (``recording``), never taken for lost.
        recorded = {state.task_id for state in await store.list_tasks(session_id)}
        listed = set(session.task_ids)
        unrecorded = [t for t in run.tasks.values() if t.id in listed and t.id not in recorded]
        self._recorder.plan(unrecorded, resuming=True)
        await skip_landed(run, (t for t in run.tasks.values() if t.id in recorded))
        await self._members.prepare(
            [t for t in run.tasks.values() if t.id in recorded], resuming=True
        )
        return session_id

    async def others_in(self, session_id: str) -> bool:
        """Another workstation still works in ``session_id``."""
        team = self._services.team
        if team is None:
            return False
        stale = self._services.config.scheduler.stale_threshold
        store = self._services.store
        return bool(await alive_workstations(store, session_id, stale, but=team.workstation))

    async def resume(self, session_id: str) -> bool:
        """Take session ``session_id`` up where it stood (``resume``), or
        join it when teammates still run it; False when the run was stopped meanwhile (the
        session stays as it was, resumable), else the run's loop goes on."""
        run, store, team = self._run, self._services.store, self._services.team
        if team is not None and await self.others_in(session_id):
            # Teammates still run it: this workstation joins them, nothing to recover.
            await self.join(session_id)
            return True
        if team is None:
            await refuse_if_alive(store, session_id)
        added: list[TaskConfig] = []
        if team is not None:
            # A clone resuming the team's session works on the team's definitions, as one
            # joining it does: refused here, before anything is written, when they differ.
            session = await store.get_session(session_id, metrics=False)
            if session is not None:
                plan = plan_join(
                    self._services.config, run.tasks, session, team.run_key, self._join_choice
                )
                run.tasks, self.foreign, added = plan.tasks, plan.foreign, plan.added
        await self._sweeper.stop_orphans()
        if not await self._record_unrecorded(session_id):
            return False  # stopped while recording: the session stays as it was, resumable
        # In a team only lapsed claims go back to the queue: a teammate that is merely quiet
        # (not in presence right now) keeps what it still holds until its lease says otherwise;
        # but one of this host known dead gives its claims back at once (``team.dead_holders``).
        if team is not None:
            await release_dead_holders(run, session_id)
        snapshot = await recover(run, self._parks, session_id, force=team is None)
        for task_id in self.foreign:
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
        metadata = {
            **snapshot.session.metadata,
            ORCHESTRATOR: procid.current().as_dict(),
            **_origin_entry(run),  # an edited config goes on with the run: its digest now
        }
        await store.update_session(session_id, {"metadata": metadata}, metrics=False)
        await run.events.emit(RunResumed(session_id=session_id, holder=run.holder))
        return True

    async def _record_unrecorded(self, session_id: str) -> bool:
        """Record the tasks session ``session_id`` lists without a record yet (a run stopped
        while recording them, ``recording``), before its recovery would start each afresh
        one by one; False when the run was stopped meanwhile."""
        store = self._services.store
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

    async def take_up_added(self, states: dict[str, TaskState]) -> None:
        """Tasks another workstation added to the team session since this one read it
        become this run's too: run here as the team defines them, or, when this config cannot
        run them so, waited for (``definitions``). Either way this workstation's run ends only
        once they have, and its report counts them like any other task of the team."""
        run, team = self._run, self._services.team
        if team is None or run.session_id is None:
            return
        unknown = states.keys() - run.tasks.keys() - self.foreign - self._not_tasks
        if not unknown:
            return
        session = await self._services.store.get_session(run.session_id, metrics=False)
        if session is None:
            return  # the state is gone: the tick's own checks say so
        plan = plan_join(self._services.config, {}, session, team.run_key, JoinChoice())
        added = [task for task_id, task in plan.tasks.items() if task_id not in run.tasks]
        run.tasks.update((task.id, task) for task in added)
        self.foreign |= plan.foreign - run.tasks.keys()
        self._not_tasks |= unknown - set(session.task_ids)
        if added:
            await self._members.prepare(added, resuming=True)


def _origin_entry(run: RunContext) -> dict[str, dict[str, str]]:
    """The session's record of the config file that started it (``config.origin``), so a
    command given that FILE acts on this run; nothing for a config read from no file, nor in
    a team: its session is every workstation's, where one's path names nothing (and would
    show the team where a teammate keeps files); its commands find it by the team's run."""
    origin = origin_of(run.services.config)
    if origin is None or run.services.team is not None:
        return {}
    return {SESSION_KEY: origin.as_dict()}
