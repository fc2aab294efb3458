"""Settling an attempt's result: cancelled, a council candidate, merged (``lander``), retried,
parked or failed.

An attempt whose worktree was deleted under it goes back to the queue without a failure
counted (the next attempt checks its branch out again), up to ``max_retries`` times per task;
after that, such an attempt settles like any other (a CLI that deletes its own worktree must
not loop forever).

A rate-limited attempt is parked (``adapter_parks``, rules in ``parks``; no failure counted),
or ends the task ``failed`` once the park budget is spent; any other failure goes to
``RetryPolicy``. A failed task keeps its outcome kind in ``metadata.outcome``
(``rate_limited``, ``auth_required``...).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import anyio

from orchestrator.errors import (
    CouncilError,
    OutOfSpace,
    StateWriteError,
    needs_repair,
    out_of_space,
)
from orchestrator.models import ClaimStatus, TaskStatus, utcnow
from orchestrator.retry import Decision, GiveUp, Retry, RetryPolicy
from orchestrator.scheduler.attempts.adapter_parks import AdapterParks
from orchestrator.scheduler.attempts.attempt import FAILURES, WORKTREE_LOSSES, Attempt
from orchestrator.scheduler.attempts.lander import Lander
from orchestrator.scheduler.attempts.writes import AttemptWrites
from orchestrator.scheduler.candidates import CANDIDATE_RESULT
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.rules.parks import PARKED_SINCE, PARKS, Park
from orchestrator.scheduler.rules.queue import NOT_BEFORE, OUTCOME, PARKED_ADAPTER, PARKED_UNTIL
from orchestrator.workflow.task_run import WorkflowResult, WorkflowStatus

__all__ = ["Settler", "stopped_for_space"]

log = logging.getLogger(__name__)

RATE_LIMITED = "rate_limited"


class Settler:
    def __init__(
        self,
        run: RunContext,
        writes: AttemptWrites,
        parks: AdapterParks,
        policy: RetryPolicy,
        lander: Lander,
    ) -> None:
        self._run = run
        self._writes = writes
        self._parks = parks
        self._policy = policy
        self._lander = lander

    async def failed_in_orchestrator(self, attempt: Attempt, exc: BaseException) -> None:
        """The orchestrator's own step (git, store, disk) failed in ``attempt``: counted like a
        failed attempt, so a persistent fault ends in ``failed`` rather than a respawn loop;
        after ``kill()`` nothing is written.

        A full disk, and the orchestrator's own files needing a person's repair (a damaged
        record, a refused state write, an unusable lock file: ``needs_repair``), stop the run
        instead (resumable) with the error that names the file and what to do: no task is to
        blame, and no retry can help. Such a failure may also come before the claim, where
        nothing could be counted, so the task would be dispatched again forever."""
        if self._run.killed:
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
            await self.decide(attempt, failed)

    async def settle(self, attempt: Attempt, result: WorkflowResult) -> None:
        if attempt.lost:
            return
        ready = result.status == WorkflowStatus.READY_TO_MERGE
        merging = ready and attempt.group is None and not attempt.cancel_requested
        if ready:
            self._parks.answered(attempt.adapter)  # the API answered again
        if merging:
            attempt.usage = result.usage  # goes into the next write of the task
        else:
            await self._writes.add_usage(attempt, result)
        if attempt.cancel_requested:
            await self._writes.cancelled(attempt)
        elif ready and attempt.group is not None:
            await self._candidate_ready(attempt, result)
        elif merging:
            attempt.files_changed = frozenset(result.files_changed)
            await self._lander.merge(attempt)
        elif result.status == WorkflowStatus.CANCELLED and self._run.stopping:
            await self._writes.requeue(attempt, "interrupted")
        elif not await self._requeued_for_lost_worktree(attempt):
            await self.decide(attempt, result)

    async def _requeued_for_lost_worktree(self, attempt: Attempt) -> bool:
        """Back to the queue, uncounted, when the worktree was deleted under the attempt (the
        reconcile saw it, or it went after the last tick's look); see the module doc."""
        services, session = self._run.services, attempt.session
        if attempt.lost or attempt.token == 0 or session is None:
            return False
        if not attempt.worktree_gone and await services.worktrees.present(session):
            return False
        state = await services.store.get_task_state(attempt.key)
        if state is None:
            return False
        losses = int(state.metadata.get(WORKTREE_LOSSES, 0)) + 1
        if losses > self._policy.max_retries:
            return False
        updates = {
            "status": TaskStatus.QUEUED,
            "current_phase": None,
            "metadata": {**state.metadata, WORKTREE_LOSSES: losses},
        }
        await self._writes.release(attempt, ClaimStatus.ABANDONED, updates)
        await self._run.events.emit(
            "task.requeued", {"task_id": attempt.key, "reason": "its worktree was deleted"}
        )
        return True

    async def decide(self, attempt: Attempt, result: WorkflowResult) -> None:
        """Retry the task later, park it, or end it ``failed``."""
        if attempt.lost or attempt.token == 0:
            return
        state = await self._run.services.store.get_task_state(attempt.key)
        if state is None:
            return
        meta = self._writes.with_usage(attempt, state.metadata)
        now = utcnow()
        limited = result.status == WorkflowStatus.PARKED or result.outcome_kind == RATE_LIMITED
        decision: Decision | Park
        if limited:
            decision = self._parks.decide(
                attempt.adapter, meta, result.message, result.retry_at, now
            )
        else:
            self._parks.answered(attempt.adapter)  # the API answered: its limits are over
            meta[FAILURES] = int(meta.get(FAILURES, 0)) + 1
            decision = self._policy.decide(result, meta[FAILURES])
        if isinstance(decision, Park):
            await self._park(attempt, result, decision, meta)
            return
        for key in (PARKED_ADAPTER, PARKED_UNTIL, PARKED_SINCE):
            meta.pop(key, None)
        emit = self._run.events.emit
        if isinstance(decision, Retry):
            meta[NOT_BEFORE] = (now + timedelta(seconds=decision.delay)).isoformat()
            updates: dict[str, Any] = {"status": TaskStatus.QUEUED, "error": result.message}
            await emit(
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
            await emit(
                "task.failed",
                {"task_id": attempt.key, "error": decision.reason, "outcome": result.outcome_kind},
            )
        await self._writes.release(attempt, ClaimStatus.COMPLETED, {**updates, "metadata": meta})

    async def _park(
        self, attempt: Attempt, result: WorkflowResult, park: Park, meta: dict[str, Any]
    ) -> None:
        adapter = attempt.adapter
        self._parks.park(adapter, park)
        meta |= {
            PARKED_UNTIL: park.until.isoformat(),
            PARKED_ADAPTER: adapter,
            PARKED_SINCE: park.since.isoformat(),
            PARKS: park.park,
        }
        updates = {"status": TaskStatus.PARKED, "error": result.message, "metadata": meta}
        await self._run.events.emit(
            "adapter.parked",
            {
                "adapter": adapter,
                "until": park.until.isoformat(),
                "task_id": attempt.key,
                "park": park.park,
                "max_parks": self._parks.policy.config.max_parks,
                "message": result.message,
            },
        )
        await self._writes.release(attempt, ClaimStatus.COMPLETED, updates)

    async def _candidate_ready(self, attempt: Attempt, result: WorkflowResult) -> None:
        """A council candidate passed: it waits, ``merging``, for the comparison."""
        state = await self._run.services.store.get_task_state(attempt.key)
        if state is None:
            return
        kept = {
            "commit": result.commit,
            "files_changed": list(result.files_changed),
            "message": result.message,
        }
        meta = {**state.metadata, CANDIDATE_RESULT: kept}
        updates = {"status": TaskStatus.MERGING, "current_phase": None, "metadata": meta}
        await self._writes.release(attempt, ClaimStatus.COMPLETED, updates)
        await self._run.events.emit(
            "council.candidate_ready",
            {"task_id": attempt.group, "candidate": attempt.key, "adapter": attempt.adapter},
        )


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
