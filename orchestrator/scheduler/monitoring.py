"""The state monitor a run starts beside its ticks (``state.monitor.StateMonitor``), set up
from ``state.monitor`` in the run config."""

from __future__ import annotations

import logging

from orchestrator.config.run import RunConfig
from orchestrator.state.monitor import StateMonitor
from orchestrator.state.protocol import StateStore

__all__ = ["run_monitor"]

log = logging.getLogger(__name__)


async def run_monitor(store: StateStore, config: RunConfig, session_id: str | None) -> None:
    """Run the monitor of ``session_id``'s run until cancelled. Lapsed claims are left to
    the scheduler's own sweep, which knows what becomes of their tasks."""
    knobs = config.state.monitor
    monitor = StateMonitor(
        store,
        lock_cleanup_interval=knobs.lock_cleanup,
        verify_interval=knobs.integrity_check,
        checkpoint_interval=knobs.checkpoint_every,
        large_record_bytes=int(knobs.large_record),
        session_id=session_id,
        sweep_claims=False,
    )
    try:
        await monitor.run()
    finally:
        stats = monitor.stats
        log.debug(
            "state monitor: %d checkpoints, %d stale locks cleaned, %d records recovered, "
            "%d flagged large, %d failures",
            stats.checkpoints,
            stats.locks_cleaned,
            stats.records_recovered,
            stats.records_large,
            len(stats.failures),
        )
