"""The state store's events: record writes and recoveries, sessions, checkpoints, claims."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from orchestrator.events.base import TaskEvent, TypedEvent

__all__ = [
    "CheckpointCreated",
    "CheckpointRestored",
    "ClaimAcquired",
    "ClaimExpired",
    "ClaimReleased",
    "ClaimRenewed",
    "LegacyImported",
    "SessionCreated",
    "SessionRecovered",
    "SessionRemoved",
    "SessionUpdated",
    "StateQuarantined",
    "StateRecordLarge",
    "StateRecovered",
    "StateResync",
    "StateUpdated",
]

_TASKS = "tasks"  # the record kind whose key is a task id


class StateUpdated(TypedEvent):
    """A record was written (``kind`` is its namespace, ``key`` its id); ``remote`` when
    another workstation wrote it (PostgreSQL)."""

    type: Literal["state.updated"] = "state.updated"
    kind: str
    key: str
    version: int | None = None
    fields: list[str] | None = None
    remote: bool | None = None

    @property
    def task_id(self) -> str | None:
        """The task whose record this is; None for a record of another kind."""
        return self.key if self.kind == _TASKS else None


class StateRecovered(TypedEvent):
    """A damaged or missing record was recovered (from a version of its history, or started
    afresh)."""

    type: Literal["state.recovered"] = "state.recovered"
    level: str = "warning"
    kind: str
    key: str
    reason: str
    quarantined: str | None = None
    recovered_from_version: int | None = None
    new_version: int | None = None
    started_afresh: bool | None = None
    remote: bool | None = None  # recovered by another workstation (PostgreSQL)

    @property
    def task_id(self) -> str | None:
        return self.key if self.kind == _TASKS else None


class StateQuarantined(TypedEvent):
    """A damaged record was moved aside to ``quarantined``."""

    type: Literal["state.quarantined"] = "state.quarantined"
    level: str = "warning"
    kind: str
    key: str
    quarantined: str | None = None


class StateRecordLarge(TypedEvent):
    """A record grew past ``state.monitor.large_record`` (said once per record and run):
    every write rewrites it whole, so it slows the run down as it grows."""

    type: Literal["state.record_large"] = "state.record_large"
    level: str = "warning"
    kind: str
    key: str
    size: int
    threshold: int


class StateResync(TypedEvent):
    """Writes of other processes may have gone unheard: read everything again."""

    type: Literal["state.resync"] = "state.resync"
    reason: str
    remote: bool | None = None


class SessionCreated(TypedEvent):
    type: Literal["session.created"] = "session.created"
    session_id: str


class SessionUpdated(TypedEvent):
    type: Literal["session.updated"] = "session.updated"
    session_id: str


class SessionRemoved(TypedEvent):
    type: Literal["session.removed"] = "session.removed"
    session_id: str


class SessionRecovered(TypedEvent):
    """An interrupted session made runnable again; ``requeued`` are its tasks put back."""

    type: Literal["session.recovered"] = "session.recovered"
    session_id: str
    requeued: list[str] = Field(default_factory=list)


class CheckpointCreated(TypedEvent):
    type: Literal["checkpoint.created"] = "checkpoint.created"
    checkpoint_id: str
    session_id: str
    reason: str


class CheckpointRestored(TypedEvent):
    type: Literal["checkpoint.restored"] = "checkpoint.restored"
    checkpoint_id: str
    session_id: str


class _ClaimEvent(TaskEvent):
    holder: str
    token: int
    status: str
    expires_at: datetime


class ClaimAcquired(_ClaimEvent):
    type: Literal["claim.acquired"] = "claim.acquired"


class ClaimRenewed(_ClaimEvent):
    type: Literal["claim.renewed"] = "claim.renewed"


class ClaimReleased(_ClaimEvent):
    type: Literal["claim.released"] = "claim.released"


class ClaimExpired(_ClaimEvent):
    type: Literal["claim.expired"] = "claim.expired"


class LegacyImported(TypedEvent):
    """Sessions of an older state file were imported (``source`` kept as ``backup``)."""

    type: Literal["legacy.imported"] = "legacy.imported"
    source: str
    backup: str
    sessions: list[str] = Field(default_factory=list)
