"""The store writes an attempt makes, all fenced by its claim's token, and what goes with them.

A write after the claim was swept raises ``StaleClaim`` and moves the attempt to ``LOST``:
nothing more is written for it (the sweeper owns the task now). The attempt's usage (tokens,
cost) goes into the next write of the task exactly once (``with_usage``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from orchestrator.adapter import Usage
from orchestrator.errors import CouncilError, StaleClaim, WorkspaceError
from orchestrator.events.tasks import TaskCancelled, TaskRequeued
from orchestrator.git.publish import publish_rescue
from orchestrator.models import ClaimStatus, TaskState, TaskStatus
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.lifecycle import Stage
from orchestrator.scheduler.attempts.session_context import SessionContextFeed
from orchestrator.scheduler.cancel import cancelled_updates
from orchestrator.scheduler.context import RunContext
from orchestrator.state.claim_rules import ReleaseFirst
from orchestrator.state.deletions import Deletion
from orchestrator.task_meta import TaskMeta
from orchestrator.workflow.task_run import WorkflowResult
from orchestrator.worktrees.models import SessionWorktree

__all__ = ["AttemptWrites"]

log = logging.getLogger(__name__)

R = TypeVar("R")


class AttemptWrites:
    def __init__(self, run: RunContext) -> None:
        self._run = run
        self._services = run.services
        self._events = run.events
        self.contexts = SessionContextFeed(run.services)  # what the other sessions' prompts name
        # Session -> its context's deletion, left for a store call of the landing's own
        # (``release_locks(context_later=True)``).
        self._left: dict[str, Deletion] = {}

    def where(self, attempt: Attempt) -> dict[str, Any]:
        """The attempt's branch and worktree, written with every write that settles it (the
        workflow's phase records carry them too; the claim write does not)."""
        if attempt.session is None:
            return {}
        return {"branch": attempt.session.branch, "worktree": str(attempt.session.path)}

    async def write(self, attempt: Attempt, updates: dict[str, Any]) -> TaskState:
        try:
            state = await self._services.store.update_task_state(
                attempt.key, {**self.where(attempt), **updates}, fencing_token=attempt.token
            )
        except StaleClaim:
            attempt.lose()
            raise
        attempt.written = state
        self._run.wrote(state)  # the tick's view takes it as read
        return state

    async def release(
        self,
        attempt: Attempt,
        status: ClaimStatus,
        updates: dict[str, Any] | Callable[[TaskState], dict[str, Any]],
    ) -> None:
        """Release the attempt's claim as ``status``, writing ``updates`` with it (or what they
        make of the task as the store finds it under the claim's lock: no read of its own)."""
        attempt.move(Stage.RELEASING)
        fields = self._fields(attempt, updates)
        try:
            state = await self._services.store.release_claim(
                attempt.key, attempt.token, status, fields
            )
        except StaleClaim:
            attempt.life.release_failed()
            attempt.lose()  # swept meanwhile: the sweeper has settled the task
            return
        except BaseException:
            attempt.life.release_failed()  # not given back: it may be released again
            raise
        self._released(attempt, state)

    async def release_first(
        self,
        attempt: Attempt,
        status: ClaimStatus,
        updates: dict[str, Any] | Callable[[TaskState], dict[str, Any]],
        then: Callable[[], None],
        call: Callable[[ReleaseFirst | None], Awaitable[R]],
    ) -> R:
        """``release``, then ``then``, made first in the store call ``call`` makes with the
        ``ReleaseFirst`` it is given (``claim_rules.ReleaseFirst``; the worktree's removal). A
        release refused as stale loses the attempt, and ``call`` is made again without one;
        a ``call`` that ends before the release was written is followed by ``release`` and
        ``then`` here, so the claim is let go either way."""
        attempt.move(Stage.RELEASING)
        done: list[TaskState] = []
        first = ReleaseFirst(
            attempt.key, attempt.token, status, self._fields(attempt, updates), done.append, then
        )
        try:
            return await call(first)
        except StaleClaim:
            if done:
                raise
            attempt.life.release_failed()
            attempt.lose()  # swept meanwhile: the sweeper has settled the task
            return await call(None)
        finally:
            if done:
                self._released(attempt, done[0])
            elif not attempt.lost:
                # The call ended (raised, or was cancelled) before the release was written:
                # back from releasing, then released here (``release`` moves it again).
                attempt.life.release_failed()
                await self.release(attempt, status, updates)
                then()

    def _fields(
        self,
        attempt: Attempt,
        updates: dict[str, Any] | Callable[[TaskState], dict[str, Any]],
    ) -> dict[str, Any] | Callable[[TaskState], dict[str, Any]]:
        """``updates`` with the attempt's branch and worktree (``where``)."""
        where = self.where(attempt)
        if not callable(updates):
            return {**where, **updates}
        made = updates

        def fields(current: TaskState) -> dict[str, Any]:
            return {**where, **made(current)}

        return fields

    def _released(self, attempt: Attempt, state: TaskState) -> None:
        attempt.token = 0
        attempt.move(Stage.ENDED)
        self._run.wrote(state)  # the tick's view takes it as read

    async def requeue(
        self,
        attempt: Attempt,
        why: str,
        *,
        held: str | None = None,
        held_until: datetime | None = None,
    ) -> bool:
        """Give the task back to the queue as it was, nothing counted: not a failure, and not
        an attempt either (the claim counted one; a stop, files another task holds, or a
        call the spend gate held, is no attempt at the work); ``held``: the budget or quota it
        waits for (``held_until``: the quota's reset), kept in its record. False, for callers."""
        if attempt.token and not attempt.lost:
            updates: dict[str, Any] = {"status": TaskStatus.QUEUED, "current_phase": None}
            if attempt.number > 0:
                updates["attempt"] = attempt.number - 1
            if held is not None:
                state = await self._services.store.get_task_state(attempt.key)
                meta = TaskMeta.read(state.metadata if state is not None else {})
                meta.hold.held = held
                if held_until is not None:
                    meta.hold.held_until = held_until
                updates["metadata"] = self.with_usage(attempt, meta.dump())
            await self.release(attempt, ClaimStatus.ABANDONED, updates)
            await self._events.emit(TaskRequeued(task_id=attempt.key, reason=why))
        return False

    async def cancelled(self, attempt: Attempt) -> None:
        """End the task ``cancelled`` on request: claim abandoned, the worktree removed (its
        work is committed; the branch, which the base lacks, is kept)."""
        state = await self._services.store.get_task_state(attempt.key)
        if state is None:
            return
        state = state.model_copy(update=self.where(attempt))  # the branch the work is kept on
        meta = TaskMeta.read(state.metadata)
        meta.worktree.session = None
        updates = {**cancelled_updates(state), "metadata": meta.dump()}
        await self.release(attempt, ClaimStatus.ABANDONED, updates)
        await self._events.emit(TaskCancelled(task_id=attempt.key, branch=state.branch))
        if attempt.group is None:
            await self.release_locks(attempt)
        await self.retire_worktree(attempt)

    async def release_locks(self, attempt: Attempt, *, context_later: bool = False) -> None:
        """Release the attempt's locks, its session context with them. ``context_later``: the
        context's deletion is left (``left``) for the caller's next store call (the worktree
        removal's, ``Lander``), made by ``forget_left``, or by this call's next one (the
        attempt's end) should the caller not get that far."""
        if attempt.session is None:
            return
        session = attempt.session.session_id
        # Once is enough: after its settling step released them, an attempt takes no more.
        if not attempt.locks_released:
            await self._services.locks.release_all_session_locks(session)
            attempt.locks_released = True
            if not context_later:
                await self.contexts.ended(session)
                return
            deletion = self.contexts.ending(session)
            if deletion is not None:
                self._left[session] = deletion
            return
        await self.forget_left(attempt)

    def left(self, attempt: Attempt) -> list[Deletion]:
        """The records of the attempt's end left to delete (``release_locks``), still kept
        here until ``forgotten`` says a store call of the caller's deleted them."""
        if attempt.session is None:
            return []
        found = self._left.get(attempt.session.session_id)
        return [] if found is None else [found]

    def forgotten(self, attempt: Attempt) -> None:
        """What ``left`` gave was deleted by the caller."""
        if attempt.session is not None:
            self._left.pop(attempt.session.session_id, None)

    async def forget_left(self, attempt: Attempt) -> None:
        """Delete the records of the attempt's end left to delete, if any (one store call)."""
        left = self.left(attempt)
        if left:
            await self._services.store.delete_records(left)
            self.forgotten(attempt)

    async def retire_worktree(self, attempt: Attempt) -> None:
        if attempt.session is not None:
            await self.remove_worktree(attempt.session, attempt.key)

    async def remove_worktree(self, session: SessionWorktree | str, whose: str) -> None:
        """Remove a worktree the scheduler is done with; its branch keeps the work."""
        try:
            removed = await self._services.worktrees.remove_session_worktree(session)
        except WorkspaceError as exc:  # the branch keeps the work either way
            log.warning("could not remove the worktree of %s: %s", whose, exc)
            return
        team = self._services.team
        if team is not None and removed.rescue_commit is not None:
            # Work saved only at the removal: on the team's remote too, for whoever goes on.
            merges = self._services.merges
            try:
                common = (await self._services.worktrees.layout()).common_dir
                gate = merges.lending.push_gate(team.remote, common)  # no secret leaves unchecked
                await publish_rescue(merges.git, team.remote, removed.session_id, gate.check)
            except CouncilError as exc:
                log.warning("could not publish the rescue ref of %s: %s", whose, exc)

    async def add_usage(self, attempt: Attempt, result: WorkflowResult) -> None:
        """Add the attempt's usage to the task's total (a write of its own)."""
        if result.usage is None:
            return
        state = await self._services.store.get_task_state(attempt.key)
        if state is None:
            return
        attempt.usage = result.usage
        await self.write(attempt, {"metadata": self.with_usage(attempt, state.metadata)})

    @staticmethod
    def with_usage(attempt: Attempt, metadata: dict[str, Any]) -> dict[str, Any]:
        """``metadata`` with ``attempt.usage`` added to the task's total; the usage is then
        spent (the caller writes it), so it is never counted twice."""
        usage, attempt.usage = attempt.usage, None
        return added_usage(metadata, usage)


def added_usage(metadata: dict[str, Any], usage: Usage | None) -> dict[str, Any]:
    """``metadata`` with ``usage`` added to the task's total (pure: for a write the store may
    make again, ``ReleaseUpdates``)."""
    if usage is None:
        return dict(metadata)
    meta = TaskMeta.read(metadata)
    total = dict(meta.retry.usage or {})
    for name, value in usage.model_dump().items():
        if value is not None:
            total[name] = (total.get(name) or 0) + value
    meta.retry.usage = total
    return meta.dump()
