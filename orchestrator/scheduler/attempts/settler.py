"""Settling an attempt's result: cancelled, a council candidate, merged (``lander``), or a failure
to retry, park or end (``failures``). A merge the secret gate refused (``SecretInHistory``)
ends the task ``failed``, never retried.

An attempt that ends while the run is stopping (the user's Ctrl-C, SIGTERM, a broken pipe)
goes back to the queue whatever it ended with: a stop is never a failure, a retry, nor an
attempt (``AttemptWrites.requeue`` gives the claim's count back). The CLIs lead process groups
of their own (``process.launch``), so a terminal's Ctrl-C reaches only the orchestrator, which
decides how they stop.

An attempt whose worktree was deleted under it goes back to the queue without a failure
counted (the next attempt checks its branch out again), up to ``max_retries`` times per task;
after that, such an attempt settles like any other (a CLI that deletes its own worktree must
not loop forever).
"""

from __future__ import annotations

import logging

from orchestrator.errors import SecretInHistory
from orchestrator.events.council_mode import CouncilCandidateReady
from orchestrator.events.tasks import TaskRequeued
from orchestrator.models import ClaimStatus, TaskStatus
from orchestrator.retry import RetryPolicy
from orchestrator.scheduler.attempts.adapter_parks import AdapterParks
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.failures import Failures
from orchestrator.scheduler.attempts.lander import Lander
from orchestrator.scheduler.attempts.part import AttemptParts
from orchestrator.scheduler.attempts.writes import AttemptWrites
from orchestrator.scheduler.context import RunContext
from orchestrator.task_meta import TaskMeta
from orchestrator.workflow.task_run import WorkflowResult, WorkflowStatus

__all__ = ["Settler"]

log = logging.getLogger(__name__)

RATE_LIMITED = "rate_limited"
SECRET_IN_WORK = "secret_in_work"  # noqa: S105 (metadata.outcome of a task the gate stopped)


class Settler:
    def __init__(
        self,
        run: RunContext,
        writes: AttemptWrites,
        parks: AdapterParks,
        policy: RetryPolicy,
        lander: Lander,
        parts: AttemptParts,
    ) -> None:
        self._run = run
        self._writes = writes
        self._parks = parks
        self._policy = policy
        self._lander = lander
        self.failures = Failures(run, writes, parks, policy, parts)

    async def failed_in_orchestrator(self, attempt: Attempt, exc: BaseException) -> None:
        """The orchestrator's own step failed in ``attempt`` (``Failures.in_orchestrator``)."""
        await self.failures.in_orchestrator(attempt, exc)

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
            try:
                await self._lander.merge(attempt)
            except SecretInHistory as exc:
                await self.secret_found(attempt, exc)
        elif result.status == WorkflowStatus.HELD:
            await self._held(attempt, result)
        elif self._run.stopping:
            # The user's stop (Ctrl-C, SIGTERM, a broken pipe) ended it, or it ended while the
            # stop was under way: either way the stop is never a failure nor a retry; `council
            # resume` runs it again, uncounted.
            await self._writes.requeue(attempt, "interrupted")
        elif not await self._requeued_for_lost_worktree(attempt):
            await self.failures.decide(attempt, result)

    async def _held(self, attempt: Attempt, result: WorkflowResult) -> None:
        """The spend gate did not start a phase's call: back to the queue, nothing counted
        (no failure, no attempt), its work committed on its branch. A quota's hold holds its
        adapter until the reset (a fallback may take the task); either is kept in the
        record (``TaskMeta.hold``) until the task starts again."""
        if result.retry_at is not None:
            self._parks.hold(attempt.adapter, result.retry_at)
        budget = result.outcome_kind == "budget"
        reason = f"budget: {result.message}" if budget else result.message
        until = None if budget else result.retry_at
        await self._writes.requeue(attempt, result.message, held=reason, held_until=until)

    async def secret_found(self, attempt: Attempt, exc: SecretInHistory) -> None:
        """The merge queue's gate found a secret in the work: failed, never retried (the
        same CLI would write it again); a person looks at the masked branch."""
        log.warning("task %s: %s", attempt.key, exc)
        found = WorkflowResult(
            WorkflowStatus.FAILED, message=str(exc), retryable=False, outcome_kind=exc.outcome
        )
        await self.failures.decide(attempt, found)

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
        meta = TaskMeta.read(state.metadata)
        losses = meta.worktree.losses = (meta.worktree.losses or 0) + 1
        if losses > self._policy.max_retries:
            return False
        updates = {"status": TaskStatus.QUEUED, "current_phase": None, "metadata": meta.dump()}
        await self._writes.release(attempt, ClaimStatus.ABANDONED, updates)
        await self._run.events.emit(
            TaskRequeued(task_id=attempt.key, reason="its worktree was deleted")
        )
        return True

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
        meta = TaskMeta.read(state.metadata)
        meta.council.candidate = kept
        updates = {"status": TaskStatus.MERGING, "current_phase": None, "metadata": meta.dump()}
        await self._writes.release(attempt, ClaimStatus.COMPLETED, updates)
        await self._run.events.emit(
            CouncilCandidateReady(
                task_id=attempt.worktree_task, candidate=attempt.key, adapter=attempt.adapter
            )
        )
