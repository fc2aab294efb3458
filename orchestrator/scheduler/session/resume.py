"""Taking a session back up after its orchestrator stopped or died.

``council resume`` refuses while the orchestrator recorded as running the session (or on a live
claim) is alive (``liveness``), even while it holds no claim (waiting for a rate limit to lift);
stops the CLIs a dead orchestrator left running (``runner.orphans``: they lead process groups of
their own, so its SIGKILL did not reach them) and waits until they are gone; then
``recover_session(force=True)`` requeues what it left running or merging (or
``waiting_for_checkout``: it lands now if the checkout was cleared, else waits again), and the
parks it recorded are taken back. The workflow skips phases recorded complete, and the merge queue
answers ``already_merged`` for work already on the base, so nothing is done or merged twice; a task
whose merge landed but was never recorded is marked done from its ``Council-Task`` trailer
(``skip_landed``, as a new run does too). Worktrees the dead orchestrator made for this session and
would have removed are removed, under the usual safety rules (work committed, tip kept by a rescue
ref unless the base has it): those of tasks that are done, and those no task names any more (made
just before the orchestrator died, or let go of just before it could remove them).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from orchestrator.config.task import TaskConfig
from orchestrator.events.tasks import TaskAlreadyMerged
from orchestrator.models import (
    TERMINAL_TASK_STATUSES,
    ClaimStatus,
    SessionSnapshot,
    TaskState,
    TaskStatus,
    utcnow,
)
from orchestrator.scheduler.attempts.adapter_parks import AdapterParks
from orchestrator.scheduler.attempts.writes import AttemptWrites
from orchestrator.scheduler.context import TASKS_OPTION, RunContext
from orchestrator.state.protocol import StateStore
from orchestrator.task_meta import TaskMeta

__all__ = ["recover", "retire_left_worktrees", "skip_landed"]


async def recover(
    run: RunContext, parks: AdapterParks, session_id: str, *, force: bool = True
) -> SessionSnapshot:
    """Recover session ``session_id`` in the store and make it this run's: what it left
    running or merging goes back to the queue (with ``force=False`` only behind a lapsed
    claim), its parks hold again, its tasks are rebuilt from the configs it saved."""
    store = run.services.store
    solo = run.services.team is None
    before = await store.get_session(session_id) if solo else None
    stopped = {t.task_id: t.updated_at for t in await store.list_tasks(session_id)} if solo else {}
    snapshot = await store.recover_session(session_id, force=force)
    if before is not None:  # a team's run did not stand still: others worked on
        await _not_counting_the_pause(store, snapshot.tasks, before.updated_at, stopped)
    for task in snapshot.tasks:
        if task.status in (TaskStatus.MERGING, TaskStatus.WAITING_FOR_CHECKOUT):
            await store.update_task_state(task.task_id, _abandoned(task, TaskStatus.QUEUED))
        if task.status == TaskStatus.PARKED:
            parks.restore(task)
    for raw in snapshot.session.options.get(TASKS_OPTION, []):
        saved = TaskConfig.model_validate(raw)
        run.tasks.setdefault(saved.id, saved)
    run.tasks = {k: v for k, v in run.tasks.items() if k in snapshot.session.task_ids}
    run.session_id = session_id
    return snapshot


async def _not_counting_the_pause(
    store: StateStore,
    tasks: Iterable[TaskState],
    session_stopped: datetime,
    stopped: dict[str, datetime],
) -> None:
    """A task the stopped run had started and not finished has its start moved on by the
    time the run stood still (from its last write, the task's or the session's, to now), so
    its time counts the work, not the pause between the stop and this resume."""
    now = utcnow()
    for task in tasks:
        if task.status in TERMINAL_TASK_STATUSES or task.started_at is None:
            continue
        last = max(session_stopped, stopped.get(task.task_id, session_stopped))
        pause = now - last
        if pause.total_seconds() <= 0 or task.started_at > last:
            continue
        await store.update_task_state(task.task_id, {"started_at": task.started_at + pause})


async def skip_landed(run: RunContext, tasks: Iterable[TaskConfig]) -> None:
    """Tasks whose work an earlier run already merged (their ``Council-Task`` trailer is on
    the base) are done from the start: running them again could only merge them twice. Each keeps
    who landed it (``_who_landed``)."""
    store, merges = run.services.store, run.services.merges
    pending = list(tasks)
    landed = await merges.landed_commits(task.id for task in pending)
    for task in pending:
        commit = landed.get(task.id)
        if commit is None:
            continue
        now = utcnow()
        updates: dict[str, Any] = {"started_at": now, "finished_at": now}
        updates |= await _who_landed(store, task.id, commit)
        await store.update_task_state(
            task.id,
            {**updates, "status": TaskStatus.DONE, "merged_commit": commit, "error": None},
        )
        await run.events.emit(TaskAlreadyMerged(task_id=task.id, commit=commit))


async def retire_left_worktrees(run: RunContext, writes: AttemptWrites, since: datetime) -> None:
    """Remove the worktrees made since ``since`` for this session's tasks that a crash
    left behind (see the module doc). A council task's candidates are its own business."""
    assert run.session_id is not None
    services = run.services
    states = {s.task_id: s for s in await services.store.list_tasks(run.session_id)}
    for worktree in (await services.worktrees.sessions()).values():
        task, state = run.tasks.get(worktree.task_id), states.get(worktree.task_id)
        if task is None or task.council or state is None or worktree.created_at < since:
            continue
        named = TaskMeta.read(state.metadata).worktree.session == worktree.session_id
        if state.status == TaskStatus.DONE or not named:
            session_id = worktree.session_id
            await writes.remove_worktree(session_id, f"session {session_id}")


async def _who_landed(store: StateStore, task_id: str, commit: str) -> dict[str, Any]:
    """Who did the work that landed as ``commit`` and when, from the task's earlier records
    (a new session starts each task afresh): a run with nothing left to do still says which
    adapter landed each task from which branch."""
    for earlier in await store.task_history(task_id):
        if earlier.merged_commit == commit and earlier.adapter is not None:
            return {
                "adapter": earlier.adapter,
                "branch": earlier.branch,
                "attempt": earlier.attempt,
                "started_at": earlier.started_at,
                "finished_at": earlier.finished_at,
            }
    return {}


def _abandoned(task: TaskState, status: TaskStatus) -> dict[str, Any]:
    updates: dict[str, Any] = {"status": status, "current_phase": None}
    if task.claim is not None and task.claim.status == ClaimStatus.ACTIVE:
        updates["claim"] = task.claim.model_copy(
            update={"status": ClaimStatus.ABANDONED, "released_at": utcnow()}
        )
    return updates
