"""The store's caretaker: a background task that keeps a long run's state healthy.

Every run starts one beside its scheduler (``Scheduler._ticks``, in the run's task group, so
it ends with the run), timed by ``state.monitor`` in the run config. At its own interval each
duty runs:

- ``clean_up``: remove lock and temp files left by dead processes and keyed records that
  expired (and, outside a run, sweep
  claims whose lease lapsed: inside one the scheduler's ``Sweeper`` does that, since only it
  knows how to put their tasks back in the queue);
- ``verify``: re-read every record, recovering damaged ones from history, and flag each record
  over the size threshold once (a ``state.record_large`` warning event; ``council state
  health`` names them too);
- ``checkpoint``: checkpoint the run's session (every active session when none is given).

A duty that fails is logged and tried again next time: the monitor must never take a run down.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from orchestrator.events.state import StateRecordLarge
from orchestrator.state.health import DEFAULT_LARGE_RECORD_BYTES
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
    records_large: int = 0
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
        large_record_bytes: int = DEFAULT_LARGE_RECORD_BYTES,
        session_id: str | None = None,
        sweep_claims: bool = True,
    ) -> None:
        self.store = store
        self.stats = MonitorStats()
        self._large_record_bytes = large_record_bytes
        self._session_id = session_id
        self._sweep_claims = sweep_claims
        self._flagged: set[tuple[str, str]] = set()  # records said to be large already
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
            log.warning("state monitor: %s failed: %s", duty.__name__, exc, exc_info=True)
            self.stats.failures.append(f"{duty.__name__}: {exc}")

    async def clean_up(self) -> None:
        if self._sweep_claims:
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
        health = await self.store.health(large_record_bytes=self._large_record_bytes)
        for record in health.over_threshold:
            if (record.kind, record.key) in self._flagged:
                continue
            self._flagged.add((record.kind, record.key))
            self.stats.records_large += 1
            await self.store.emit(
                StateRecordLarge(
                    kind=record.kind,
                    key=record.key,
                    size=record.size,
                    threshold=self._large_record_bytes,
                )
            )

    async def checkpoint(self) -> None:
        if self._session_id is not None:
            session_ids = [self._session_id]
        else:
            session_ids = [s.session_id for s in await self.store.get_active_sessions()]
        for session_id in session_ids:
            await self.store.create_checkpoint(session_id, "auto")
            self.stats.checkpoints += 1
