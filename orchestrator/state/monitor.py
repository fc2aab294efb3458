"""The store's caretaker: a background task that keeps a long run's state healthy.

At its own interval each duty runs: sweep claims whose lease lapsed, clean lock and temp
files left by dead processes and remove keyed records that expired; re-verify every record
(recovering damaged ones from history); checkpoint every active session. A duty that fails
is logged and tried again next time: the monitor must never take a run down.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from orchestrator.state.protocol import StateStore

__all__ = ["MonitorStats", "StateMonitor"]

log = logging.getLogger(__name__)


@dataclass
class MonitorStats:
    claims_expired: int = 0
    locks_cleaned: int = 0
    records_expired: int = 0
    records_recovered: int = 0
    records_unrecoverable: int = 0
    checkpoints: int = 0
    failures: list[str] = field(default_factory=list)


class StateMonitor:
    def __init__(
        self,
        store: StateStore,
        *,
        lock_cleanup_interval: float = 60.0,
        verify_interval: float = 300.0,
        checkpoint_interval: float = 600.0,
    ) -> None:
        self.store = store
        self.stats = MonitorStats()
        self._duties: list[tuple[float, Callable[[], Awaitable[None]]]] = [
            (lock_cleanup_interval, self.clean_up),
            (verify_interval, self.verify),
            (checkpoint_interval, self.checkpoint),
        ]

    async def run(self) -> None:
        """Run every duty at its interval until cancelled (start it in a task group)."""
        async with anyio.create_task_group() as group:
            for interval, duty in self._duties:
                if interval > 0 and math.isfinite(interval):
                    group.start_soon(self._every, interval, duty)

    async def run_once(self) -> MonitorStats:
        for _, duty in self._duties:
            await self._guarded(duty)
        return self.stats

    async def _every(self, interval: float, duty: Callable[[], Awaitable[None]]) -> None:
        while True:
            await anyio.sleep(interval)
            await self._guarded(duty)

    async def _guarded(self, duty: Callable[[], Awaitable[None]]) -> None:
        try:
            await duty()
        except Exception as exc:
            log.exception("state monitor: %s failed", duty.__name__)
            self.stats.failures.append(f"{duty.__name__}: {exc}")

    async def clean_up(self) -> None:
        self.stats.claims_expired += len(await self.store.sweep_expired_claims())
        self.stats.locks_cleaned += await self.store.clean_stale_locks()
        self.stats.records_expired += await self.store.purge_expired()

    async def verify(self) -> None:
        for problem in await self.store.verify_records():
            if problem.recovered:
                self.stats.records_recovered += 1
            else:
                self.stats.records_unrecoverable += 1
                log.error("state monitor: %s/%s: %s", problem.kind, problem.key, problem.detail)

    async def checkpoint(self) -> None:
        for session in await self.store.get_active_sessions():
            await self.store.create_checkpoint(session.session_id, "auto")
            self.stats.checkpoints += 1
