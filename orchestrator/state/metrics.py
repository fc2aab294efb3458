"""Session metrics, computed from the member tasks' states."""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.models import ACTIVE_TASK_STATUSES, SessionMetrics, TaskState, TaskStatus

__all__ = ["compute_metrics"]

_FAILED = frozenset({TaskStatus.FAILED, TaskStatus.CONFLICT})
_WAITING = frozenset({TaskStatus.QUEUED, TaskStatus.PARKED})


def compute_metrics(tasks: Iterable[TaskState]) -> SessionMetrics:
    """Counts by status, and the mean minutes from start to finish of the completed tasks."""
    total = queued = completed = in_progress = failed = 0
    minutes: list[float] = []
    for task in tasks:
        total += 1
        if task.status == TaskStatus.DONE:
            completed += 1
            if task.started_at and task.finished_at:
                minutes.append((task.finished_at - task.started_at).total_seconds() / 60)
        elif task.status in ACTIVE_TASK_STATUSES:
            in_progress += 1
        elif task.status in _FAILED:
            failed += 1
        elif task.status in _WAITING:
            queued += 1
    return SessionMetrics(
        total=total,
        queued=queued,
        completed=completed,
        in_progress=in_progress,
        failed=failed,
        average_minutes=round(sum(minutes) / len(minutes), 3) if minutes else None,
    )
