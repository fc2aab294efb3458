"""The task half of the file backend: task records and the claims (leases) on them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread

from orchestrator import filelock
from orchestrator.errors import RecordNotFound, StateError
from orchestrator.events import Event, EventType
from orchestrator.ids import check_id
from orchestrator.models import Claim, ClaimStatus, TaskState, utcnow
from orchestrator.safety.crashpoints import crash_point
from orchestrator.state.file.base import (
    FileBase,
    check_fence,
    check_version,
    claim_event,
    lapsed,
    load_or_recover,
)
from orchestrator.state.file.codec import RecordDamaged

__all__ = ["FileTasks"]

log = logging.getLogger(__name__)


class FileTasks(FileBase):
    async def get_task_state(self, task_id: str) -> TaskState | None:
        return await self._read(self.tasks, task_id)

    async def update_task_state(
        self,
        task_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        fencing_token: int | None = None,
        durable: bool = True,
    ) -> TaskState:
        check_id(task_id, "task id")

        def run(events: list[Event]) -> TaskState:
            current = load_or_recover(self.tasks, task_id, events)
            check_version(self.tasks, task_id, current, expected_version)
            if fencing_token is not None:
                check_fence(task_id, current, fencing_token)
            return self._write_merged(
                self.tasks, task_id, current, updates, {}, events, durable=durable
            )

        async with self._locked(self.tasks, task_id):
            return await self._in_thread(run)

    async def task_history(self, task_id: str) -> list[TaskState]:
        current = await self.get_task_state(task_id)
        if current is None:
            return []
        async with self._locked(self.tasks, task_id, shared=True):
            found = await anyio.to_thread.run_sync(lambda: list(self.tasks.iter_history(task_id)))
        # After a recovery the current version is linked into history too (see records).
        return [t for t in found if t.version < current.version]

    def _peek_task(self, task_id: str) -> TaskState | None:
        try:
            return self.tasks.load(task_id)
        except RecordDamaged:
            return None  # the next locked read recovers it

    # -- claims -----------------------------------------------------------------------------

    async def acquire_claim(
        self,
        task_id: str,
        holder: str,
        lease_seconds: float,
        updates: Mapping[str, Any] | None = None,
    ) -> Claim | None:
        check_id(task_id, "task id")

        def run(events: list[Event]) -> TaskState | None:
            current = load_or_recover(self.tasks, task_id, events)
            if current is None:
                raise RecordNotFound(f"task {task_id!r} does not exist")
            now = utcnow()
            if current.claim is not None and current.claim.is_live(now):
                return None
            floor = current.claim.token + 1 if current.claim else 1
            token = max(self._next_token(events), floor)
            claim = Claim(
                task_id=task_id,
                holder=holder,
                token=token,
                acquired_at=now,
                renewed_at=now,
                expires_at=now + timedelta(seconds=lease_seconds),
            )
            fields = {**(updates or {}), "claim": claim}
            crash_point("claim.before_record")
            new = self._write_merged(self.tasks, task_id, current, fields, {}, events)
            crash_point("claim.recorded")
            events.append(claim_event(EventType.CLAIM_ACQUIRED, claim))
            return new

        async with self._locked(self.tasks, task_id):
            result = await self._in_thread(run)
        return result.claim if result is not None else None

    def _next_token(self, events: list[Event]) -> int:
        with filelock.acquire_blocking(
            self.counters.lock_path("fencing"), timeout=self.lock_timeout, root=self.anchor
        ):
            current = load_or_recover(self.counters, "fencing", events)
            # Not fsynced: a token only has to beat the tokens of its own task, and the claim
            # write takes at least the task's durable last token + 1 (``floor``), so a machine
            # crash that loses the counter's last steps cannot hand out a token twice per task.
            counter = self._write_merged(
                self.counters, "fencing", current, {}, {}, events, announce=False, durable=False
            )
            return counter.version

    async def renew_claim(self, task_id: str, token: int, lease_seconds: float) -> Claim:
        def change(claim: Claim, now: datetime) -> dict[str, Any]:
            renewed = claim.model_copy(
                update={"renewed_at": now, "expires_at": now + timedelta(seconds=lease_seconds)}
            )
            return {"claim": renewed}

        new = await self._claim_write(task_id, token, change, EventType.CLAIM_RENEWED)
        assert new.claim is not None
        return new.claim

    async def release_claim(
        self,
        task_id: str,
        token: int,
        status: ClaimStatus = ClaimStatus.COMPLETED,
        updates: Mapping[str, Any] | None = None,
    ) -> TaskState:
        if status not in (ClaimStatus.COMPLETED, ClaimStatus.ABANDONED):
            raise StateError(f"a claim is released as completed or abandoned, not {status}")

        def change(claim: Claim, now: datetime) -> dict[str, Any]:
            released = claim.model_copy(update={"status": status, "released_at": now})
            return {**(updates or {}), "claim": released}

        return await self._claim_write(task_id, token, change, EventType.CLAIM_RELEASED)

    async def _claim_write(
        self,
        task_id: str,
        token: int,
        change: Callable[[Claim, datetime], Mapping[str, Any]],
        event_type: EventType,
    ) -> TaskState:
        check_id(task_id, "task id")

        def run(events: list[Event]) -> TaskState:
            current = load_or_recover(self.tasks, task_id, events)
            if current is None:
                raise RecordNotFound(f"task {task_id!r} does not exist")
            claim = check_fence(task_id, current, token)
            fields = change(claim, utcnow())
            new = self._write_merged(self.tasks, task_id, current, fields, {}, events)
            assert new.claim is not None
            events.append(claim_event(event_type, new.claim))
            return new

        async with self._locked(self.tasks, task_id):
            return await self._in_thread(run)

    async def sweep_expired_claims(self, now: datetime | None = None) -> list[Claim]:
        moment = now or utcnow()
        expired: list[Claim] = []

        def lapsed_tasks() -> list[str]:
            # One worker-thread call looks at every task; only the lapsed ones are locked.
            keys = self.tasks.keys()  # the record directories, not a dict
            found = (self._peek_task(task_id) for task_id in keys)
            return [t.task_id for t in found if t is not None and lapsed(t.claim, moment)]

        for task_id in await anyio.to_thread.run_sync(lapsed_tasks):

            def run(events: list[Event], task_id: str = task_id) -> Claim | None:
                current = load_or_recover(self.tasks, task_id, events)
                if current is None or not lapsed(current.claim, moment):
                    return None  # renewed or released meanwhile
                assert current.claim is not None
                gone = current.claim.model_copy(update={"status": ClaimStatus.EXPIRED})
                self._write_merged(self.tasks, task_id, current, {"claim": gone}, {}, events)
                events.append(claim_event(EventType.CLAIM_EXPIRED, gone))
                return gone

            async with self._locked(self.tasks, task_id):
                claim = await self._in_thread(run)
            if claim is not None:
                expired.append(claim)
        return expired

    # -- sessions ---------------------------------------------------------------------------
