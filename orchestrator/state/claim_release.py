"""A claim's release made first in another store call (``release_claim_then_delete_made``).

A room that releases a claim right before a store call of another room's (the scheduler's
landing, before its worktree's removal and its records' deletion) hands the release over as a
``ReleaseFirst`` instead of making a store call of its own: the store writes it first, then
runs that call, in one worker-thread call where it can (the file store). ``then`` is blocking
work run right after the release is written, before anything else of the call (a crash
point); it must not raise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.models import ClaimStatus, TaskState
from orchestrator.state.claim_rules import ReleaseUpdates

__all__ = ["ReleaseFirst"]


def _nothing() -> None:
    """No step after the release."""


@dataclass(frozen=True, slots=True)
class ReleaseFirst:
    """``release_claim(task_id, token, status, updates)`` made first in another call; ``told``
    is given the task it wrote, on the event loop, once the release is written (module doc)."""

    task_id: str
    token: int
    status: ClaimStatus
    updates: Mapping[str, Any] | ReleaseUpdates | None
    told: Callable[[TaskState], None]
    then: Callable[[], None] = _nothing
