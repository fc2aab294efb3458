"""Landing a finished attempt's branch through the merge queue.

The merge is held first while a forecast says it would conflict with an earlier in-flight
branch (the earlier one lands first); it waits, retried, while the base's checkout is dirty
(the task ``merging``, what is in the way and the way out in its ``waiting`` line); a
conflict is answered once by building again on the updated base (a resolve round), after
which the task ends ``conflict`` with its branch kept.

A wait for the checkout is bounded: after ``landing.wait_timeout`` the task ends
``waiting_for_checkout`` (claim released, locks let go, worktree and branch kept, the
``waiting`` line kept), with a ``task.waiting_for_checkout`` event; the run ends without it
(``Scheduler``: session ``interrupted``) and `council resume` requeues it, its phases recorded
complete, so it goes straight to landing once the checkout is cleared.

With ``landing.via: pull_request`` nothing is merged here: the branch goes to a pull request
(``scheduler.pulls.landing``, a part: ``attempts.part``) and the task waits ``in_review``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio

from orchestrator.errors import WorkspaceError
from orchestrator.events.merge import MergeForecastConflict, MergeResolveRound
from orchestrator.events.tasks import TaskFailed, TaskWaitingForCheckout
from orchestrator.merge.types import MergeResult, MergeStatus
from orchestrator.models import ClaimStatus, TaskState, TaskStatus, utcnow
from orchestrator.safety.crashpoints import crash_point
from orchestrator.scheduler.attempts.attempt import (
    MAX_RESOLVE_ROUNDS,
    MERGE_RECHECK,
    Attempt,
)
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.attempts.landing_log import LandingLog
from orchestrator.scheduler.attempts.lifecycle import Stage
from orchestrator.scheduler.attempts.part import AttemptParts
from orchestrator.scheduler.attempts.writes import AttemptWrites, added_usage
from orchestrator.scheduler.context import RunContext
from orchestrator.state.claim_rules import ReleaseFirst
from orchestrator.task_meta import TaskMeta
from orchestrator.worktrees.models import RemovalResult

__all__ = ["Lander"]

log = logging.getLogger(__name__)


class Lander:
    def __init__(
        self,
        run: RunContext,
        writes: AttemptWrites,
        inflight: InFlight,
        landing: LandingLog,
        parts: AttemptParts,
    ) -> None:
        self._run = run
        self._writes = writes
        self._inflight = inflight
        self._landing = landing  # the write-ahead record of a landing on the team's remote
        # The run's features at a landing (``part``): a pull request lands it its own way;
        # commits pushed onto the base outside the queue fail it.
        self._parts = parts
        # Called after each landing is recorded: the check that earlier ones are still there
        # (``relander``).
        self.on_landed: Callable[[MergeResult], Awaitable[None]] | None = None

    async def merge(self, attempt: Attempt) -> None:
        """Land the attempt's branch.

        The task stays ``running`` through a merge that goes straight through (a crash then
        requeues it like a ``merging`` one, and the merge queue answers ``already_merged`` if
        it had landed): it is written ``merging`` only when the merge has to wait, for an
        earlier conflicting branch or for the base's checkout. The write that ends the task
        (done, conflict) is the durable record of the merge either way."""
        assert attempt.session is not None
        services = self._run.services
        if await self._parts.lands(attempt):
            return  # a part lands it its own way (a pull request, later)
        await self._hold_for_forecast(attempt)
        since: float | None = None  # when its landing first had to wait for the checkout
        merged = await self._parts.landing(attempt)  # a teammate's train landed it
        while merged is None:
            asked = await services.merges.merge(
                attempt.session.session_id, attempt.session.branch, task_id=attempt.key
            )
            if asked.status != MergeStatus.WAITING_FOR_CHECKOUT:
                merged = asked
                break
            await self._mark_merging(attempt, asked.message)
            if self._run.stopping:
                await self._writes.requeue(attempt, "stopped while waiting for the checkout")
                return
            if attempt.cancel_requested:
                await self._writes.cancelled(attempt)
                return
            now = time.monotonic()
            since = now if since is None else since
            if now - since >= services.config.landing.wait_timeout:
                await self._stop_waiting(attempt, asked.message, now - since)
                return
            await anyio.sleep(max(MERGE_RECHECK, services.config.scheduler.tick))
        attempt.waiting = ""
        await self._landed(attempt, merged)

    async def _stop_waiting(self, attempt: Attempt, why: str, waited: float) -> None:
        """End the task ``waiting_for_checkout`` (module doc): nothing of its work goes."""
        assert attempt.session is not None
        branch = attempt.session.branch
        state = attempt.written or await self._run.services.store.get_task_state(attempt.key)
        meta = TaskMeta.read(self._writes.with_usage(attempt, state.metadata if state else {}))
        meta.landing.waiting = why
        updates = {
            "status": TaskStatus.WAITING_FOR_CHECKOUT,
            "current_phase": None,
            "error": f"not landed: {why}; its work is kept on {branch}, `council resume` lands it",
            "metadata": meta.dump(),
        }
        await self._writes.release(attempt, ClaimStatus.ABANDONED, updates)
        await self._writes.release_locks(attempt)
        attempt.waiting = ""
        await self._run.events.emit(
            TaskWaitingForCheckout(
                task_id=attempt.key, branch=branch, waited=round(waited, 1), message=why
            )
        )

    async def _landed(self, attempt: Attempt, merged: MergeResult) -> None:
        assert attempt.session is not None
        await self._landing.landed(attempt.key, merged)
        if merged.landed:  # its branch may go (below) while it is still in flight
            attempt.move(Stage.LANDED)
        now = utcnow()
        if not merged.landed and await self._resolve_round(attempt, merged):
            return
        pushed = await self._parts.outside(attempt, merged.branch_tip) if merged.landed else None
        if pushed:
            updates: dict[str, Any] = {
                "status": TaskStatus.FAILED,
                "current_phase": None,
                "finished_at": now,
                "error": pushed,
            }
        elif merged.landed:
            updates = {
                "status": TaskStatus.DONE,
                "current_phase": None,
                "merged_commit": merged.merge_commit or merged.branch_tip,
                "finished_at": now,
                "error": None,
            }
        else:
            paths = ", ".join(merged.conflicts) or "unknown paths"
            updates = {
                "status": TaskStatus.CONFLICT,
                "current_phase": None,
                "error": f"merge conflict in {paths}; branch {merged.branch} kept",
                "finished_at": now,
            }
        # Its metadata made from the task as the store finds it under the claim's lock, in the
        # release's own call (no read of its own); the usage taken now, so a write the store
        # makes again never counts it twice.
        usage, attempt.usage = attempt.usage, None
        keep_worktree = not (merged.tip_contained and not pushed)  # a failed task keeps it

        def ended(state: TaskState) -> dict[str, Any]:
            meta = TaskMeta.read(added_usage(state.metadata, usage))
            meta.retry.conflicts = list(merged.conflicts)
            meta.landing.waiting = None
            if not keep_worktree:
                meta.worktree.session = None
            return {**updates, "metadata": meta.dump()}

        # A worktree that goes (a relanding has none): the claim's release is made first in
        # its removal's store call (``release_first``), not in a call of its own.
        removing = not keep_worktree and not attempt.relanding
        if not removing:
            await self._writes.release(attempt, ClaimStatus.COMPLETED, ended)
            crash_point("merge.recorded")
        # The session context goes in the worktree removal's own store call (with the
        # worktree's record, after the removal), else in one of its own below.
        await self._writes.release_locks(attempt, context_later=True)
        if pushed:  # its worktree and branch stay, for the human who reviews what it pushed
            await self._writes.forget_left(attempt)
            await self._run.events.emit(TaskFailed(task_id=attempt.key, error=pushed))
            return
        if removing:
            session = attempt.session
            parted = self._parts.leaving(attempt)  # (the radar's sighting)
            also = [*self._writes.left(attempt), *parted]
            remove = self._run.services.worktrees.remove_session_worktree

            async def released_and_removed(first: ReleaseFirst | None) -> RemovalResult:
                return await remove(session, also=also, first=first)

            try:
                await self._writes.release_first(
                    attempt,
                    ClaimStatus.COMPLETED,
                    ended,
                    partial(crash_point, "merge.recorded"),
                    released_and_removed,
                )
                self._writes.forgotten(attempt)
                attempt.forgotten.update((d.namespace, d.key) for d in parted)
            except WorkspaceError as exc:  # its work is on the base; only the directory stays
                log.warning("could not remove the worktree of %s: %s", attempt.key, exc)
        await self._writes.forget_left(attempt)
        if merged.landed and self.on_landed is not None:
            await self.on_landed(merged)

    async def _resolve_round(self, attempt: Attempt, merged: MergeResult) -> bool:
        """Answer a merge conflict by running the task again on a new branch from the base as
        it is now (build and review run again; scout and plan are kept). The conflicting
        branch stays, and a rescue ref holds its tip once its worktree is gone, so nothing is
        lost. False when the task already had its resolve rounds: then it ends ``conflict``."""
        state = await self._run.services.store.get_task_state(attempt.key)
        if state is None:
            return False
        rounds = TaskMeta.read(state.metadata).retry.resolve_rounds or 0
        if rounds >= MAX_RESOLVE_ROUNDS:
            return False
        paths = ", ".join(merged.conflicts) or "unknown paths"
        meta = TaskMeta.read(self._writes.with_usage(attempt, state.metadata))
        meta.retry.resolve_rounds, meta.retry.conflicts = rounds + 1, list(merged.conflicts)
        meta.worktree.session = None  # the next attempt forks a fresh worktree from the base
        await self._writes.release(
            attempt,
            ClaimStatus.COMPLETED,
            {
                "status": TaskStatus.QUEUED,
                "current_phase": None,
                "error": f"merge conflict in {paths}; building again on the updated base",
                "metadata": meta.dump(),
            },
        )
        await self._writes.release_locks(attempt)
        await self._run.events.emit(
            MergeResolveRound(
                task_id=attempt.key,
                paths=list(merged.conflicts),
                kept_branch=merged.branch,
                round=rounds + 1,
            )
        )
        if not attempt.relanding:
            await self._writes.retire_worktree(attempt)
        return True

    async def _hold_for_forecast(self, attempt: Attempt) -> None:
        """Wait for every earlier in-flight attempt whose branch would conflict with ours."""
        session = attempt.session
        assert session is not None
        ahead = [o for o in sorted(self._inflight, key=lambda a: a.seq) if o.seq < attempt.seq]
        while ahead:
            looked = [other for other in ahead if _may_conflict(attempt, other)]
            pairs = []
            for other in looked:
                assert other.session is not None
                # a relanding's branch is the kept work, whatever it forked from
                forked = None if other.relanding else other.session.base_commit
                pairs.append((other.session.branch, session.branch, forked))
            forecasts = await self._run.services.merges.forecast_many(pairs)  # one trip
            ahead = []
            for at, (other, forecast) in enumerate(zip(looked, forecasts, strict=True)):
                if isinstance(forecast, WorkspaceError):
                    # It landed and its branch went while we looked; or its branch cannot be
                    # read now (its sandboxed CLI committed into its own object store, taken
                    # in when it exits): no forecast, and another session's branch never
                    # fails this one.
                    log.debug("no forecast against %s: %s", other.key, forecast)
                    continue
                if not forecast.conflicts:
                    continue
                await self._run.events.emit(
                    MergeForecastConflict(
                        task_id=attempt.key, held_for=other.key, paths=list(forecast.paths)
                    )
                )
                both = ", ".join(forecast.paths) or "the same files"
                await self._mark_merging(attempt, f"lands after {other.key} (both change {both})")
                await other.finished.wait()
                ahead = looked[at + 1 :]  # asked again: they may have moved during the wait
                break
        attempt.waiting = ""

    async def _mark_merging(self, attempt: Attempt, why: str) -> None:
        """Write the task ``merging`` (with the attempt's usage) and what its merge waits for
        (``council status`` shows it): once per reason, a waiting merge is retried often."""
        attempt.waiting = why
        if attempt.merging_written and attempt.waiting_written == why:
            return
        state = await self._run.services.store.get_task_state(attempt.key)
        meta = TaskMeta.read(self._writes.with_usage(attempt, state.metadata if state else {}))
        meta.landing.waiting = why
        await self._writes.write(
            attempt, {"status": TaskStatus.MERGING, "current_phase": None, "metadata": meta.dump()}
        )
        if not attempt.merging_written:
            attempt.move(Stage.MERGING)
        attempt.waiting_written = why


def _may_conflict(attempt: Attempt, other: Attempt) -> bool:
    """Whether ``attempt``'s merge must ask git if it conflicts with ``other``'s, ahead of it."""
    if other.session is None or other.landed:
        return False  # nothing to land yet; or its work is on the base: our merge sees it there
    ours, theirs = attempt.touches(), other.touches()
    return not (ours and theirs and not ours & theirs)  # both known and disjoint: no conflict
