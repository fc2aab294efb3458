"""Claims in the PostgreSQL backend: leases on the database's clock, fencing tokens from one
sequence, and a sweep any workstation may run.

A claim takes the task's row ``FOR UPDATE SKIP LOCKED``: a task another workstation is
claiming or writing at this very moment is not waited for, it is simply not ours this time.
Its token comes from ``council.fence_seq``, so it is larger than every token handed out before
on any workstation; renewals and releases carry it, and a write whose token is not the task's
live claim is refused (``StaleClaim``). The sweep expires every active claim whose lease has
lapsed on the database's clock (``SKIP LOCKED`` again: two sweepers never wait on each other).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from orchestrator.errors import RecordNotFound, StateError
from orchestrator.events import Event, EventType
from orchestrator.ids import check_id
from orchestrator.models import Claim, ClaimStatus, TaskState
from orchestrator.safety.crashpoints import crash_point
from orchestrator.state.postgres.core import Conn, PgCore
from orchestrator.state.postgres.tasks import locked_task, write_task
from orchestrator.state.record_rules import (
    ClaimStep,
    adopted,
    check_fence,
    claim_event,
    claim_step,
    new_claim,
)

__all__ = ["PgClaims"]


class PgClaims:
    def __init__(self, core: PgCore) -> None:
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
        check_id(task_id, "task id")

        async def work(conn: Conn, events: list[Event]) -> Claim | None:
            # The row locked and a fencing token drawn with it, in the round trip of the
            # transaction's start: a token a refused claim drew is never used (the sequence
            # only has to grow).
            cursor = await conn.execute(
                "SELECT doc, nextval('council.fence_seq') FROM council.tasks "
                "WHERE task_id = %s FOR UPDATE SKIP LOCKED",
                (task_id,),
            )
            row = await cursor.fetchone()
            current = TaskState.model_validate(row[0]) if row is not None else None
            if current is None:
                if await _exists(conn, task_id):
                    return None  # another workstation holds its row this very moment
                raise RecordNotFound(f"task {task_id!r} does not exist")
            now = await self._core.now(conn)
            step = claim_step(current, holder, now, expected_version)
            if step is ClaimStep.REFUSE:
                return None
            if step is ClaimStep.ADOPT:
                assert current.claim is not None
                claim, kind = adopted(current.claim, now, lease_seconds), EventType.CLAIM_RENEWED
            else:
                assert row is not None
                claim = new_claim(current, holder, now, lease_seconds, int(row[1]))
                kind = EventType.CLAIM_ACQUIRED
                crash_point("claim.before_record")
            fields = {**(updates or {}), "claim": claim}
            await write_task(
                conn, task_id, current, fields, now, events, rules=self._core.validators
            )
            events.append(claim_event(kind, claim))
            return claim

        claim = await self._core.atomically(work)
        crash_point("claim.recorded")
        return claim

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

        async def work(conn: Conn, events: list[Event]) -> TaskState:
            current = await locked_task(conn, task_id)
            if current is None:
                raise RecordNotFound(f"task {task_id!r} does not exist")
            check_fence(task_id, current, token)
            assert current.claim is not None
            now = await self._core.now(conn)
            new = await write_task(
                conn,
                task_id,
                current,
                change(current.claim, now),
                now,
                events,
                rules=self._core.validators,
            )
            assert new.claim is not None
            events.append(claim_event(event_type, new.claim))
            return new

        return await self._core.atomically(work)

    async def sweep_expired_claims(self, now: datetime | None = None) -> list[Claim]:
        async def work(conn: Conn, events: list[Event]) -> list[Claim]:
            clock = await self._core.now(conn)
            moment = now or clock
            cursor = await conn.execute(
                "SELECT task_id FROM council.tasks WHERE claim_status = 'active' "
                "AND claim_expires <= %s ORDER BY task_id FOR UPDATE SKIP LOCKED",
                (moment,),
            )
            expired: list[Claim] = []
            for (task_id,) in await cursor.fetchall():
                current = await locked_task(conn, task_id)
                if current is None or current.claim is None:
                    continue
                gone = current.claim.model_copy(update={"status": ClaimStatus.EXPIRED})
                await write_task(
                    conn,
                    task_id,
                    current,
                    {"claim": gone},
                    clock,
                    events,
                    rules=self._core.validators,
                )
                events.append(claim_event(EventType.CLAIM_EXPIRED, gone))
                expired.append(gone)
            return expired

        return await self._core.atomically(work)


async def _exists(conn: Conn, task_id: str) -> bool:
    cursor = await conn.execute("SELECT 1 FROM council.tasks WHERE task_id = %s", (task_id,))
    return await cursor.fetchone() is not None
