"""Claims in the PostgreSQL backend: leases on the database's clock, fencing tokens from one
sequence, and a sweep any workstation may run.

A claim takes the task's row ``FOR UPDATE SKIP LOCKED``: a task another workstation is
claiming or writing at this very moment is not waited for, it is simply not ours this time.
Its token comes from ``council.fence_seq``, so it is larger than every token handed out before
on any workstation; renewals and releases carry it, and a write whose token is not the task's
live claim is refused (``StaleClaim``). The sweep expires every active claim whose lease has
lapsed on the database's clock (``SKIP LOCKED`` again: two sweepers never wait on each other).

A lapsed claim whose row stays locked is held by a transaction its workstation stopped in the
middle of (SIGSTOP, a debugger): a transaction is pipelined (``core``), so its server process
waits for the rest of it as an *active* statement, which neither
``idle_in_transaction_session_timeout`` nor ``statement_timeout`` ends before PostgreSQL 17,
and ``SKIP LOCKED`` would pass over that task for as long as the workstation stays stopped:
the team's run waited for it for good. So the sweep also ends the server process of a store
transaction that has waited for its client in the middle of a statement for as long as the
server gives an idle one (``IDLE_IN_TRANSACTION``; ``pg_terminate_backend``): its locks go
with it, the next sweep takes the claim, and the stopped workstation, once it goes on, finds
its connection gone and its claim fenced. A store transaction sends its writes and its commit
back to back (milliseconds), so the same limit as the server's own for an idle transaction
never cuts off a workstation that is running.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from orchestrator.events import Event
from orchestrator.models import Claim, ClaimStatus, TaskState
from orchestrator.safety.crashpoints import crash_point
from orchestrator.state.claim_rules import (
    ClaimUpdates,
    FencedChange,
    ReleaseUpdates,
    acquisition,
    check_fence,
    check_task_id,
    existing_task,
    expiry,
    held_claim,
    release,
    renewal,
    told,
)
from orchestrator.state.postgres.connection import APPLICATION, IDLE_IN_TRANSACTION
from orchestrator.state.postgres.core import Conn, PgCore
from orchestrator.state.postgres.tasks import locked_task, write_task

__all__ = ["PgClaims"]

_log = logging.getLogger(__name__)

# Server processes of the store's transactions (``APPLICATION``) on this database that wait
# for their client in the middle of a pipelined statement, sent longer ago than an idle
# transaction may last: their client stopped between a write and its commit (module doc).
_STOPPED_HOLDERS = (
    "SELECT pid, pg_has_role(usesysid, 'MEMBER') OR pg_has_role('pg_signal_backend', 'MEMBER') "
    "FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s "
    "AND state = 'active' AND wait_event = 'ClientRead' AND xact_start IS NOT NULL "
    "AND query_start <= clock_timestamp() - %s * interval '1 millisecond' "
    "AND pid <> pg_backend_pid()"
)


class PgClaims:
    def __init__(self, core: PgCore) -> None:
        self._core = core

    async def acquire_claim(
        self,
        task_id: str,
        holder: str,
        lease_seconds: float,
        updates: Mapping[str, Any] | ClaimUpdates | None = None,
        *,
        expected_version: int | None = None,
    ) -> Claim | None:
        check_task_id(task_id)

        async def work(conn: Conn, events: list[Event]) -> TaskState | None:
            # The row locked and a fencing token drawn with it, in the round trip of the
            # transaction's start: a token a refused claim drew is never used (the sequence
            # only has to grow).
            cursor = await conn.execute(
                "SELECT doc, nextval('council.fence_seq') FROM council.tasks "
                "WHERE task_id = %s FOR UPDATE SKIP LOCKED",
                (task_id,),
            )
            row = await cursor.fetchone()
            if row is None and await _exists(conn, task_id):
                return None  # another workstation holds its row this very moment
            current = existing_task(task_id, TaskState.model_validate(row[0]) if row else None)
            assert row is not None
            now = await self._core.now(conn)
            write = acquisition(
                current,
                holder,
                now,
                lease_seconds,
                updates,
                expected_version,
                lambda: int(row[1]),
            )
            if write is None:
                return None
            if write.new:
                crash_point("claim.before_record")
            written = await write_task(
                conn, task_id, current, write.fields, now, events, rules=self._core.validators
            )
            events.append(write.event())
            return written

        written = await self._core.atomically(work)
        crash_point("claim.recorded")
        told(updates, written)
        return held_claim(written) if written is not None else None

    async def renew_claim(self, task_id: str, token: int, lease_seconds: float) -> Claim:
        return held_claim(await self._claim_write(task_id, token, renewal(lease_seconds)))

    async def release_claim(
        self,
        task_id: str,
        token: int,
        status: ClaimStatus = ClaimStatus.COMPLETED,
        updates: Mapping[str, Any] | ReleaseUpdates | None = None,
    ) -> TaskState:
        return await self._claim_write(task_id, token, release(status, updates))

    async def _claim_write(self, task_id: str, token: int, change: FencedChange) -> TaskState:
        check_task_id(task_id)

        async def work(conn: Conn, events: list[Event]) -> TaskState:
            current = existing_task(task_id, await locked_task(conn, task_id))
            claim = check_fence(task_id, current, token)
            now = await self._core.now(conn)
            fields = change.fields(claim, now, current)
            new = await write_task(
                conn, task_id, current, fields, now, events, rules=self._core.validators
            )
            events.append(change.event(new))
            return new

        return await self._core.atomically(work)

    async def sweep_expired_claims(self, now: datetime | None = None) -> list[Claim]:
        async def work(conn: Conn, events: list[Event]) -> list[Claim]:
            clock = await self._core.now(conn)
            moment = now or clock
            # Sent with the sweep's own read (one round trip for both, pipelined): whoever it
            # ends frees its locks for the next sweep (module doc).
            stopped = await conn.execute(_STOPPED_HOLDERS, (APPLICATION, IDLE_IN_TRANSACTION))
            cursor = await conn.execute(
                "SELECT task_id FROM council.tasks WHERE claim_status = 'active' "
                "AND claim_expires <= %s ORDER BY task_id FOR UPDATE SKIP LOCKED",
                (moment,),
            )
            await _cut_off(conn, await stopped.fetchall())
            expired: list[Claim] = []
            for (task_id,) in await cursor.fetchall():
                current = await locked_task(conn, task_id)
                write = expiry(current, moment)
                if write is None:
                    continue
                await write_task(
                    conn, task_id, current, write.fields, clock, events, rules=self._core.validators
                )
                events.append(write.event())
                expired.append(write.claim)
            return expired

        return await self._core.atomically(work)


async def _cut_off(conn: Conn, stopped: list[tuple[Any, ...]]) -> None:
    """End the server processes of transactions stopped between a write and their commit
    (``_STOPPED_HOLDERS``: pid, whether this role may end it): their locks go with them, and
    the next sweep takes their claims (module doc)."""
    for pid, may in stopped:
        if may:
            await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        else:
            _log.warning(
                "a stopped workstation's transaction (server process %s) locks a lapsed "
                "claim, and this database role may not end it (pg_signal_backend)",
                pid,
            )


async def _exists(conn: Conn, task_id: str) -> bool:
    cursor = await conn.execute("SELECT 1 FROM council.tasks WHERE task_id = %s", (task_id,))
    return await cursor.fetchone() is not None
