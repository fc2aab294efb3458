"""What a failed attempt becomes: retried later (``RetryPolicy``: a backoff, counted), parked on
a rate limit (``AdapterParks``: no failure counted) or, once the budget is spent, ``failed``
with its outcome kind kept in ``metadata.outcome`` (``rate_limited``, ``auth_required``...).

An attempt the tamper check sent round again (outcome ``rechecked``: something changed outside
the worktrees while it ran beside other sessions, and which one did it cannot be told) is
retried without counting as a failed attempt, up to ``MAX_RECHECKS`` times, then counted like
any other: an innocent session is not failed for good by ``max_retries: 0``, and a culprit
that does it every time still ends.

A failure of the orchestrator's own step (git, store, disk) counts like a failed attempt, so a
persistent fault ends rather than loops; a full disk and files needing a person's repair stop
the run instead (``stopped_for_space``, ``errors.needs_repair``).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio

from orchestrator.errors import (
    CouncilError,
    GitError,
    OutOfSpace,
    StateWriteError,
    needs_repair,
    out_of_space,
)
from orchestrator.events.tasks import AdapterParked, TaskFailed, TaskRetry
from orchestrator.models import ClaimStatus, TaskStatus, utcnow
from orchestrator.retry import Decision, GiveUp, Retry, RetryPolicy
from orchestrator.scheduler.attempts.adapter_parks import AdapterParks
from orchestrator.scheduler.attempts.attempt import (
    MAX_RECHECKS,
    Attempt,
)
from orchestrator.scheduler.attempts.part import AttemptParts
from orchestrator.scheduler.attempts.writes import AttemptWrites
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.rules.parks import Park
from orchestrator.task_meta import TaskMeta
from orchestrator.workflow.task_run import WorkflowResult, WorkflowStatus
from orchestrator.worktrees.tamper.guard import RECHECKED

__all__ = ["Failures", "stopped_for_space"]

log = logging.getLogger(__name__)

RATE_LIMITED = "rate_limited"
NO_CHANGES = "no_changes"


class Failures:
    def __init__(
        self,
        run: RunContext,
        writes: AttemptWrites,
        parks: AdapterParks,
        policy: RetryPolicy,
        parts: AttemptParts,
    ) -> None:
        self._run = run
        self._parts = parts  # commits pushed outside the queue (``part.outside``)
        self._writes = writes
        self._parks = parks
        self._policy = policy

    async def in_orchestrator(self, attempt: Attempt, exc: BaseException) -> None:
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
            layout = await self._run.services.worktrees.layout()
            raise stopped_for_space(attempt, exc, layout.common_dir) from exc
        if needs_repair(exc):
            raise exc
        log.warning("task %s: failed in the orchestrator: %s", attempt.key, exc)
        failed = WorkflowResult(
            WorkflowStatus.FAILED, message=str(exc), retryable=True, outcome_kind="crashed"
        )
        with anyio.CancelScope(shield=True):
            await self.decide(attempt, failed)

    async def decide(self, attempt: Attempt, result: WorkflowResult) -> None:
        """Retry the task later, park it, or end it ``failed``."""
        if attempt.lost or attempt.token == 0:
            return
        state = await self._run.services.store.get_task_state(attempt.key)
        if state is None:
            return
        meta = TaskMeta.read(self._writes.with_usage(attempt, state.metadata))
        retry = meta.retry
        now = utcnow()
        limited = result.status == WorkflowStatus.PARKED or result.outcome_kind == RATE_LIMITED
        decision: Decision | Park
        if limited:
            decision = self._parks.decide(
                attempt.adapter, meta.dump(), result.message, result.retry_at, now
            )
        else:
            self._parks.answered(attempt.adapter)  # the API answered: its limits are over
            rechecks = retry.rechecks or 0
            if result.outcome_kind == RECHECKED and result.retryable and rechecks < MAX_RECHECKS:
                # Not its failure: something changed outside the worktrees while it ran beside
                # others, and which of them did it cannot be told (``tamper.blame``).
                retry.rechecks = rechecks + 1
                decision = Retry(delay=self._policy.next_delay(rechecks + 1))
            else:
                retry.failures = (retry.failures or 0) + 1
                decision = self._policy.decide(result, retry.failures)
                retry.retry_note = None
                if result.outcome_kind == NO_CHANGES:
                    decision = await self._empty_build(attempt, result, decision, meta)
        if isinstance(decision, Park):
            await self._park(attempt, result, decision, meta)
            return
        meta.park.adapter = meta.park.until = meta.park.since = None
        emit = self._run.events.emit
        if isinstance(decision, Retry):
            retry.not_before = now + timedelta(seconds=decision.delay)
            updates: dict[str, Any] = {"status": TaskStatus.QUEUED, "error": result.message}
            await emit(
                TaskRetry(
                    task_id=attempt.key,
                    delay=decision.delay,
                    failures=retry.failures or 0,
                    error=result.message,
                )
            )
        else:
            assert isinstance(decision, GiveUp)
            if result.outcome_kind:
                retry.outcome = result.outcome_kind  # why it failed: rate_limited, auth_required...
            updates = {"status": TaskStatus.FAILED, "error": decision.reason, "finished_at": now}
            await emit(
                TaskFailed(task_id=attempt.key, error=decision.reason, outcome=result.outcome_kind)
            )
        updates["metadata"] = meta.dump()
        await self._writes.release(attempt, ClaimStatus.COMPLETED, updates)

    async def _empty_build(
        self, attempt: Attempt, result: WorkflowResult, decision: Decision, meta: TaskMeta
    ) -> Decision:
        """A build that changed nothing is not chance: the same prompt would change nothing
        again. One retry, at once, with the reason in the build's prompt; then the task ends
        (within the retries the policy allows at all). Unless its CLI pushed its work onto
        the team's base itself (``team.outside_push``, a part): then it ends now, saying so."""
        if attempt.session is not None:
            branch = f"refs/heads/{attempt.session.branch}"
            pushed = await self._parts.outside(attempt, branch, fetch=True)
            if pushed is not None:
                return GiveUp(pushed)
        empties = meta.retry.empty_builds = (meta.retry.empty_builds or 0) + 1
        if isinstance(decision, GiveUp):
            return decision
        if empties >= 2:
            return GiveUp(f"the build changed nothing, again after being told so: {result.message}")
        meta.retry.retry_note = result.message
        return Retry(delay=0.0)

    async def _park(
        self, attempt: Attempt, result: WorkflowResult, park: Park, meta: TaskMeta
    ) -> None:
        adapter = attempt.adapter
        self._parks.park(adapter, park)
        meta.park.until, meta.park.adapter = park.until, adapter
        meta.park.since, meta.park.parks = park.since, park.park
        updates = {"status": TaskStatus.PARKED, "error": result.message, "metadata": meta.dump()}
        await self._run.events.emit(
            AdapterParked(
                adapter=adapter,
                until=park.until.isoformat(),
                task_id=attempt.key,
                park=park.park,
                max_parks=self._parks.policy.config.max_parks,
                message=result.message,
            )
        )
        await self._writes.release(attempt, ClaimStatus.COMPLETED, updates)


def stopped_for_space(attempt: Attempt, exc: BaseException, git_dir: Path) -> CouncilError:
    """The error a full disk stops the run with: ``exc`` itself when it already says what to
    do (a refused state write), else ``OutOfSpace`` saying where the attempt's work is. Git
    names the file it could not write only sometimes ("unable to write loose object file"
    names none): a failed git command says it writes in the repository's ``git_dir``."""
    if isinstance(exc, StateWriteError | OutOfSpace):
        return exc
    detail = str(exc)
    if isinstance(exc, GitError) and f"{git_dir}{os.sep}" not in detail:
        detail += f" (git writes to {git_dir}{os.sep})"
    session = attempt.session
    kept = (
        f"task {attempt.key}'s work stays in its worktree {session.path} (branch {session.branch})"
        if session is not None
        else f"task {attempt.key} had not started"
    )
    return OutOfSpace(detail, kept)
