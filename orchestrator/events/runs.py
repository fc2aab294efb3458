"""A run's own events: started, joined, resumed, left, interrupted, finished; and this
workstation paused under it (stopped, or asleep)."""

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
    "WorkstationPaused",
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


class WorkstationPaused(TypedEvent):
    """The orchestrator's own process did not run for ``seconds``: ``stopped`` (SIGSTOP, a
    debugger, Ctrl-Z; its loop did not run while the clocks went on) or ``asleep`` (the machine
    suspended: the boot clock went on, the monotonic one did not). Its claims' deadlines were
    missed by the pause, not by the state store; ``renewed`` of its ``attempts`` in flight were
    renewed at once (the others were lost or wait for the store)."""

    type: Literal["workstation.paused"] = "workstation.paused"
    level: str = "warning"
    seconds: float
    how: str  # "stopped" or "asleep"
    attempts: int = 0
    renewed: int = 0
