"""How far one attempt's workflow has come, shared by its parts (``phases``, ``saving``,
``checks.build``), and the ``Stop`` a part raises when it has decided the attempt."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from orchestrator.adapter import Outcome, OutcomeKind, Usage
from orchestrator.errors import SecretInWork
from orchestrator.workflow.handoffs.document import Handoff
from orchestrator.workflow.handoffs.facts import WorkFacts
from orchestrator.workflow.results import result_for
from orchestrator.workflow.task_run import WorkflowResult

__all__ = ["BUILD", "PLAN", "REVIEW", "Progress", "Stop"]

PLAN, BUILD, REVIEW = "plan", "build", "review"


class Stop(Exception):
    """A phase decided the attempt; carries the result."""

    def __init__(self, result: WorkflowResult) -> None:
        self.result = result


@dataclass
class Progress:
    handoffs: dict[str, Handoff] = field(default_factory=dict)  # the phases' latest, by name
    phases_run: list[str] = field(default_factory=list)
    usage: Usage | None = None  # summed over the phases run
    verified_head: str | None = None  # the commit the verify commands last passed on
    facts: WorkFacts | None = None  # the last build's, while HEAD stays where it was
    # The build's facts while nothing has run in the worktree since its commit: no CLI (the
    # next phase clears it) and no verify command (only kept when there are none).
    untouched: WorkFacts | None = None
    committed_head: str | None = None  # HEAD after the last commit of the worktree
    secret_found: SecretInWork | None = None  # a known key masked in a commit
    running: str | None = None  # the phase whose CLI runs now
    deadline: float | None = None  # monotonic: when the task's time limit runs out

    def limit(self, seconds: float, phase: str) -> float:
        """``seconds`` capped by what is left of the task's time limit; a ``Stop`` when
        nothing is."""
        if self.deadline is None:
            return seconds
        left = self.deadline - time.monotonic()
        if left <= 0:
            message = f"the task's time limit ran out before phase {phase}"
            raise Stop(result_for(Outcome(kind=OutcomeKind.TIMED_OUT), phase, message))
        return min(seconds, left)
