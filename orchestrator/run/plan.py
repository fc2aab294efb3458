"""The plan of a run, without running it: task order, phases, adapters and exact commands.

``build_plan(config, registry)`` is what ``council run --dry-run`` prints. Tasks come in an
order the scheduler could dispatch them with unlimited capacity: priority first, then config
order, each task after everything it depends on. For each phase it names the adapter chain
(primary first) and the command the primary adapter would run (``Adapter.build_command``),
with the task's prompt as the prompt (the workflow adds its phase template and the previous
phase's handoff around it) and every value a secret could be in redacted (``***``).

A council task (``council: true``) runs no phases itself: its plan lists its candidates (one
per adapter, each with its own phases and commands, as the scheduler dispatches them) and the
judge, the CLI that compares them once they have settled (``best_of.judge_adapter``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from orchestrator.adapter import AdapterRequest
from orchestrator.config.run import RunConfig
from orchestrator.config.task import TaskConfig
from orchestrator.errors import AdapterError
from orchestrator.plugins.registry import AdapterRegistry
from orchestrator.safety.redaction import Redactor, is_sensitive
from orchestrator.scheduler.candidates import candidates_of
from orchestrator.workflow.best_of import judge_adapter

__all__ = ["PhasePlan", "RunPlan", "TaskPlan", "build_plan"]

MASK = "***"


class _Plan(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)


class PhasePlan(_Plan):
    phase: str
    adapters: list[str]
    argv: list[str] | None = None  # None when the adapter could not be built (see error)
    env: dict[str, str] = {}
    error: str | None = None


class TaskPlan(_Plan):
    task_id: str
    priority: int
    depends_on: list[str]
    files: list[str]
    phases: list[PhasePlan]
    candidates: list[TaskPlan] = []  # a council task's candidates; it runs no phases itself
    judge: str | None = None  # a council task's comparing CLI (when candidates disagree)


class RunPlan(_Plan):
    repo: str
    base_branch: str
    capacity: int
    tasks: list[TaskPlan]


def dispatch_order(tasks: list[TaskConfig]) -> list[TaskConfig]:
    """Priority then config order, every task after its dependencies."""
    position = {task.id: index for index, task in enumerate(tasks)}
    pending = sorted(tasks, key=lambda t: (-t.priority, position[t.id]))
    placed: list[TaskConfig] = []
    done: set[str] = set()
    while pending:
        # Config checks refuse cycles, so some task is always free to go next.
        task = next(t for t in pending if all(d in done for d in t.depends_on))
        pending.remove(task)
        placed.append(task)
        done.add(task.id)
    return placed


def build_plan(config: RunConfig, registry: AdapterRegistry) -> RunPlan:
    return RunPlan(
        repo=str(config.repo),
        base_branch=config.base_branch,
        capacity=config.capacity.sessions,
        tasks=[_task(config, registry, task) for task in dispatch_order(list(config.tasks))],
    )


def _task(config: RunConfig, registry: AdapterRegistry, task: TaskConfig) -> TaskPlan:
    plan = TaskPlan(
        task_id=task.id,
        priority=task.priority,
        depends_on=list(task.depends_on),
        files=list(task.files),
        phases=[],
    )
    if task.council:
        candidates = candidates_of(task)
        return plan.model_copy(
            update={
                "candidates": [_task(config, registry, c) for c in candidates],
                "judge": judge_adapter(config, candidates[0].adapters[0]) if candidates else None,
            }
        )
    phases = [_phase(config, registry, task, phase.name) for phase in config.phases_for(task)]
    return plan.model_copy(update={"phases": phases})


def _phase(config: RunConfig, registry: AdapterRegistry, task: TaskConfig, name: str) -> PhasePlan:
    phase = config.phase(name)
    chain = config.adapter_chain(task, phase)
    if not chain:
        return PhasePlan(phase=name, adapters=[], error="no adapter configured")
    adapter_config = config.adapters.get(chain[0])
    council = config.repo / ".council"
    request = AdapterRequest(
        prompt=task.prompt,
        workdir=council / "worktrees" / f"{task.id}.<n>",
        home=council / "homes" / task.id / chain[0] / name,
        model=phase.model or (adapter_config.model if adapter_config else None),
        phase=name,
        task_id=task.id,
        env=dict(adapter_config.env) if adapter_config else {},
    )
    try:
        spec = registry.create(chain[0], adapter_config).build_command(request)
    except AdapterError as exc:
        return PhasePlan(phase=name, adapters=chain, error=str(exc))
    env = {**request.env, **spec.env}
    hide = Redactor([*spec.secrets, *(v for k, v in env.items() if is_sensitive(k))])
    return PhasePlan(
        phase=name,
        adapters=chain,
        argv=[hide(word) for word in spec.argv],
        env={k: MASK if is_sensitive(k) else hide(v) for k, v in env.items()},
    )


def plan_paths(config: RunConfig) -> tuple[Path, Path]:
    """Where a run keeps its CLI logs and private HOMEs."""
    council = config.repo / ".council"
    return council / "logs", council / "homes"
