"""The scheduler's reconcile step, run at the start of every tick before anything is dispatched.

1. **Cancel requests** (``scheduler_cancel``) for this session are carried out: a task running
   here has its attempt cancelled (``Attempt.cancel_requested``; the attempt settles it as
   ``cancelled``), a council task cancels its candidates and its council step, any other
   unfinished task is written ``cancelled`` at once (claim abandoned, kept worktree removed,
   branch kept). A request is dropped once its task has ended; one that came too late (the
   task ended another way) is dropped with a ``task.cancel_too_late`` event.
2. **Heartbeats**: the claims of running attempts are renewed every ``heartbeat_interval``;
   one that cannot be renewed (swept, or taken over) marks the attempt lost and cancels it.
3. **Sweep** (every ``min(heartbeat_interval, stale_threshold / 2)``): claims whose lease
   lapsed are expired; their tasks go back to the queue with a backoff, or fail once they
   used up ``max_retries``; an attempt of ours whose claim lapsed is cancelled and may not
   write again. Another session's tasks are left to their own scheduler. When a swept claim
   was held by another orchestrator, whatever a dead one left running is stopped first
   (``orphans``): its CLIs would otherwise go on beside the next attempt.
4. **Worktrees**: a running attempt whose worktree is gone (deleted by hand, its ``.git``
   file missing) is cancelled at once, CLI stopped, rather than left to fail in a directory
   that no longer exists (or, worse, to go on for an hour and have its edits lost); settling
   puts the task back in the queue without counting a failure, and the next attempt checks
   the branch out again (``recreate_session_worktree``), so the work committed on it and the
   phases recorded complete are kept.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from orchestrator.errors import RecordNotFound, RunError, StaleClaim
from orchestrator.models import TERMINAL_TASK_STATUSES, ClaimStatus, TaskStatus, utcnow
from orchestrator.runner.orphans import stop_orphans
from orchestrator.scheduler.attempt_runner import FAILURES, WORKTREE, Attempt
from orchestrator.scheduler.cancel import cancelled_updates, clear_cancel, pending_cancels
from orchestrator.scheduler.council_round import CouncilLifecycle
from orchestrator.scheduler.queue import NOT_BEFORE
from orchestrator.scheduler.view import TaskView

__all__ = ["ReconcileLifecycle"]


class ReconcileLifecycle(CouncilLifecycle):
    """The reconcile half of ``Scheduler`` (which sets these attributes)."""

    _last_sweep: float
    _view: TaskView | None

    def touch(self, task_id: str) -> None:
        """Someone else may have changed ``task_id``: read it again on the next tick."""
        if self._view is not None:
            self._view.touch(task_id)

    async def _reconcile(self) -> None:
        settings = self.services.config.scheduler
        await self._apply_cancels()
        now = time.monotonic()
        for attempt in list(self.running.values()):
            if (
                attempt.token
                and not attempt.lost
                and now - attempt.renewed >= settings.heartbeat_interval
            ):
                await self._renew(attempt, now)
        if now - self._last_sweep >= min(settings.heartbeat_interval, settings.stale_threshold / 2):
            self._last_sweep = now
            await self._sweep()
        await self._check_worktrees()

    # -- cancel requests ------------------------------------------------------------------

    async def _apply_cancels(self) -> None:
        if self.session_id is None:
            return
        store = self.services.store
        for task_id in await pending_cancels(store, self.session_id):
            self.touch(task_id)  # another process may have written it cancelled already
            task = self.tasks.get(task_id)
            if task is not None and task.council:
                step = self.running.get(task_id)
                if step is not None:
                    self._flag_cancel(step)
                    continue
                ended = await self.cancel_council(task)
            else:
                ended = await self._cancel_unit(task_id)
            if ended:
                await clear_cancel(store, task_id)

    def _flag_cancel(self, attempt: Attempt) -> None:
        attempt.cancel_requested = True
        attempt.cancel.set()

    async def _cancel_unit(self, task_id: str) -> bool:
        """Cancel one task or candidate; True once it has ended."""
        attempt = self.running.get(task_id)
        if attempt is not None:
            if not attempt.cancel_requested:
                self._flag_cancel(attempt)
                await self._emit("task.cancel_requested", {"task_id": task_id})
            return False
        store = self.services.store
        state = await store.get_task_state(task_id)
        if state is None:
            return True
        if state.status in TERMINAL_TASK_STATUSES:
            if state.status != TaskStatus.CANCELLED:
                await self._emit(
                    "task.cancel_too_late", {"task_id": task_id, "status": state.status}
                )
            return True
        meta = dict(state.metadata)
        worktree = meta.pop(WORKTREE, None)
        updates: dict[str, Any] = {**cancelled_updates(state), "metadata": meta}
        if state.claim is not None and state.claim.status == ClaimStatus.ACTIVE:
            updates["claim"] = state.claim.model_copy(
                update={"status": ClaimStatus.ABANDONED, "released_at": utcnow()}
            )
        await store.update_task_state(task_id, updates)
        await self._emit("task.cancelled", {"task_id": task_id, "branch": state.branch})
        if isinstance(worktree, str):
            await self._remove_worktree(worktree)
        return True

    # -- worktrees ------------------------------------------------------------------------

    async def _check_worktrees(self) -> None:
        watched = [
            attempt
            for attempt in self.running.values()
            # Not flagged already, and its CLI work not over (merging needs no worktree).
            if not (attempt.worktree_gone or attempt.slot_free or attempt.session is None)
        ]
        if not watched:
            return
        sessions = [attempt.session for attempt in watched if attempt.session is not None]
        present = await self.services.worktrees.present_all(sessions)  # one hop per tick
        for attempt, session, there in zip(watched, sessions, present, strict=True):
            if there or attempt.slot_free or attempt.worktree_gone:
                continue  # there, or its CLI work ended while we looked
            attempt.worktree_gone = True
            attempt.cancel.set()
            await self._emit(
                "task.worktree_lost",
                {"task_id": attempt.key, "worktree": str(session.path)},
                "warning",
            )

    # -- claims ---------------------------------------------------------------------------

    async def _renew(self, attempt: Attempt, now: float) -> None:
        token = attempt.token
        try:
            await self.services.store.renew_claim(
                attempt.key, token, self.services.config.scheduler.stale_threshold
            )
            attempt.renewed = now
        except (StaleClaim, RecordNotFound):
            if attempt.token != token or attempt.releasing:
                return  # released while we renewed: the attempt settled normally
            attempt.lost = True
            attempt.cancel.set()
            await self._emit("task.claim_lost", {"task_id": attempt.key}, "warning")

    async def stop_orphans(self) -> None:
        """Stop what dead orchestrators left running in this repository (``orphans``);
        ``RunError`` when some of it does not die."""
        layout = await self.services.worktrees.layout()
        await stop_orphans(self.services.store, layout.council)

    async def _sweep(self) -> None:
        store = self.services.store
        swept = await store.sweep_expired_claims()
        if any(claim.holder != self.holder for claim in swept):
            try:
                await self.stop_orphans()
            except RunError as exc:
                await self._emit("cli.orphans_left", {"error": str(exc)}, "warning")
        for claim in swept:
            attempt = self.running.get(claim.task_id)
            if attempt is not None and attempt.token == claim.token:
                attempt.lost = True
                attempt.cancel.set()
            state = await store.get_task_state(claim.task_id)
            if state is None or state.session_id != self.session_id:
                continue  # another run's task: its own scheduler settles it
            if state.status not in (TaskStatus.RUNNING, TaskStatus.MERGING):
                continue
            failures = int(state.metadata.get(FAILURES, 0)) + 1
            error = f"claim of {claim.holder} expired (no heartbeat)"
            meta = {**state.metadata, FAILURES: failures}
            updates: dict[str, Any]
            if failures > self.policy.max_retries:
                reason = f"gave up after {failures} attempts; last error: {error}"
                updates = {"status": TaskStatus.FAILED, "error": reason, "finished_at": utcnow()}
            else:
                delay = self.policy.next_delay(failures)
                meta[NOT_BEFORE] = (utcnow() + timedelta(seconds=delay)).isoformat()
                updates = {"status": TaskStatus.QUEUED, "error": error}
            await store.update_task_state(claim.task_id, {**updates, "metadata": meta})
            await self._emit(
                "task.swept",
                {"task_id": claim.task_id, "holder": claim.holder, "status": updates["status"]},
                "warning",
            )
