"""Council mode: several candidates build one task, a judge picks the winner to land."""

from __future__ import annotations

from typing import Literal

from orchestrator.events.base import TaskEvent

__all__ = ["CouncilCandidateReady", "CouncilComparing", "CouncilWinner"]


class CouncilCandidateReady(TaskEvent):
    """Candidate ``candidate`` (a task of its own) of council task ``task_id`` passed."""

    type: Literal["council.candidate_ready"] = "council.candidate_ready"
    candidate: str
    adapter: str


class CouncilComparing(TaskEvent):
    type: Literal["council.comparing"] = "council.comparing"
    judge: str


class CouncilWinner(TaskEvent):
    type: Literal["council.winner"] = "council.winner"
    candidate: str
    adapter: str
