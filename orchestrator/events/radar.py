"""The collision radar's events (``orchestrator.radar``): a collision found, one resolved."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestrator.events.base import TaskEvent

__all__ = ["RadarCollision", "RadarResolved"]


class RadarCollision(TaskEvent):
    """Two live sessions change the same ``paths``: ``task_id``'s and ``other_task_id``'s.

    ``severity``: ``file`` (same files, line ranges apart), ``hunks`` (changes touch on the
    base's lines), ``conflict`` (a ``merge-tree`` of their tips conflicts, on
    ``conflict_paths``). ``escalated_from``: the grade it had, when it was found before and
    has grown graver since (the same collision said again, once per rise)."""

    type: Literal["radar.collision"] = "radar.collision"
    level: str = "warning"
    other_task_id: str
    session_id: str
    other_session_id: str
    paths: list[str]
    severity: str
    conflict_paths: list[str] = Field(default_factory=list)
    key: str
    escalated_from: str | None = None


class RadarResolved(TaskEvent):
    """The collision of ``task_id`` and ``other_task_id`` is over: ``reason`` ``apart`` (their
    work no longer overlaps) or ``ended`` (a side landed or ended)."""

    type: Literal["radar.resolved"] = "radar.resolved"
    other_task_id: str
    session_id: str
    other_session_id: str
    paths: list[str]
    reason: str
    key: str
