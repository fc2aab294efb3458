"""Landing by pull request (``landing.via: pull_request``): a task's pull request opened,
merged, closed unmerged, or refused by the forge's merge."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestrator.events.base import TaskEvent

__all__ = [
    "PullClosed",
    "PullFeedbackRound",
    "PullMerged",
    "PullNotMerged",
    "PullOpened",
    "PullRoundUnchanged",
    "PullStackCarried",
    "PullStackRetargeted",
]


class PullOpened(TaskEvent):
    """The task's pull request ``number`` (``url``) is open for ``head`` into ``base``;
    ``created`` False when it was already open (found by its head branch after a crash)."""

    type: Literal["pull.opened"] = "pull.opened"
    number: int
    url: str
    head: str
    base: str
    created: bool = True


class PullMerged(TaskEvent):
    """The pull request was merged (by council, ``by_council``, or by a person): ``commit`` is
    on the base and holds the task's work; the task is done."""

    type: Literal["pull.merged"] = "pull.merged"
    number: int
    url: str
    commit: str
    by_council: bool


class PullClosed(TaskEvent):
    """The pull request was closed without being merged: the task failed."""

    type: Literal["pull.closed"] = "pull.closed"
    level: str = "warning"
    number: int
    url: str


class PullNotMerged(TaskEvent):
    """Council's merge of the pull request was refused (``kind``: ``not_mergeable``, a
    conflict or a protection rule; ``head_changed``): the forge's ``message``."""

    type: Literal["pull.not_merged"] = "pull.not_merged"
    level: str = "warning"
    number: int
    url: str
    kind: str
    message: str


class PullFeedbackRound(TaskEvent):
    """Reviews asked for changes, review comments came, or checks failed (``reasons``): the
    task builds again on its branch (round ``round`` of ``landing.max_review_rounds``), its
    CLI's conversation resumed, and pushes to the same pull request."""

    type: Literal["pull.feedback_round"] = "pull.feedback_round"
    number: int
    url: str
    round: int
    reasons: str  # what came, "; "-separated


class PullRoundUnchanged(TaskEvent):
    """A feedback round's build changed nothing: the pull request's head is still the one
    reviewed (``head_sha``), nothing was pushed to it, and it waits as before. Said in place
    of ``pull.opened``, which would announce it again as if something changed."""

    type: Literal["pull.round_unchanged"] = "pull.round_unchanged"
    number: int
    url: str
    round: int
    head_sha: str


class PullStackCarried(TaskEvent):
    """A stacked pull request's work was rebuilt on the changed pull request below it
    (``below``, task ``below_task``, now at ``below_sha``): ``clean`` when git merged the
    change in without conflict (pushed as ``head_sha``), else its CLI's conversation goes on
    to resolve ``conflicts``."""

    type: Literal["pull.stack_carried"] = "pull.stack_carried"
    number: int
    below: int
    below_task: str
    below_sha: str
    clean: bool
    head_sha: str = ""
    conflicts: list[str] = Field(default_factory=list)


class PullStackRetargeted(TaskEvent):
    """Every pull request below the task's merged: its own now asks to land on ``base``
    (was ``was``), its approvals and checks judged again for its head."""

    type: Literal["pull.stack_retargeted"] = "pull.stack_retargeted"
    number: int
    url: str
    base: str
    was: str
