"""The lock manager's events: file locks and the merge lock, waits and deadlocks."""

from __future__ import annotations

from typing import Literal

from orchestrator.events.base import TypedEvent

__all__ = ["LockAcquired", "LockCleaned", "LockDeadlock", "LockReleased", "LockWaiting"]

LockKind = Literal["file", "merge"]


class LockAcquired(TypedEvent):
    """``session`` holds a lock: a file's (``path``) or the merge lock."""

    type: Literal["lock.acquired"] = "lock.acquired"
    lock: LockKind
    session: str
    path: str | None = None
    token: int | None = None
    reclaimed_from: str | None = None  # the dead session whose entry this one replaced


class LockReleased(TypedEvent):
    """``stale``: the entry of a dead process, dropped by another."""

    type: Literal["lock.released"] = "lock.released"
    lock: LockKind
    session: str
    path: str | None = None
    token: int | None = None
    stale: bool | None = None


class LockWaiting(TypedEvent):
    type: Literal["lock.waiting"] = "lock.waiting"
    session: str
    path: str
    owner: str


class LockDeadlock(TypedEvent):
    """Waiting for ``path`` would close ``cycle`` (session, path it waits for): refused."""

    type: Literal["lock.deadlock"] = "lock.deadlock"
    level: str = "warning"
    session: str
    path: str
    cycle: list[list[str]]


class LockCleaned(TypedEvent):
    type: Literal["lock.cleaned"] = "lock.cleaned"
    count: int
