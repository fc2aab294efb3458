"""The reconcile step, run at the start of every tick before anything is dispatched.

1. **Cancel requests** (``cancel``) for this session are carried out: a task running here has
   its attempt cancelled (``Attempt.request_cancel``; the attempt settles it as
   ``cancelled``), a council task cancels its candidates and its council step, any other
   unfinished task is written ``cancelled`` at once (claim abandoned, kept worktree removed,
   branch kept). A request is dropped once its task has ended; one that came too late (the
   task ended another way) is dropped with a ``task.cancel_too_late`` event.
2. **Heartbeats**: the claims of running attempts are renewed every ``heartbeat_interval``;
   one that cannot be renewed (swept, or taken over) marks the attempt lost and cancels it.
   One that could not be renewed at all for two thirds of ``stale_threshold`` (the store
   unreachable) fences itself the same way, measured on this machine's monotonic clock.
   A workstation that was paused (stopped, or asleep: ``pause``) says so first
   (``workstation.paused``) and renews its claims at once, so a pause is never blamed on
   the store.
3. **Sweep** (``sweeper``, every ``min(heartbeat_interval, stale_threshold / 2)``).
4. **Worktrees**: a running attempt whose worktree is gone (deleted by hand, its ``.git``
   file missing) is cancelled at once, CLI stopped, rather than left to fail in a directory
   that no longer exists (or, worse, to go on for an hour and have its edits lost); settling
   puts the task back in the queue without counting a failure, and the next attempt checks
   the branch out again (``recreate_session_worktree``), so the work committed on it and the
   phases recorded complete are kept.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from orchestrator.errors import RecordNotFound, StaleClaim, StoreUnavailable
from orchestrator.event_text import sentence
from orchestrator.events.runs import WorkstationPaused
from orchestrator.events.tasks import (
    TaskCancelled,
    TaskCancelRequested,
    TaskCancelTooLate,
    TaskClaimLost,
    TaskSelfFenced,
    TaskWorktreeLost,
)
from orchestrator.models import TERMINAL_TASK_STATUSES, ClaimStatus, TaskStatus, utcnow
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.attempts.lifecycle import LIVE
from orchestrator.scheduler.attempts.writes import AttemptWrites
from orchestrator.scheduler.cancel import cancelled_updates, clear_cancel, pending_cancels
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.council.members import CouncilMembers
from orchestrator.scheduler.pause import PauseWatch
from orchestrator.scheduler.sweeper import Sweeper
from orchestrator.task_meta import TaskMeta

__all__ = ["SELF_FENCE", "Reconciler"]

log = logging.getLogger(__name__)

_PAUSE_AT_LEAST = 2.0  # seconds: a shorter gap is never called a pause

SELF_FENCE = 2 / 3
"""An attempt that could not renew its claim for this share of the lease stops itself: the
rest of the lease is its margin to stop its CLI before anyone else may take the task."""


class Reconciler:
    def __init__(
        self,
        run: RunContext,
        inflight: InFlight,
        writes: AttemptWrites,
        members: CouncilMembers,
        sweeper: Sweeper,
        touch: Callable[[str], None],
    ) -> None:
        self._run = run
        self._inflight = inflight
        self._writes = writes
        self._members = members
        self._sweeper = sweeper
        self._touch = touch  # another process may have changed this task: read it again
        self._last_sweep = 0.0
        settings = run.services.config.scheduler
        # A pass runs each tick and each half heartbeat (the lease watch): a longer gap in
        # which the process did not run is a pause (``pause``).
        self._renewing = 0  # renewals after a pause under way (``after_pause``)
        self._pause = PauseWatch(max(_PAUSE_AT_LEAST, settings.heartbeat_interval, settings.tick))

    async def reconcile(self) -> None:
        settings = self._run.services.config.scheduler
        await self.after_pause()
        await self._apply_cancels()
        for attempt in self._inflight:
            if not attempt.token or attempt.lost:
                continue
            now = time.monotonic()
            if now - attempt.renewed >= settings.heartbeat_interval:
                with contextlib.suppress(StoreUnavailable):  # the deadline below decides
                    await self._renew(attempt, now)
        await self.fence_overdue()
        now = time.monotonic()
        if now - self._last_sweep >= min(settings.heartbeat_interval, settings.stale_threshold / 2):
            self._last_sweep = now
            await self._sweeper.sweep(self._inflight)
        await self._check_worktrees()

    # -- cancel requests ------------------------------------------------------------------

    async def _apply_cancels(self) -> None:
        if self._run.session_id is None:
            return
        store = self._run.services.store
        for task_id in await pending_cancels(store, self._run.session_id):
            self._touch(task_id)  # another process may have written it cancelled already
            task = self._run.tasks.get(task_id)
            if task is not None and task.council:
                step = self._inflight.get(task_id)
                if step is not None:
                    step.request_cancel()
                    continue
                ended = await self._members.cancel(task)
            else:
                ended = await self._cancel_unit(task_id)
            if ended:
                await clear_cancel(store, task_id)

    async def _cancel_unit(self, task_id: str) -> bool:
        """Cancel one task or candidate; True once it has ended."""
        emit = self._run.events.emit
        attempt = self._inflight.get(task_id)
        if attempt is not None:
            if not attempt.cancel_requested:
                attempt.request_cancel()
                await emit(TaskCancelRequested(task_id=task_id))
            return False
        store = self._run.services.store
        state = await store.get_task_state(task_id)
        if state is None:
            return True
        if state.status in TERMINAL_TASK_STATUSES:
            if state.status != TaskStatus.CANCELLED:
                await emit(TaskCancelTooLate(task_id=task_id, status=state.status))
            return True
        meta = TaskMeta.read(state.metadata)
        worktree, meta.worktree.session = meta.worktree.session, None
        updates: dict[str, Any] = {**cancelled_updates(state), "metadata": meta.dump()}
        if state.claim is not None and state.claim.status == ClaimStatus.ACTIVE:
            updates["claim"] = state.claim.model_copy(
                update={"status": ClaimStatus.ABANDONED, "released_at": utcnow()}
            )
        await store.update_task_state(task_id, updates)
        await emit(TaskCancelled(task_id=task_id, branch=state.branch))
        if isinstance(worktree, str):
            await self._writes.remove_worktree(worktree, f"session {worktree}")
        return True

    # -- worktrees ------------------------------------------------------------------------

    async def _check_worktrees(self) -> None:
        watched = [
            attempt
            for attempt in self._inflight
            # Not flagged already, and its CLI work not over (merging needs no worktree).
            if not (attempt.worktree_gone or attempt.slot_free or attempt.session is None)
        ]
        if not watched:
            return
        sessions = [attempt.session for attempt in watched if attempt.session is not None]
        present = await self._run.services.worktrees.present_all(sessions)  # stats: no hop
        for attempt, session, there in zip(watched, sessions, present, strict=True):
            if there or attempt.slot_free or attempt.worktree_gone:
                continue  # there, or its CLI work ended while we looked
            attempt.worktree_gone = True
            attempt.cancel.set()
            await self._run.events.emit(
                TaskWorktreeLost(task_id=attempt.key, worktree=str(session.path))
            )

    # -- heartbeats -----------------------------------------------------------------------

    async def fence_overdue(self) -> None:
        """Stop every attempt whose claim could not be renewed in time (the store
        unreachable): its lease may lapse any moment and another workstation take the task,
        so it writes, merges and publishes nothing more; its CLI is stopped and its work
        committed on its branch, which the next attempt continues.

        A local deadline, read on this machine's clock without the store: the scheduler also
        calls it on a timer of its own (``Scheduler._watch_leases``), so a tick held up by an
        unreachable store cannot hold the fence up too."""
        await self.after_pause()
        if self._renewing:
            return  # a pause's renewals are under way: the deadlines are judged after them
        fence_after = self._run.services.config.scheduler.stale_threshold * SELF_FENCE
        now = time.monotonic()
        late = [
            (attempt, now - attempt.renewed)
            for attempt in self._inflight
            if attempt.token and not attempt.lost and now - attempt.renewed >= fence_after
        ]
        for attempt, silent in late:  # all stopped first: the events below may wait
            attempt.lose()
            attempt.cancel.set()
            log.warning(
                "task %s: claim not renewed for %.0fs (the state store cannot be reached): its "
                "session fenced itself, work kept on its branch",
                attempt.key,
                silent,
            )
        for attempt, silent in late:
            with contextlib.suppress(StoreUnavailable):
                await self._run.events.emit(
                    TaskSelfFenced(task_id=attempt.key, silent=round(silent, 1))
                )

    async def after_pause(self) -> None:
        """When this workstation was paused (``pause``: stopped, or asleep) since the last
        pass, say so (a warning and ``workstation.paused``) and renew every running claim at
        once: the deadlines were missed by the pause, not the store, so a claim the store
        renews now goes on, one taken meanwhile is lost (``task.claim_lost``), and only one the
        store cannot renew is left to the fence below, which then blames the store."""
        paused = self._pause.look()
        if paused is None:
            return
        running = [a for a in self._inflight if a.token and not a.lost]
        renewed = 0
        # No fence is judged meanwhile (``fence_overdue``): a store that does not answer ends
        # a renewal in its own time (``StoreUnavailable``) and leaves them all to the fence.
        self._renewing += 1
        try:
            for attempt in running:
                if not attempt.token or attempt.lost:
                    continue  # released (or lost) while an earlier one was renewed
                await self._renew(attempt, time.monotonic())
                renewed += not attempt.lost
        except StoreUnavailable:
            pass
        finally:
            self._renewing -= 1
        said = WorkstationPaused(
            seconds=paused.seconds, how=paused.how, attempts=len(running), renewed=renewed
        )
        try:
            await self._run.events.emit(said)  # a warning: the log says it (``event_text``)
        except StoreUnavailable:
            log.warning("%s", sentence(said))

    async def _renew(self, attempt: Attempt, now: float) -> None:
        token = attempt.token
        if not token or attempt.stage not in LIVE:
            return  # released or lost already: nothing of it to renew, nothing to lose
        services = self._run.services
        try:
            await services.store.renew_claim(
                attempt.key, token, services.config.scheduler.stale_threshold
            )
            attempt.renewed = now
        except (StaleClaim, RecordNotFound):
            if attempt.token != token or attempt.releasing:
                return  # released while we renewed: the attempt settled normally
            attempt.lose()
            attempt.cancel.set()
            await self._run.events.emit(TaskClaimLost(task_id=attempt.key))
