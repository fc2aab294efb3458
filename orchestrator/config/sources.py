"""The run config's ``sources:``: where tasks come from besides ``tasks:``.

One kind for now, a forge's issues (``orchestrator.forge.issue_tasks``)::

    sources:
      - issues: {labels: [council], state: open, poll: 60s}

Each matching issue becomes task ``issue-<number>``; the forge is the ``forge:`` section's, or
the one the origin remote is on (``config validate`` says when there is neither).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field

from orchestrator.config.durations import PositiveDuration
from orchestrator.config.fields import NonBlank, Section, no_duplicates

__all__ = ["IssuesSource", "SourceConfig"]


class IssuesSource(Section):
    """The forge's issues (never its pull requests) that become tasks."""

    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use

    labels: Annotated[list[NonBlank], AfterValidator(no_duplicates)] = Field(
        default_factory=list,
        description="labels an issue must carry, every one of them (empty: every issue)",
    )
    state: Literal["open", "closed", "all"] = Field(
        default="open", description="the issues' state: open | closed | all"
    )
    poll: PositiveDuration = Field(
        default=60.0,
        description="how often the issues are read again while the run goes on (new ones "
        "join the run; a queued task whose issue no longer matches is cancelled)",
    )


class SourceConfig(Section):
    """One source of tasks."""

    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use

    issues: IssuesSource = Field(description="a forge's issues as tasks")
