"""Which adapters a run will use, and where: each phase of each task with its chain of
adapters (fallbacks included), and a council task's judge.

The checks before a run (``preflight``) and ``council config validate`` read the config
through this. Validate reads a config whose own checks may have failed (a task naming a phase
that does not exist, an adapter nobody defined): what such a name refers to is already an
issue of its own, so it is left out here instead of failing a second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.config.run import RunConfig
from orchestrator.config.task import TaskConfig
from orchestrator.config.workflow import PhaseConfig
from orchestrator.workflow.best_of import judge_adapter

__all__ = ["AdapterUses", "PhaseUse", "adapter_uses"]


@dataclass(frozen=True)
class PhaseUse:
    """One phase of one task and the adapters it may run on, primary first."""

    index: int  # the task's place in ``tasks:``
    task: TaskConfig
    phase: PhaseConfig
    chain: list[str]  # those defined under ``adapters:``
    assigned: bool  # False: the config names no adapter for it at all


@dataclass(frozen=True)
class AdapterUses:
    phases: list[PhaseUse] = field(default_factory=list)
    # Each adapter the run may start -> the first that uses it, in words ("task 'a', phase
    # 'build'"), for messages that say why an adapter matters.
    users: dict[str, str] = field(default_factory=dict)

    @property
    def unassigned(self) -> list[PhaseUse]:
        """The first phase of each task that has no adapter at all."""
        seen: set[int] = set()
        found = []
        for use in self.phases:
            if not use.assigned and use.index not in seen:
                seen.add(use.index)
                found.append(use)
        return found


def adapter_uses(config: RunConfig) -> AdapterUses:
    uses = AdapterUses()
    for index, task in enumerate(config.tasks):
        for phase in _phases_of(config, task):
            named = config.adapter_chain(task, phase)
            chain = [name for name in named if name in config.adapters]
            uses.phases.append(PhaseUse(index, task, phase, chain, assigned=bool(named)))
            for name in chain:
                uses.users.setdefault(name, f"task {task.id!r}, phase {phase.name!r}")
        if task.council and task.adapters:
            judge = judge_adapter(config, task.adapters[0])
            if judge in config.adapters:
                uses.users.setdefault(judge, f"council task {task.id!r}, the comparison")
    return uses


def _phases_of(config: RunConfig, task: TaskConfig) -> list[PhaseConfig]:
    """``config.phases_for(task)``, without the names no phase has."""
    by_name = {phase.name: phase for phase in reversed(config.workflow.phases)}
    names = [phase.name for phase in config.workflow.phases] if task.phases is None else task.phases
    return [by_name[name] for name in names if name in by_name]
