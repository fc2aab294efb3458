"""The rules every part of the file backend applies to a record: the expected version, the
claim's fencing token, when a lease has lapsed, and what a claim event says."""

from __future__ import annotations

import contextlib
import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from orchestrator.errors import StaleClaim, VersionConflict
from orchestrator.events import Event, EventType
from orchestrator.models import (
    Claim,
    ClaimStatus,
    TaskState,
    utcnow,
)
from orchestrator.state.file.records import RecordKind

__all__ = [
    "STORE_OWNED",
    "check_fence",
    "check_version",
    "claim_event",
    "has_data",
    "lapsed",
    "new_id",
    "remove_temp_files",
]

STORE_OWNED = frozenset({"version", "updated_at"})  # fields only the store writes


def check_version(
    kind: RecordKind[Any], key: str, current: BaseModel | None, expected: int | None
) -> None:
    if expected is None:
        return
    actual = int(getattr(current, "version", 0)) if current is not None else 0
    if actual != expected:
        raise VersionConflict(f"{kind.name}/{key}", expected, actual if current else None)


def check_fence(task_id: str, current: TaskState | None, token: int) -> Claim:
    claim = current.claim if current is not None else None
    if claim is None or claim.token != token or claim.status != ClaimStatus.ACTIVE:
        raise StaleClaim(f"tasks/{task_id}", token, claim.token if claim else None)
    return claim


def lapsed(claim: Claim | None, now: datetime) -> bool:
    return claim is not None and claim.status == ClaimStatus.ACTIVE and claim.expires_at <= now


def claim_event(event_type: EventType, claim: Claim) -> Event:
    return Event(
        type=event_type,
        data={
            "task_id": claim.task_id,
            "holder": claim.holder,
            "token": claim.token,
            "status": claim.status,
            "expires_at": claim.expires_at.isoformat(),
        },
    )


def new_id(prefix: str) -> str:
    stamp = utcnow().strftime("%Y%m%dt%H%M%S%f")
    return f"{prefix}-{stamp}-{secrets.token_hex(3)}"


def has_data(kind: RecordKind[Any], key: str) -> bool:
    return kind.current_path(key).exists() or bool(kind.history_versions(key))


def remove_temp_files(kind: RecordKind[Any], key: str) -> int:
    """Temp files under a record we hold exclusively can only be a crashed writer's."""
    removed = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(kind.dir_for(key)) as entries:
        for entry in entries:
            if entry.name.endswith(".tmp"):
                kind.ops.unlink(Path(entry.path))
                removed += 1
    return removed
