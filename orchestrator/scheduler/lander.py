"""Settling an attempt's result: cancelled, a council candidate, merged, retried, parked or
failed, and the merge itself (held first while a forecast says it would conflict with an
earlier in-flight branch; a conflict answered once by building again on the updated base).

An attempt whose worktree was deleted under it goes back to the queue without a failure
counted (the next attempt checks its branch out again), up to ``max_retries`` times per task;
after that, such an attempt settles like any other (a CLI that deletes its own worktree must
not loop forever).

A rate-limited attempt is parked by ``orchestrator.scheduler.parks`` (no failure counted), or ends
the
task ``failed`` once the park budget is spent; any other failure goes to ``RetryPolicy``. A
failed task keeps its outcome kind in ``metadata.outcome`` (``rate_limited``,
``auth_required``...).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import anyio

from orchestrator.errors import (
    CouncilError,
    OutOfSpace,
    StateWriteError,
    WorkspaceError,
    needs_repair,
    out_of_space,
)
from orchestrator.merge.types import MergeResult, MergeStatus
from orchestrator.models import TERMINAL_TASK_STATUSES, ClaimStatus, TaskStatus, utcnow
from orchestrator.retry import Decision, GiveUp, Retry
from orchestrator.safety.crashpoints import crash_point
from orchestrator.scheduler.attempt import (
    _MERGE_RECHECK,
    FAILURES,
    MAX_RESOLVE_ROUNDS,
    RESOLVE_ROUNDS,
    WORKTREE,
    WORKTREE_LOSSES,
    Attempt,
    AttemptBase,
)
from orchestrator.scheduler.cancel import cancelled_updates
from orchestrator.scheduler.candidates import (
    CANDIDATE_RESULT,
    COUNCIL_SUMMARY,
    council_summary,
    group_lock_owner,
)
from orchestrator.scheduler.parks import PARKED_SINCE, PARKS, Park
from orchestrator.scheduler.queue import (
    NOT_BEFORE,
    OUTCOME,
    PARKED_ADAPTER,
    PARKED_UNTIL,
    time_of,
)
from orchestrator.workflow.task_run import WorkflowResult, WorkflowStatus

__all__ = ["SettleLifecycle"]

log = logging.getLogger(__name__)

RATE_LIMITED = "rate_limited"


class SettleLifecycle(AttemptBase):
    """What happens to an attempt once its workflow has returned."""

    async def _failed_in_orchestrator(self, attempt: Attempt, exc: BaseException) -> None:
        """The orchestrator's own step (git, store, disk) failed in ``attempt``: counted like a
        failed attempt, so a persistent fault ends in ``failed`` rather than a respawn loop;
        after ``kill()`` nothing is written.

        A full disk, and the orchestrator's own files needing a person's repair (a damaged
        record, a refused state write, an unusable lock file: ``needs_repair``), stop the run
        instead (resumable) with the error that names the file and what to do: no task is to
        blame, and no retry can help. Such a failure may also come before the claim, where
        nothing could be counted, so the task would be dispatched again forever."""
        if self.killed:
            # A step that was already running in a worker thread when the run was killed
            # finished with an error: the state is left as it stands, for ``resume``.
            log.warning("task %s: failed while the run was killed: %s", attempt.key, exc)
            return
        if out_of_space(exc):
            raise stopped_for_space(attempt, exc) from exc
        if needs_repair(exc):
            raise exc
        log.warning("task %s: failed in the orchestrator: %s", attempt.key, exc)
        failed = WorkflowResult(
            WorkflowStatus.FAILED, message=str(exc), retryable=True, outcome_kind="crashed"
        )
        with anyio.CancelScope(shield=True):
            await self._decide(attempt, failed)

    # -- settling a result ----------------------------------------------------------------

    async def _settle(self, attempt: Attempt, result: WorkflowResult) -> None:
        if attempt.lost:
            return
        merging = (
            result.status == WorkflowStatus.READY_TO_MERGE
            and attempt.group is None
            and not attempt.cancel_requested
        )
        if result.status == WorkflowStatus.READY_TO_MERGE:
            self.rate_limited_since.pop(attempt.adapter, None)  # the API answered again
        if merging:
            attempt.usage = result.usage  # goes into the next write of the task
        else:
            await self._add_usage(attempt, result)
        if attempt.cancel_requested:
            await self._cancelled(attempt)
        elif result.status == WorkflowStatus.READY_TO_MERGE and attempt.group is not None:
            await self._candidate_ready(attempt, result)
        elif merging:
            attempt.files_changed = frozenset(result.files_changed)
            await self._merge(attempt, result)
        elif result.status == WorkflowStatus.CANCELLED and self.stopping:
            await self._requeue(attempt, None, "interrupted")
        elif not await self._requeued_for_lost_worktree(attempt):
            await self._decide(attempt, result)

    async def _requeued_for_lost_worktree(self, attempt: Attempt) -> bool:
        """Back to the queue, uncounted, when the worktree was deleted under the attempt (the
        reconcile saw it, or it went after the last tick's look); see the module doc."""
        session = attempt.session
        if attempt.lost or attempt.token == 0 or session is None:
            return False
        if not attempt.worktree_gone and await self.services.worktrees.present(session):
            return False
        state = await self.services.store.get_task_state(attempt.key)
        if state is None:
            return False
        losses = int(state.metadata.get(WORKTREE_LOSSES, 0)) + 1
        if losses > self.policy.max_retries:
            return False
        updates = {
            "status": TaskStatus.QUEUED,
            "current_phase": None,
            "metadata": {**state.metadata, WORKTREE_LOSSES: losses},
        }
        await self._release(attempt, ClaimStatus.ABANDONED, updates)
        await self._emit(
            "task.requeued", {"task_id": attempt.key, "reason": "its worktree was deleted"}
        )
        return True

    async def _decide(self, attempt: Attempt, result: WorkflowResult) -> None:
        if attempt.lost or attempt.token == 0:
            return
        state = await self.services.store.get_task_state(attempt.key)
        if state is None:
            return
        meta = self._with_usage(attempt, state.metadata)
        now = utcnow()
        limited = result.status == WorkflowStatus.PARKED or result.outcome_kind == RATE_LIMITED
        if limited:
            decision: Decision | Park = self._park_decision(attempt, result, meta, now)
        else:
            # The API answered: whatever the adapter's rate limits were, they are over.
            self.rate_limited_since.pop(attempt.adapter, None)
            meta[FAILURES] = int(meta.get(FAILURES, 0)) + 1
            decision = self.policy.decide(result, meta[FAILURES])
        if isinstance(decision, Park):
            await self._park(attempt, result, decision, meta)
            return
        for key in (PARKED_ADAPTER, PARKED_UNTIL, PARKED_SINCE):
            meta.pop(key, None)
        if isinstance(decision, Retry):
            meta[NOT_BEFORE] = (now + timedelta(seconds=decision.delay)).isoformat()
            updates: dict[str, Any] = {"status": TaskStatus.QUEUED, "error": result.message}
            await self._emit(
                "task.retry",
                {
                    "task_id": attempt.key,
                    "delay": decision.delay,
                    "failures": meta[FAILURES],
                    "error": result.message,
                },
            )
        else:
            assert isinstance(decision, GiveUp)
            if result.outcome_kind:
                meta[OUTCOME] = result.outcome_kind  # why it failed: rate_limited, auth_required...
            updates = {"status": TaskStatus.FAILED, "error": decision.reason, "finished_at": now}
            await self._emit(
                "task.failed",
                {"task_id": attempt.key, "error": decision.reason, "outcome": result.outcome_kind},
            )
        await self._release(attempt, ClaimStatus.COMPLETED, {**updates, "metadata": meta})

    def _park_decision(
        self, attempt: Attempt, result: WorkflowResult, meta: dict[str, Any], now: datetime
    ) -> Park | GiveUp:
        """Park the rate-limited task again, or end it (``orchestrator.scheduler.parks``)."""
        adapter = attempt.adapter
        since = self.rate_limited_since.get(adapter)
        own = time_of(meta, PARKED_SINCE) if meta.get(PARKED_ADAPTER) == adapter else None
        if own is not None:
            since = own if since is None else min(since, own)
        return self.parks.decide(
            adapter=adapter,
            parks=int(meta.get(PARKS, 0)),
            since=since,
            reset_at=result.retry_at,
            message=result.message,
            now=now,
        )

    async def _park(
        self, attempt: Attempt, result: WorkflowResult, park: Park, meta: dict[str, Any]
    ) -> None:
        adapter = attempt.adapter
        self.parked[adapter] = max(park.until, self.parked.get(adapter, park.until))
        self.rate_limited_since[adapter] = min(
            park.since, self.rate_limited_since.get(adapter, park.since)
        )
        meta |= {
            PARKED_UNTIL: park.until.isoformat(),
            PARKED_ADAPTER: adapter,
            PARKED_SINCE: park.since.isoformat(),
            PARKS: park.park,
        }
        updates = {"status": TaskStatus.PARKED, "error": result.message, "metadata": meta}
        await self._emit(
            "adapter.parked",
            {
                "adapter": adapter,
                "until": park.until.isoformat(),
                "task_id": attempt.key,
                "park": park.park,
                "max_parks": self.parks.config.max_parks,
                "message": result.message,
            },
        )
        await self._release(attempt, ClaimStatus.COMPLETED, updates)

    async def _cancelled(self, attempt: Attempt) -> None:
        """End the task ``cancelled`` on request: claim abandoned, the worktree removed (its
        work is committed; the branch, which the base lacks, is kept)."""
        state = await self.services.store.get_task_state(attempt.key)
        if state is None:
            return
        state = state.model_copy(update=self._where(attempt))  # the branch the work is kept on
        meta = dict(state.metadata)
        meta.pop(WORKTREE, None)
        updates = {**cancelled_updates(state), "metadata": meta}
        await self._release(attempt, ClaimStatus.ABANDONED, updates)
        await self._emit("task.cancelled", {"task_id": attempt.key, "branch": state.branch})
        if attempt.group is None:
            await self._release_locks(attempt)
        await self._retire_worktree(attempt)

    async def _candidate_ready(self, attempt: Attempt, result: WorkflowResult) -> None:
        """A council candidate passed: it waits, ``merging``, for the comparison."""
        state = await self.services.store.get_task_state(attempt.key)
        if state is None:
            return
        kept = {
            "commit": result.commit,
            "files_changed": list(result.files_changed),
            "message": result.message,
        }
        meta = {**state.metadata, CANDIDATE_RESULT: kept}
        updates = {"status": TaskStatus.MERGING, "current_phase": None, "metadata": meta}
        await self._release(attempt, ClaimStatus.COMPLETED, updates)
        await self._emit(
            "council.candidate_ready",
            {"task_id": attempt.group, "candidate": attempt.key, "adapter": attempt.adapter},
        )

    async def _release_group_if_over(self, group: str) -> None:
        """Once council task ``group`` has ended and none of its candidates runs any more:
        its summary shows how each candidate ended, and their shared file locks go."""
        if any(a.group == group or a.key == group for a in self.running.values()):
            return
        store = self.services.store
        state = await store.get_task_state(group)
        if state is not None and state.status not in TERMINAL_TASK_STATUSES:
            return
        await self.services.locks.release_all_session_locks(group_lock_owner(group))
        task = self.council_tasks().get(group)
        if state is None or task is None:
            return
        summary = state.metadata.get(COUNCIL_SUMMARY)
        winner = summary.get("winner") if isinstance(summary, dict) else None
        fresh = await council_summary(store, task, winner if isinstance(winner, str) else None)
        if fresh != summary:
            await store.update_task_state(
                group, {"metadata": {**state.metadata, COUNCIL_SUMMARY: fresh}}
            )

    # -- merging --------------------------------------------------------------------------

    async def _merge(self, attempt: Attempt, result: WorkflowResult) -> None:
        """Land the attempt's branch.

        The task stays ``running`` through a merge that goes straight through (a crash then
        requeues it like a ``merging`` one, and the merge queue answers ``already_merged`` if
        it had landed): it is written ``merging`` only when the merge has to wait, for an
        earlier conflicting branch or for the base's checkout. The write that ends the task
        (done, conflict) is the durable record of the merge either way."""
        assert attempt.session is not None
        await self._hold_for_forecast(attempt)
        while True:
            merged = await self.services.merges.merge(
                attempt.session.session_id, attempt.session.branch, task_id=attempt.key
            )
            if merged.status != MergeStatus.WAITING_FOR_CHECKOUT:
                break
            await self._mark_merging(attempt)
            if self.stopping:
                await self._requeue(attempt, None, "stopped while waiting for the checkout")
                return
            if attempt.cancel_requested:
                await self._cancelled(attempt)
                return
            await anyio.sleep(max(_MERGE_RECHECK, self.services.config.scheduler.tick))
        await self._landed(attempt, merged)

    async def _landed(self, attempt: Attempt, merged: MergeResult) -> None:
        assert attempt.session is not None
        attempt.landed = merged.landed  # its branch may go (below) while it is still in flight
        now = utcnow()
        if not merged.landed and await self._resolve_round(attempt, merged):
            return
        if merged.landed:
            updates: dict[str, Any] = {
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
        # After a merging write, the task as that write left it: while we hold the claim
        # nobody else writes its metadata (renewals change only the claim).
        written = attempt.written if attempt.merging_written else None
        state = written or await self.services.store.get_task_state(attempt.key)
        meta = self._with_usage(attempt, state.metadata if state is not None else {})
        meta["conflicts"] = list(merged.conflicts)
        if merged.tip_contained:
            meta.pop(WORKTREE, None)
        await self._release(attempt, ClaimStatus.COMPLETED, {**updates, "metadata": meta})
        crash_point("merge.recorded")
        await self._release_locks(attempt)
        if merged.tip_contained:
            try:
                await self.services.worktrees.remove_session_worktree(attempt.session)
            except WorkspaceError as exc:  # its work is on the base; only the directory stays
                log.warning("could not remove the worktree of %s: %s", attempt.key, exc)

    async def _resolve_round(self, attempt: Attempt, merged: MergeResult) -> bool:
        """Answer a merge conflict by running the task again on a new branch from the base as
        it is now (build and review run again; scout and plan are kept). The conflicting
        branch stays, and a rescue ref holds its tip once its worktree is gone, so nothing is
        lost. False when the task already had its resolve rounds: then it ends ``conflict``."""
        assert attempt.session is not None
        state = await self.services.store.get_task_state(attempt.key)
        if state is None:
            return False
        rounds = int(state.metadata.get(RESOLVE_ROUNDS, 0))
        if rounds >= MAX_RESOLVE_ROUNDS:
            return False
        paths = ", ".join(merged.conflicts) or "unknown paths"
        meta = self._with_usage(attempt, state.metadata)
        meta |= {RESOLVE_ROUNDS: rounds + 1, "conflicts": list(merged.conflicts)}
        meta.pop(WORKTREE, None)  # the next attempt forks a fresh worktree from the base
        await self._release(
            attempt,
            ClaimStatus.COMPLETED,
            {
                "status": TaskStatus.QUEUED,
                "current_phase": None,
                "error": f"merge conflict in {paths}; building again on the updated base",
                "metadata": meta,
            },
        )
        await self._release_locks(attempt)
        await self._emit(
            "merge.resolve_round",
            {
                "task_id": attempt.key,
                "paths": list(merged.conflicts),
                "kept_branch": merged.branch,
                "round": rounds + 1,
            },
            level="warning",
        )
        try:
            await self.services.worktrees.remove_session_worktree(attempt.session)
        except WorkspaceError as exc:  # the branch keeps the work either way
            log.warning("could not remove the worktree of %s: %s", attempt.key, exc)
        return True

    async def _hold_for_forecast(self, attempt: Attempt) -> None:
        """Wait for every earlier in-flight attempt whose branch would conflict with ours."""
        assert attempt.session is not None
        for other in sorted(self.running.values(), key=lambda a: a.seq):
            if other.seq >= attempt.seq or other.session is None:
                continue
            ours, theirs = attempt.touches(), other.touches()
            if ours and theirs and not ours & theirs:
                continue  # both known and disjoint: they cannot conflict
            if other.landed:
                continue  # its work is on the base already: our merge will see it there
            try:
                forecast = await self.services.merges.forecast_conflicts(
                    other.session.branch, attempt.session.branch
                )
            except WorkspaceError:
                if other.landed:
                    continue  # it landed, and its branch went, while we looked
                raise
            if not forecast.conflicts:
                continue
            await self._emit(
                "merge.forecast_conflict",
                {"task_id": attempt.key, "held_for": other.key, "paths": forecast.paths},
                level="warning",
            )
            await self._mark_merging(attempt)
            await other.finished.wait()

    async def _mark_merging(self, attempt: Attempt) -> None:
        """Write the task ``merging`` (with the attempt's usage), once: its merge waits."""
        if attempt.merging_written:
            return
        state = await self.services.store.get_task_state(attempt.key)
        meta = self._with_usage(attempt, state.metadata if state is not None else {})
        await self._write(
            attempt, {"status": TaskStatus.MERGING, "current_phase": None, "metadata": meta}
        )
        attempt.merging_written = True


def stopped_for_space(attempt: Attempt, exc: BaseException) -> CouncilError:
    """The error a full disk stops the run with: ``exc`` itself when it already says what to
    do (a refused state write), else ``OutOfSpace`` saying where the attempt's work is."""
    if isinstance(exc, StateWriteError | OutOfSpace):
        return exc
    session = attempt.session
    kept = (
        f"task {attempt.key}'s work stays in its worktree {session.path} (branch {session.branch})"
        if session is not None
        else f"task {attempt.key} had not started"
    )
    return OutOfSpace(str(exc), kept)
