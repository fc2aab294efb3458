"""Rules about records that every backend applies the same way: which fields only the store
writes, a claim's fencing token, what a claim event says, how new ids look."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from orchestrator.errors import StaleClaim
from orchestrator.events import Event, EventType
from orchestrator.models import Claim, ClaimStatus, TaskState, utcnow

__all__ = ["STORE_OWNED", "adopted", "check_fence", "claim_event", "new_id"]

STORE_OWNED = frozenset({"version", "updated_at"})  # fields only the store writes


def check_fence(task_id: str, current: TaskState | None, token: int) -> Claim:
    claim = current.claim if current is not None else None
    if claim is None or claim.token != token or claim.status != ClaimStatus.ACTIVE:
        raise StaleClaim(f"tasks/{task_id}", token, claim.token if claim else None)
    return claim


def adopted(claim: Claim, now: datetime, lease_seconds: float) -> Claim:
    """A holder that claims a task it already holds keeps its claim and token, renewed: the
    write of its first claim may have been committed while its answer was lost (a connection
    dropped), or a release of its own failed; either way nobody else holds the task."""
    return claim.model_copy(
        update={"renewed_at": now, "expires_at": now + timedelta(seconds=lease_seconds)}
    )


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
