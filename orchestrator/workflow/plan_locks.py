"""Before build, the files the plan named (its ``FILES:`` line) are locked for the session
(``locks.acquire_missing``: what its lock owner lacks, waiting up to ``PLAN_LOCK_TIMEOUT``);
busy files fail the attempt, retryable. Locks are never released here: the scheduler releases
the session's. The files locked are reported (``TaskRun.files_reported``) for the session
context."""

from __future__ import annotations

import logging

from orchestrator.errors import LockError, PathEscapeError, needs_repair
from orchestrator.workflow.handoffs.document import Handoff
from orchestrator.workflow.progress import BUILD, Stop
from orchestrator.workflow.task_run import TaskRun, WorkflowResult, WorkflowStatus

__all__ = ["PLAN_LOCK_TIMEOUT", "lock_plan_files"]

log = logging.getLogger(__name__)

PLAN_LOCK_TIMEOUT = 60.0


async def lock_plan_files(run: TaskRun, plan: Handoff | None) -> None:
    """Lock what ``plan`` says the build will touch; a ``Stop`` when it is not free."""
    if plan is None or not plan.files_to_touch:
        return
    locks, sid = run.locks, run.lock_session
    paths: list[str] = []
    for path in plan.files_to_touch:
        try:
            paths.append(locks.paths.normalize(path))
        except PathEscapeError as exc:
            log.warning("task %s: plan file %r not locked: %s", run.task.id, path, exc)
    try:
        # Only what the owner lacks, one taker at a time: a council task's candidates share
        # their owner, and two of them may start their builds at once.
        wanted = await locks.acquire_missing(sid, paths, timeout=PLAN_LOCK_TIMEOUT)
    except LockError as exc:
        if needs_repair(exc):
            raise  # nobody holds it: the run stops for the repair (the scheduler's runner)
        raise Stop(
            WorkflowResult(
                status=WorkflowStatus.FAILED,
                phase=BUILD,
                message=f"the plan's files are not free: {exc}",
                retryable=True,
            )
        ) from exc
    if not wanted:
        return
    await run.files_reported(wanted)  # into the session context the others' prompts read
