"""Commits the team's base gained that no merge queue landed (a push by hand, or by a CLI that
reached the remote), said once each: a warning and a ``merge.outside`` event. Such a commit
stays where it is, is no landing, and nothing of it counts as a task's landed work. Remote mode
only: a local base moves by the user's own hand (and a CLI that moves it is the tamper check's,
``worktrees.tamper``). The queue calls ``tell`` after each read of the remote's base."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from orchestrator.events import Event
from orchestrator.events.merge import BaseMovedOutside

__all__ = ["tell"]

log = logging.getLogger(__name__)


async def tell(
    found: Iterable[tuple[str, str]],
    *,
    base_branch: str,
    remote: str | None,
    emit: Callable[[Event], Awaitable[None]],
) -> None:
    """Say each ``(sha, subject)`` of ``found`` (``TaskIndex.take_outside``)."""
    where = f"{remote}/{base_branch}" if remote else base_branch
    for sha, subject in found:
        log.warning(
            "%s moved outside the merge queue: %s %r is no landing (pushed by hand or by a "
            "CLI); no task counts it as landed",
            where,
            sha[:10],
            subject[:80],
        )
        await emit(
            BaseMovedOutside(base_branch=base_branch, remote=remote, commit=sha, subject=subject)
        )
