"""The run config's ``workflow:``: the phases every task runs through, and review's rounds."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from orchestrator.config.durations import PositiveDuration
from orchestrator.config.fields import Id, NonBlank, Section
from orchestrator.models import DEFAULT_PHASES

__all__ = ["PhaseConfig", "WorkflowConfig"]


class PhaseConfig(Section):
    """One workflow phase: one CLI invocation per task, fed the previous phase's handoff."""

    name: Id
    adapter: Id | None = Field(
        default=None, description="adapter for this phase when the task names none"
    )
    model: NonBlank | None = None
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="adapter options for this phase, laid over the adapter's own key by key "
        "(extra_args, reasoning_effort, system_prompt...); checked against each adapter the "
        "phase may run",
    )
    prompt_template: str | None = None
    timeout: PositiveDuration | None = Field(default=None, description="total time limit")
    idle_timeout: PositiveDuration | None = Field(
        default=None, description="limit on time without any output"
    )


def _default_phases() -> list[PhaseConfig]:
    return [PhaseConfig(name=name) for name in DEFAULT_PHASES]


class WorkflowConfig(Section):
    phases: list[PhaseConfig] = Field(default_factory=_default_phases, min_length=1)
    max_review_rounds: int = Field(
        default=2, ge=0, description="times review may send a task back to build"
    )
