"""Orchestrator events: what happened, when, with a small JSON payload.

Events are the audit trail (``events.jsonl``) and the feed for in-process subscribers (the live
table, plugins, Python callers). They describe; they are never the source of truth, which is
the state store's records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.models import utcnow

__all__ = ["Event", "EventType", "Subscriber"]


class EventType(StrEnum):
    STATE_UPDATED = "state.updated"
    STATE_RECOVERED = "state.recovered"
    STATE_QUARANTINED = "state.quarantined"
    STATE_RESYNC = "state.resync"  # other processes' writes may have gone unheard: read all
    SESSION_CREATED = "session.created"
    SESSION_UPDATED = "session.updated"
    SESSION_RECOVERED = "session.recovered"
    SESSION_REMOVED = "session.removed"
    CHECKPOINT_CREATED = "checkpoint.created"
    CHECKPOINT_RESTORED = "checkpoint.restored"
    CLAIM_ACQUIRED = "claim.acquired"
    CLAIM_RENEWED = "claim.renewed"
    CLAIM_RELEASED = "claim.released"
    CLAIM_EXPIRED = "claim.expired"
    LOCK_CLEANED = "lock.cleaned"
    LOCK_ACQUIRED = "lock.acquired"
    LOCK_RELEASED = "lock.released"
    LOCK_WAITING = "lock.waiting"
    LOCK_DEADLOCK = "lock.deadlock"
    LEGACY_IMPORTED = "legacy.imported"
    MERGE_STARTED = "merge.started"
    MERGE_COMPLETED = "merge.completed"
    MERGE_ALREADY_MERGED = "merge.already_merged"
    MERGE_CONFLICT = "merge.conflict"
    MERGE_WAITING = "merge.waiting"
    MERGE_FAILED = "merge.failed"


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    ts: datetime = Field(default_factory=utcnow)
    data: dict[str, Any] = Field(default_factory=dict)
    level: str = "info"


Subscriber = Callable[[Event], None]
"""An in-process listener; it must not block (hand slow work to a task of your own)."""
