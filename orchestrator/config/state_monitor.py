"""``state.monitor``: the caretaker every run starts beside its scheduler
(``state.monitor.StateMonitor``), and when the file store's event log is rotated.

Each interval is a duration (``90s``, ``15m``); ``0`` turns that duty off. Sizes are bytes or
a size with a unit (``512KiB``, ``1MB``, ``64MiB``).
"""

from __future__ import annotations

from pydantic import ByteSize, Field

from orchestrator.config.durations import Duration
from orchestrator.config.fields import Section

__all__ = ["StateMonitorConfig"]


class StateMonitorConfig(Section):
    integrity_check: Duration = Field(
        default=300.0,
        description="how often a run re-reads every record (recovering damaged ones from "
        "their history) and looks for records over large_record; 0: never",
    )
    lock_cleanup: Duration = Field(
        default=60.0,
        description="how often a run removes the lock and temp files dead writers left; 0: never",
    )
    checkpoint_every: Duration = Field(
        default=600.0,
        description="how often a run checkpoints its session (council checkpoint list shows "
        "them as 'auto'); 0: never",
    )
    large_record: ByteSize = Field(
        default=ByteSize(1024 * 1024),
        gt=0,
        description="a record bigger than this is flagged (an event during a run, a finding "
        "of council state health)",
    )
    events_rotate_size: ByteSize = Field(
        default=ByteSize(64 * 1024 * 1024),
        gt=0,
        description="file backend: events.jsonl is renamed to a compressed archive beside it "
        "once it grows this big, and a new one started",
    )
