"""The sweep of lapsed claims, which any orchestrator on the store may run.

Claims whose lease lapsed are expired; their tasks go back to the queue with a backoff, or
fail once they used up ``max_retries``; an attempt of ours whose claim lapsed is cancelled and
may not write again. Another session's tasks are left to their own scheduler. When a swept
claim was held by another orchestrator, whatever a dead one left running is stopped first
(``runner.orphans``): its CLIs would otherwise go on beside the next attempt. The session
context of a task swept from under another orchestrator goes too (that orchestrator is gone, or
cut off, and would never remove it): other sessions' prompts stop naming its files.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio.to_thread

from orchestrator.coordination.service import sweep_stale
from orchestrator.errors import RunError
from orchestrator.events.phases import CliOrphansLeft
from orchestrator.events.tasks import TaskSwept
from orchestrator.models import TaskStatus, utcnow
from orchestrator.radar.snapshot import sweep_stale_indexes
from orchestrator.retry import RetryPolicy
from orchestrator.runner.orphans import stop_orphans
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.attempts.session_context import SessionContextFeed
from orchestrator.scheduler.context import RunContext
from orchestrator.task_meta import TaskMeta

__all__ = ["Sweeper"]


class Sweeper:
    def __init__(self, run: RunContext, policy: RetryPolicy) -> None:
        self._run = run
        self._policy = policy
        self._contexts = SessionContextFeed(run.services)

    async def stop_orphans(self) -> None:
        """Stop what dead orchestrators left running in this repository (``orphans``);
        ``RunError`` when some of it does not die."""
        services = self._run.services
        layout = await services.worktrees.layout()
        await stop_orphans(services.store, layout.council)
        await self.sweep_scratch()

    async def sweep_scratch(self) -> None:
        """What killed runs left in the machine's temporary directory: the council servers'
        socket directories, and the radar's scratch indexes of a look that died with its
        process (each once old enough that no live run can be using it). At a run's start and
        a resume's."""
        await anyio.to_thread.run_sync(_sweep_scratch)

    async def sweep(self, inflight: InFlight) -> None:
        run = self._run
        store = run.services.store
        swept = await store.sweep_expired_claims()
        if any(claim.holder != run.holder for claim in swept):
            try:
                await self.stop_orphans()
            except RunError as exc:
                await run.events.emit(CliOrphansLeft(error=str(exc)))
        for claim in swept:
            attempt = inflight.get(claim.task_id)
            if attempt is not None and attempt.token == claim.token:
                attempt.lose()
                attempt.cancel.set()
            state = await store.get_task_state(claim.task_id)
            session = None if state is None else TaskMeta.read(state.metadata).worktree.session
            if attempt is None and session is not None:
                await self._contexts.swept(claim.task_id, session)
            if state is None or state.session_id != run.session_id:
                continue  # another run's task: its own scheduler settles it
            if state.status not in (TaskStatus.RUNNING, TaskStatus.MERGING):
                continue
            meta = TaskMeta.read(state.metadata)
            failures = meta.retry.failures = (meta.retry.failures or 0) + 1
            error = f"claim of {claim.holder} expired (no heartbeat)"
            updates: dict[str, Any]
            if failures > self._policy.max_retries:
                reason = f"gave up after {failures} attempts; last error: {error}"
                updates = {"status": TaskStatus.FAILED, "error": reason, "finished_at": utcnow()}
            else:
                delay = self._policy.next_delay(failures)
                meta.retry.not_before = utcnow() + timedelta(seconds=delay)
                updates = {"status": TaskStatus.QUEUED, "error": error}
            await store.update_task_state(claim.task_id, {**updates, "metadata": meta.dump()})
            await run.events.emit(
                TaskSwept(task_id=claim.task_id, holder=claim.holder, status=updates["status"])
            )


def _sweep_scratch() -> None:
    """What killed processes left in the machine's temporary directory (blocking)."""
    sweep_stale()
    sweep_stale_indexes()
