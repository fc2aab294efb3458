"""The pull requests' say in how a run ends (``ending.EndPart``), from ``PullFollower``.

- A task ``in_review`` whose pull request waits for a person (a review, a merge by hand,
  failing checks), as this run's own look found it, or one that waits behind it, waits for
  that person: it does not hold ``council run`` open.
- A pull request no pass has tried yet (just pushed, or a cancelled task's pull request not
  yet closed) holds the run open until a pass has.
- A run that ends with a task ``in_review`` ends ``interrupted`` on the checkpoint
  ``in_review``: ``council resume`` follows its pull request again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrator.models import TaskState, TaskStatus
from orchestrator.scheduler.ending import after_waiting
from orchestrator.scheduler.pull_follower import PullFollower

__all__ = ["PullsEnd"]


class PullsEnd:
    checkpoint = "in_review"
    shared = False

    def __init__(self, pulls: PullFollower) -> None:
        self._pulls = pulls

    def waits(
        self,
        task_id: str,
        states: Mapping[str, TaskState],
        depends_on: Mapping[str, Sequence[str]],
    ) -> bool:
        state, person = states.get(task_id), self._pulls.waits_on_person
        return (state is not None and person(state)) or after_waiting(
            task_id, depends_on, states, person
        )

    def unlooked(self, state: TaskState) -> bool:
        return self._pulls.unlooked(state)

    def holds(self, states: Mapping[str, TaskState]) -> set[str]:
        return {s.task_id for s in states.values() if s.status == TaskStatus.IN_REVIEW}
