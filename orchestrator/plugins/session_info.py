"""What observer plugins are told about one CLI session (one phase of one task, one CLI run).

``on_session_start`` and ``on_session_end`` receive a ``SessionInfo``; it is a frozen value, so
a plugin can keep it (for a dashboard, a metrics exporter) without seeing it change later.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.models import utcnow

__all__ = ["SessionInfo"]


class SessionInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: str  # the orchestrator's id of this CLI session
    task_id: str
    phase: str
    adapter: str  # the configured adapter name (the key under `adapters:` in the run config)
    attempt: int = 1
    workdir: Path | None = None  # the task's worktree
    native_session_id: str | None = None  # the CLI's own id, when resuming one
    started_at: datetime = Field(default_factory=utcnow)
