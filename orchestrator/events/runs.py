"""A run's own events: started, joined, resumed, left, interrupted, finished."""

from __future__ import annotations

from typing import Literal

from orchestrator.events.base import TypedEvent

__all__ = [
    "RunFinished",
    "RunInterrupted",
    "RunJoined",
    "RunLeft",
    "RunResumed",
    "RunStarted",
]


class RunStarted(TypedEvent):
    type: Literal["run.started"] = "run.started"
    session_id: str
    holder: str  # ``<host>:<pid>:<run id>``: who the run's claims are held by


class RunJoined(TypedEvent):
    """This workstation joined a team run of ``tasks`` tasks."""

    type: Literal["run.joined"] = "run.joined"
    session_id: str
    holder: str
    tasks: int


class RunResumed(TypedEvent):
    type: Literal["run.resumed"] = "run.resumed"
    session_id: str
    holder: str


class RunLeft(TypedEvent):
    """This workstation stopped; the team goes on with the session."""

    type: Literal["run.left"] = "run.left"
    session_id: str


class RunInterrupted(TypedEvent):
    type: Literal["run.interrupted"] = "run.interrupted"
    session_id: str


class RunFinished(TypedEvent):
    """Every task settled: ``status`` is ``completed`` (all done) or ``failed``, or
    ``interrupted`` when some task ended ``waiting_for_checkout`` (`council resume` lands it)."""

    type: Literal["run.finished"] = "run.finished"
    session_id: str
    status: str
