"""One task of the run config: a prompt run through the workflow's phases in its own worktree."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from orchestrator.config.durations import PositiveDuration
from orchestrator.config.fields import (
    CommandList,
    Id,
    NonBlank,
    RepoPath,
    Section,
    UniqueIds,
    no_duplicates,
)

__all__ = ["TaskConfig", "TaskLanding"]


class TaskLanding(Section):
    """How this task's work lands, over the run's ``landing:`` (only ``pulls`` here)."""

    pulls: Literal["single", "stacked"] | None = Field(
        default=None,
        description="the run's landing.pulls for this task alone: stacked opens its pull "
        "request on the ones of its dependencies still in review (needs landing.via: "
        "pull_request)",
    )


class TaskConfig(Section):
    """One unit of work: a prompt run through the workflow's phases in its own worktree."""

    id: Id
    prompt: NonBlank
    priority: int = Field(default=0, description="higher runs first")
    depends_on: Annotated[list[str], AfterValidator(no_duplicates)] = Field(
        default_factory=list, description="task ids that must be merged before this one starts"
    )
    files: Annotated[list[RepoPath], AfterValidator(no_duplicates)] = Field(
        default_factory=list, description="repository paths this task will change (locked)"
    )
    adapters: UniqueIds = Field(
        default_factory=list, description="first is the primary, the rest fallbacks"
    )
    verify: CommandList | None = Field(
        default=None, description="replaces the top-level verify commands for this task"
    )
    timeout: PositiveDuration | None = Field(
        default=None, description="limit for one attempt of the whole task"
    )
    phases: Annotated[UniqueIds, Field(min_length=1)] | None = Field(
        default=None, description="phases to run, in order (default: all)"
    )
    metadata: dict[str, Any] = Field(default_factory=dict)
    landing: TaskLanding | None = Field(
        default=None, description="this task's own landing settings (`pulls`)"
    )
    council: bool = Field(
        default=False,
        description="council mode (best of N): every adapter in `adapters` runs the task in "
        "its own session and worktree, in parallel; a comparison picks the one to merge and "
        "the other branches are kept",
    )
