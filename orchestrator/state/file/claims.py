"""Claims on tasks in the file backend: leases with fencing tokens from one counter, renewed by
heartbeats, released by their holder, expired by a sweep any process may run. A token is
larger than every earlier token of its task, so a holder whose lease lapsed can write nothing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import anyio.to_thread

from orchestrator import filelock
from orchestrator.events import Event
from orchestrator.models import Claim, ClaimStatus, TaskState, utcnow
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
    lapsed,
    release,
    renewal,
    told,
)
from orchestrator.state.file.core import FileCore, load_or_recover

__all__ = ["FileClaims"]

log = logging.getLogger(__name__)


# Fencing tokens taken from the counter at a time: one counter write hands out this many.
TOKEN_BLOCK = 64


class FileClaims:
    def __init__(self, core: FileCore) -> None:
        self._core = core
        # The block of tokens this store holds: the next one and the end (exclusive).
        self._tokens = (0, 0)
        self._tokens_lock = threading.Lock()  # claims of different tasks run in parallel

    async def acquire_claim(
        self,
        task_id: str,
        holder: str,
        lease_seconds: float,
        updates: Mapping[str, Any] | ClaimUpdates | None = None,
        *,
        expected_version: int | None = None,
    ) -> Claim | None:
        core = self._core
        check_task_id(task_id)

        def run(events: list[Event]) -> TaskState | None:
            current = existing_task(task_id, load_or_recover(core.tasks, task_id, events))
            write = acquisition(
                current,
                holder,
                utcnow(),
                lease_seconds,
                updates,
                expected_version,
                lambda: self._next_token(events),
            )
            if write is None:
                return None
            if write.new:
                crash_point("claim.before_record")
            new = core.write_merged(core.tasks, task_id, current, write.fields, {}, events)
            if write.new:
                crash_point("claim.recorded")
            events.append(write.event())
            return new

        result = await core.locked_call(core.tasks, task_id, run)
        told(updates, result)
        return result.claim if result is not None else None

    def _next_token(self, events: list[Event]) -> int:
        """The next token of this store's block; a new block when it is spent. A counter
        version ``v`` is the block ``v * TOKEN_BLOCK`` to ``(v + 1) * TOKEN_BLOCK - 1``: each
        version is one writer's (under the counter's lock), so two stores, or a store before
        and after a restart, never hand out the same token, and each store's tokens grow
        (tokens from before blocks, the versions themselves, are all below the first block).
        What a token must do holds as before: be unlike every earlier token of its task, and
        above the last (the claim takes at least the task's last token + 1, ``floor``)."""
        with self._tokens_lock:
            token, end = self._tokens
            if token >= end:
                version = self._counter_step(events)
                token, end = version * TOKEN_BLOCK, (version + 1) * TOKEN_BLOCK
            self._tokens = (token + 1, end)
            return token

    def _counter_step(self, events: list[Event]) -> int:
        core = self._core
        with filelock.acquire_blocking(
            core.counters.lock_path("fencing"),
            timeout=core.lock_timeout,
            root=core.anchor,
            directory=True,
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
        core = self._core
        check_task_id(task_id)

        def run(events: list[Event]) -> TaskState:
            current = existing_task(task_id, load_or_recover(core.tasks, task_id, events))
            claim = check_fence(task_id, current, token)
            fields = change.fields(claim, utcnow(), current)
            new = core.write_merged(core.tasks, task_id, current, fields, {}, events)
            events.append(change.event(new))
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
                write = expiry(current, moment)
                if write is None:
                    return None  # renewed or released meanwhile
                core.write_merged(core.tasks, task_id, current, write.fields, {}, events)
                events.append(write.event())
                return write.claim

            claim = await core.locked_call(core.tasks, task_id, run)
            if claim is not None:
                expired.append(claim)
        return expired
