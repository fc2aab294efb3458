"""A session's services' events (``orchestrator.services``, a run's ``services:``): one ready,
one that failed to start, one stopped."""

from __future__ import annotations

from typing import Literal

from orchestrator.events.base import TaskEvent

__all__ = ["ServiceNotReady", "ServiceReady", "ServiceStopped"]


class ServiceReady(TaskEvent):
    """``service`` of ``task_id``'s session ``session_id`` is ready for ``phase``; its output
    goes to ``log``."""

    type: Literal["service.ready"] = "service.ready"
    session_id: str
    service: str
    phase: str
    log: str


class ServiceNotReady(TaskEvent):
    """``service`` did not become ready for ``phase``: the phase fails for it (``why``; its
    log's tail is in the task's error)."""

    type: Literal["service.failed"] = "service.failed"
    level: str = "error"
    session_id: str
    service: str
    phase: str
    why: str
    log: str


class ServiceStopped(TaskEvent):
    """``service`` of ``task_id``'s session was stopped (a phase that does not need it, or the
    attempt's end)."""

    type: Literal["service.stopped"] = "service.stopped"
    session_id: str
    service: str
