"""The run as a person watching it wants to see it: every task, one line each, with what it
is doing or why it waits.

Built from what the scheduler holds anyway (the attempts in flight, its view of the task
records, the reasons its last dispatch pass left the tasks it looked at where they were), so
drawing it reads no record and starts no process, however often a live view asks. A task's
line is built by ``in_flight`` (an attempt of ours runs it) or ``recorded`` (its record says);
``board_book`` keeps the lines between looks and builds again only the changed ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.models import ClaimStatus, TaskState, TaskStatus
from orchestrator.scheduler.attempts.attempt import Attempt

__all__ = ["ENDED", "TaskLine", "in_flight", "recorded"]

ENDED = ("done", "failed", "conflict", "cancelled")


@dataclass(frozen=True)
class TaskLine:
    """One task now. ``status`` is the task's status, but ``running`` or ``merging`` for one
    in flight here (``merging``: its CLI work is over, it is being landed); ``detail`` is the
    running CLI's last message, why a waiting task waits, or how an ended one ended."""

    task_id: str
    status: str
    phase: str | None = None
    adapter: str | None = None
    elapsed: float | None = None  # seconds the attempt in flight has run
    detail: str = ""
    collision: str = ""  # the collision radar's mark: ``collides with b on x.py (conflict)``
    note: str = ""  # what the run's parts say of it: ``services: web ready``

    @property
    def kind(self) -> str:
        """What the board counts it as: its status, but ``waiting`` for a queued task with a
        reason to wait (``after add-cli``; a parked one stays ``parked``)."""
        if self.status == "queued" and self.detail:
            return "waiting"
        return self.status


def in_flight(task_id: str, attempts: list[Attempt], now: float) -> TaskLine:
    """The line of a task an attempt of ours runs (a council task: its candidates)."""
    main = next((a for a in attempts if a.key == task_id), None)
    if main is None:  # a council task whose candidates run
        named = ", ".join(f"{a.key} ({a.phase or 'merging'})" for a in attempts)
        first = min(a.started for a in attempts)
        return TaskLine(task_id, "running", None, None, now - first, f"candidates: {named}")
    status = "merging" if main.slot_free else "running"
    detail = main.waiting or main.last_message
    return TaskLine(task_id, status, main.phase, main.adapter, now - main.started, detail)


def recorded(task_id: str, state: TaskState | None, why: str | None) -> TaskLine:
    """The line of a task no attempt of ours runs, from its record and why it waits."""
    if state is None:
        return TaskLine(task_id, str(TaskStatus.QUEUED), detail=why or "")
    detail = why or ""
    if state.status == TaskStatus.DONE and state.merged_commit:
        detail = f"landed {state.merged_commit[:12]}"
    elif state.status in (TaskStatus.FAILED, TaskStatus.CONFLICT, TaskStatus.CANCELLED):
        detail = state.error or ""
    elif state.claim is not None and state.claim.status == ClaimStatus.ACTIVE and not detail:
        # Held, but not by an attempt of ours: in a team, another workstation has it.
        detail = f"on {':'.join(state.claim.holder.split(':')[:2])}"
    return TaskLine(
        task_id, str(state.status), state.current_phase, state.adapter or None, detail=detail
    )
