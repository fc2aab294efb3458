"""Claims on tasks in the file backend: leases with fencing tokens from one counter, renewed by
heartbeats, released by their holder, expired by a sweep any process may run. A token is
larger than every earlier token of its task, so a holder whose lease lapsed can write nothing."""

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
from orchestrator.state.file.core import FileCore, load_or_recover
from orchestrator.state.file.rules import lapsed
from orchestrator.state.record_rules import (
    ClaimStep,
    adopted,
    check_fence,
    claim_event,
    claim_step,
    new_claim,
)

__all__ = ["FileClaims"]

log = logging.getLogger(__name__)


class FileClaims:
    def __init__(self, core: FileCore) -> None:
        self._core = core

    async def acquire_claim(
        self,
        task_id: str,
        holder: str,
        lease_seconds: float,
        updates: Mapping[str, Any] | None = None,
        *,
        expected_version: int | None = None,
    ) -> Claim | None:
        core = self._core
        check_id(task_id, "task id")

        def run(events: list[Event]) -> TaskState | None:
            current = load_or_recover(core.tasks, task_id, events)
            if current is None:
                raise RecordNotFound(f"task {task_id!r} does not exist")
            now = utcnow()
            step = claim_step(current, holder, now, expected_version)
            if step is ClaimStep.REFUSE:
                return None
            if step is ClaimStep.ADOPT:
                assert current.claim is not None
                claim, kind = adopted(current.claim, now, lease_seconds), EventType.CLAIM_RENEWED
            else:
                drawn = self._next_token(events)
                claim = new_claim(current, holder, now, lease_seconds, drawn)
                kind = EventType.CLAIM_ACQUIRED
                crash_point("claim.before_record")
            fields = {**(updates or {}), "claim": claim}
            new = core.write_merged(core.tasks, task_id, current, fields, {}, events)
            if step is ClaimStep.NEW:
                crash_point("claim.recorded")
            events.append(claim_event(kind, claim))
            return new

        result = await core.locked_call(core.tasks, task_id, run)
        return result.claim if result is not None else None

    def _next_token(self, events: list[Event]) -> int:
        core = self._core
        with filelock.acquire_blocking(
            core.counters.lock_path("fencing"), timeout=core.lock_timeout, root=core.anchor
        ):
            current = load_or_recover(core.counters, "fencing", events)
            # Not fsynced: a token only has to beat the tokens of its own task, and the claim
            # write takes at least the task's durable last token + 1 (``floor``), so a machine
            # crash that loses the counter's last steps cannot hand out a token twice per task.
            counter = core.write_merged(
                core.counters, "fencing", current, {}, {}, events, announce=False, durable=False
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
        core = self._core
        check_id(task_id, "task id")

        def run(events: list[Event]) -> TaskState:
            current = load_or_recover(core.tasks, task_id, events)
            if current is None:
                raise RecordNotFound(f"task {task_id!r} does not exist")
            claim = check_fence(task_id, current, token)
            fields = change(claim, utcnow())
            new = core.write_merged(core.tasks, task_id, current, fields, {}, events)
            assert new.claim is not None
            events.append(claim_event(event_type, new.claim))
            return new

        return await core.locked_call(core.tasks, task_id, run)

    async def sweep_expired_claims(self, now: datetime | None = None) -> list[Claim]:
        core = self._core
        moment = now or utcnow()
        expired: list[Claim] = []

        def lapsed_tasks() -> list[str]:
            # One worker-thread call looks at every task; only the lapsed ones are locked.
            keys = core.tasks.keys()  # the record directories, not a dict
            found = (core.peek_task(task_id) for task_id in keys)
            return [t.task_id for t in found if t is not None and lapsed(t.claim, moment)]

        for task_id in await anyio.to_thread.run_sync(lapsed_tasks):

            def run(events: list[Event], task_id: str = task_id) -> Claim | None:
                current = load_or_recover(core.tasks, task_id, events)
                if current is None or not lapsed(current.claim, moment):
                    return None  # renewed or released meanwhile
                assert current.claim is not None
                gone = current.claim.model_copy(update={"status": ClaimStatus.EXPIRED})
                core.write_merged(core.tasks, task_id, current, {"claim": gone}, {}, events)
                events.append(claim_event(EventType.CLAIM_EXPIRED, gone))
                return gone

            claim = await core.locked_call(core.tasks, task_id, run)
            if claim is not None:
                expired.append(claim)
        return expired
