"""Once a council task is over: its candidates share one owner for their file locks, and those
locks go, and the council task's summary is brought up to date with how each candidate ended,
once the council task has ended and none of its candidates (nor its council step) is in flight;
their shared session context goes with the locks.
"""

from __future__ import annotations

from orchestrator.models import TERMINAL_TASK_STATUSES
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.attempts.session_context import SessionContextFeed
from orchestrator.scheduler.candidates import council_summary, group_lock_owner
from orchestrator.scheduler.context import RunContext
from orchestrator.task_meta import TaskMeta

__all__ = ["CouncilClosing"]


class CouncilClosing:
    def __init__(self, run: RunContext, inflight: InFlight) -> None:
        self._run = run
        self._inflight = inflight
        self._contexts = SessionContextFeed(run.services)

    async def release_if_over(self, group: str) -> None:
        """Once council task ``group`` has ended and none of its candidates runs any more:
        its summary shows how each candidate ended, and their shared file locks go."""
        if self._inflight.group_busy(group):
            return
        services = self._run.services
        store = services.store
        state = await store.get_task_state(group)
        if state is not None and state.status not in TERMINAL_TASK_STATUSES:
            return
        await services.locks.release_all_session_locks(group_lock_owner(group))
        await self._contexts.ended(group_lock_owner(group))
        task = self._run.council_tasks().get(group)
        if state is None or task is None:
            return
        meta = TaskMeta.read(state.metadata)
        summary = meta.council.council
        winner = summary.get("winner") if summary is not None else None
        fresh = await council_summary(store, task, winner if isinstance(winner, str) else None)
        if fresh != summary:
            meta.council.council = fresh
            await store.update_task_state(group, {"metadata": meta.dump()})
