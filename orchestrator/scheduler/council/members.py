"""The candidates' records in the store: made for a new run, recovered on resume, read for
the comparison, ended when the council task is cancelled or decided.

What happens once a council task is over is ``closing``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestrator.config.task import TaskConfig
from orchestrator.events.tasks import TaskCancelled, TaskCancelTooLate
from orchestrator.models import TERMINAL_TASK_STATUSES, ClaimStatus, TaskState, TaskStatus, utcnow
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.attempts.writes import AttemptWrites
from orchestrator.scheduler.cancel import cancelled_updates
from orchestrator.scheduler.candidates import (
    candidates_of,
    council_summary,
)
from orchestrator.scheduler.context import RunContext
from orchestrator.state.session_rules import recovery_updates
from orchestrator.task_meta import TaskMeta

__all__ = ["CouncilMembers", "Member"]

Member = tuple[TaskConfig, TaskState]


class CouncilMembers:
    def __init__(self, run: RunContext, inflight: InFlight, writes: AttemptWrites) -> None:
        self._run = run
        self._inflight = inflight
        self._writes = writes

    async def prepare(self, tasks: Iterable[TaskConfig], *, resuming: bool) -> None:
        """Give every unfinished council task's candidates a record in this session: fresh
        ones for a new run, recovered ones (left running by a dead orchestrator: back to the
        queue) when resuming."""
        store, now, session_id = self._run.services.store, utcnow(), self._run.session_id
        for task in tasks:
            if not task.council:
                continue
            parent = await store.get_task_state(task.id)
            if parent is None or parent.status in TERMINAL_TASK_STATUSES:
                continue
            for member in candidates_of(task):
                state = await store.get_task_state(member.id)
                if resuming and state is not None and state.session_id == session_id:
                    fix = recovery_updates(state, now, force=True)
                    if fix:
                        await store.update_task_state(member.id, fix)
                    continue
                fresh = TaskState(task_id=member.id, session_id=session_id, priority=task.priority)
                await store.update_task_state(member.id, fresh.model_dump(exclude={"version"}))

    async def add_states(self, tasks: Iterable[TaskConfig], states: dict[str, TaskState]) -> None:
        """Add the candidates of the unfinished council tasks to ``states``."""
        for task in tasks:
            parent = states.get(task.id)
            if not task.council or parent is None or parent.status in TERMINAL_TASK_STATUSES:
                continue
            for member in candidates_of(task):
                state = await self._run.services.store.get_task_state(member.id)
                if state is not None:
                    states[member.id] = state

    async def members(self, task: TaskConfig) -> list[Member]:
        found = []
        for member in candidates_of(task):
            state = await self._run.services.store.get_task_state(member.id)
            if state is not None:
                found.append((member, state))
        return found

    async def cancel(self, task: TaskConfig, step: Attempt | None = None) -> bool:
        """Cancel council task ``task`` and its candidates; True once all of them ended
        (running candidates end when their attempts do)."""
        ended = True
        for member, member_state in await self.members(task):
            running = self._inflight.get(member.id)
            if running is not None:
                running.request_cancel()
                ended = False
            elif member_state.status not in TERMINAL_TASK_STATUSES:
                worktree = TaskMeta.read(member_state.metadata).worktree.session
                await self.end_candidate(member.id, "cancelled on request", worktree)
        store, emit = self._run.services.store, self._run.events.emit
        state = await store.get_task_state(task.id)
        if state is None:
            return ended
        if state.status in TERMINAL_TASK_STATUSES and not (step is not None and step.token):
            if state.status != TaskStatus.CANCELLED:
                await emit(TaskCancelTooLate(task_id=task.id, status=state.status))
            return ended
        meta = TaskMeta.read(state.metadata)
        meta.council.council = await council_summary(store, task, None)
        updates = {**cancelled_updates(state), "metadata": meta.dump()}
        if step is not None and step.token:
            await self._writes.release(step, ClaimStatus.ABANDONED, updates)
        else:
            await store.update_task_state(task.id, updates)
        await emit(TaskCancelled(task_id=task.id))
        return ended

    async def end_candidate(self, task_id: str, why: str, worktree: object) -> None:
        """A candidate that will never be merged ends ``cancelled``; its branch is kept."""
        updates = await self.ended_candidate(task_id, why)
        if updates is None:
            return
        await self._run.services.store.update_task_state(task_id, updates)
        await self.remove_candidate_worktree(worktree)

    async def ended_candidate(self, task_id: str, why: str) -> dict[str, Any] | None:
        """The write that ends candidate ``task_id`` ``cancelled`` (None: it has no record)."""
        state = await self._run.services.store.get_task_state(task_id)
        if state is None:
            return None
        meta = TaskMeta.read(state.metadata)
        meta.worktree.session = None
        return {**cancelled_updates(state, why), "metadata": meta.dump()}

    async def remove_candidate_worktree(self, worktree: object) -> None:
        """The worktree of a candidate that ended (its branch is kept)."""
        if isinstance(worktree, str) and worktree:
            await self._writes.remove_worktree(worktree, f"session {worktree}")
