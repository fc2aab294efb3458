"""A session's tasks read again for a caller that holds them: what ``list_tasks_changed`` gives.

A caller that keeps a session's task states (the scheduler's view) and must see every write
of every process reads the whole session again from time to time. Most records are then the
ones it holds: ``list_tasks_changed`` reads only the others. The store tells a held record
unchanged by its *stamp*, the record's version, update time and session (``task_stamp``):
each write stamps a new version at a new time, so a record with the stamp the caller holds is
the one it holds (the file store compares the stamp it saw in the record's file, known by the
file's identity without a read; PostgreSQL compares it in the query).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from orchestrator.models import SessionRecord, TaskState

__all__ = ["TaskChanges", "listed_stamp", "task_stamp"]


def task_stamp(task: TaskState) -> Hashable:
    """What tells one version of a task record from every other (module doc)."""
    return (task.version, task.updated_at, task.session_id)


def listed_stamp(session: SessionRecord) -> Hashable:
    """What a read of the session's tasks needs of its record: the ids it lists (a store that
    keeps this by the record's identity need not parse a record that holds every task's
    config to know them)."""
    return tuple(session.task_ids)


@dataclass(frozen=True)
class TaskChanges:
    """The session's tasks as ``list_tasks`` would give them, for a caller holding ``held``."""

    order: tuple[str, ...]  # the ids of the session's tasks that have a record, in its order
    changed: Mapping[str, TaskState]  # those whose record is not the one held, read

    def gone(self, held: Mapping[str, TaskState]) -> set[str]:
        """The ids of ``held`` that are no task of the session with a record now."""
        return held.keys() - set(self.order)

    def states(self, held: Mapping[str, TaskState]) -> dict[str, TaskState]:
        """Every task of the session by id, in order: read, else as held (``list_tasks``)."""
        changed = self.changed
        return {key: changed[key] if key in changed else held[key] for key in self.order}
