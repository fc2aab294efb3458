"""The write-ahead record of a landing on the team's remote, guarded by the attempt's fence.

The merge queue (remote mode) calls ``before_push`` after it built the merge commit M on the
fetched tip B and before it pushes. Here the attempt's claim is renewed with its fencing token
first: the database refuses a token that no longer holds (``StaleClaim``), so a workstation
that was paused past its lease (SIGSTOP, a long GC pause, a lost network) never pushes work
another workstation has taken over. Then the intent is recorded (namespace
``merge-attempts``, one record per task: B, M, the token, ``prepared``), and after the push
``landed`` marks it ``pushed``. Should the push succeed and its holder die before the task is
written done, git is the truth: the next attempt finds the ``Council-Task`` trailer on the
remote's base and ends the task ``done`` without merging again.
"""

from __future__ import annotations

import time

from orchestrator.errors import StaleClaim, StateError
from orchestrator.events.merge import MergeFenced
from orchestrator.merge.remote import PushIntent
from orchestrator.merge.types import MergeResult
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.context import RunContext

__all__ = ["NAMESPACE", "LandingLog"]

NAMESPACE = "merge-attempts"


class LandingLog:
    def __init__(self, run: RunContext, inflight: InFlight) -> None:
        self._run = run
        self._inflight = inflight

    async def before_push(self, intent: PushIntent) -> None:
        """Check the fence and record the intent; ``StaleClaim`` stops the push."""
        attempt = self._inflight.get(intent.task_id)
        if attempt is None or attempt.lost or not attempt.token:
            raise StaleClaim(f"tasks/{intent.task_id}", attempt.token if attempt else 0, None)
        services = self._run.services
        store = services.store
        try:
            await store.renew_claim(
                intent.task_id, attempt.token, services.config.scheduler.stale_threshold
            )
        except StaleClaim:
            attempt.lose()
            await self._run.events.emit(
                MergeFenced(task_id=intent.task_id, token=attempt.token, base=intent.base)
            )
            raise
        attempt.renewed = time.monotonic()
        await store.put_record(
            NAMESPACE,
            intent.task_id,
            {
                "state": "prepared",
                "base": intent.base,
                "merge_commit": intent.merge_commit,
                "branch_tip": intent.branch_tip,
                "token": attempt.token,
                "holder": self._run.holder,
                "attempt": intent.attempt,
            },
        )

    async def landed(self, task_id: str, merged: MergeResult) -> None:
        """Mark the recorded intent ``pushed`` (an audit trail: the task's own record, written
        done with its merge commit, is what the run reads)."""
        if merged.pushed_to is None:
            return
        store = self._run.services.store
        try:
            record = await store.get_record(NAMESPACE, task_id)
            data = dict(record.data) if record is not None else {}
            data |= {"state": "pushed", "merge_commit": merged.merge_commit}
            await store.put_record(NAMESPACE, task_id, data)
        except StateError:
            pass  # the landing stands; only its audit line is missing
