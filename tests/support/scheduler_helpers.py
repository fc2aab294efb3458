"""Real runs for the scheduler tests: a git repository, a run config, and small workflows.

The workflows here are real ``WorkflowFn``s: they edit files in the attempt's worktree, have
the orchestrator commit them, record their phases in the store with the claim's fencing token,
and answer a ``WorkflowResult``. ``Probe`` records what the scheduler made them do (who ran
when, how many at once) so a test can check it afterwards.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from orchestrator.config.run import RunConfig
from orchestrator.models import PhaseStatus, TaskState, utcnow
from orchestrator.workflow.task_run import TaskRun, WorkflowResult, WorkflowStatus
from tests.support.worktree_helpers import git, make_repo

Behaviour = Callable[[TaskRun, int], Awaitable[WorkflowResult]]


def new_repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo", {"README.md": "hello\n", "shared.txt": "one\ntwo\n"})
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    return repo


def run_config(repo: Path, tasks: list[dict[str, Any]], **overrides: Any) -> RunConfig:
    """A run of ``tasks`` with two scripted adapters (alpha, beta), one ``build`` phase and
    tiny intervals; ``overrides`` replace top-level sections. The lease (5 s, renewed every
    0.25 s) is short for a test, not so short that a loaded machine's stall of the event loop
    (a second is seen under a full suite beside other work) makes a session fence itself:
    a test of lapses and sweeps sets its own."""
    data: dict[str, Any] = {
        "repo": str(repo),
        "adapters": {"alpha": {"type": "scripted"}, "beta": {"type": "scripted"}},
        "default_adapter": "alpha",
        "workflow": {"phases": [{"name": "build"}]},
        "capacity": {"sessions": 4},
        "retry": {"max_retries": 2, "backoff_initial": 0.05, "backoff_max": 0.2},
        "scheduler": {"tick": 0.02, "heartbeat_interval": 0.25, "stale_threshold": 5.0},
        "tasks": tasks,
        **overrides,
    }
    return RunConfig.model_validate(data)


@dataclass
class Start:
    task_id: str
    adapter: str
    at: float
    attempt: int


@dataclass
class Probe:
    """Records every workflow call; ``behave`` decides what each attempt does."""

    behave: dict[str, Behaviour] = field(default_factory=dict)
    pause: float = 0.15
    starts: list[Start] = field(default_factory=list)
    ends: dict[str, float] = field(default_factory=dict)
    active: Counter[str] = field(default_factory=Counter)
    peak: int = 0
    peak_by_adapter: Counter[str] = field(default_factory=Counter)
    overlaps: list[tuple[str, str]] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)

    async def __call__(self, run: TaskRun) -> WorkflowResult:
        task_id = run.task.id
        self.calls[task_id] += 1
        self.overlaps += [(task_id, other) for other in self.running_tasks() if other != task_id]
        self.starts.append(Start(task_id, run.adapter, time.monotonic(), self.calls[task_id]))
        self.active[run.adapter + ":" + task_id] += 1
        running = [k for k, v in self.active.items() if v]
        self.peak = max(self.peak, len(running))
        by_adapter = Counter(k.split(":", 1)[0] for k in running)
        for adapter, count in by_adapter.items():
            self.peak_by_adapter[adapter] = max(self.peak_by_adapter[adapter], count)
        try:
            behave = self.behave.get(task_id, self.default)
            return await behave(run, self.calls[task_id])
        finally:
            self.active[run.adapter + ":" + task_id] -= 1
            self.ends[task_id] = time.monotonic()

    def running_tasks(self) -> set[str]:
        return {key.split(":", 1)[1] for key, count in self.active.items() if count}

    def started(self, task_id: str) -> list[Start]:
        return [s for s in self.starts if s.task_id == task_id]

    async def default(self, run: TaskRun, call: int) -> WorkflowResult:
        await wait_or_cancel(run, self.pause)
        return await edit_and_commit(run, {f"out/{run.task.id}.txt": f"{run.task.id}\n"})


async def wait_or_cancel(run: TaskRun, seconds: float) -> bool:
    """Sleep like a CLI at work; True when the scheduler cancelled the attempt meanwhile."""
    with anyio.move_on_after(seconds):
        await run.cancel.wait()
    return run.cancel.is_set()


async def edit_and_commit(run: TaskRun, files: dict[str, str]) -> WorkflowResult:
    """What a build phase does: change files, have the orchestrator commit them, record it."""
    for relative, text in files.items():
        target = anyio.Path(run.session.path / relative)
        await target.parent.mkdir(parents=True, exist_ok=True)
        await target.write_text(text)
    commit = await run.worktrees.commit_in_worktree(run.session, f"{run.task.id}: build")
    await record_phase(run, "build")
    return WorkflowResult(
        WorkflowStatus.READY_TO_MERGE,
        phase="build",
        commit=commit.sha,
        files_changed=list(files),
        phases_run=["build"],
    )


async def record_phase(run: TaskRun, phase: str) -> TaskState:
    state = await run.store.get_task_state(run.task.id)
    assert state is not None
    phases = {name: record.model_dump() for name, record in state.phases.items()}
    phases[phase] = {"name": phase, "status": PhaseStatus.COMPLETED, "finished_at": utcnow()}
    return await run.store.update_task_state(
        run.task.id, {"phases": phases}, fencing_token=run.claim_token
    )


async def phase_done(run: TaskRun, phase: str) -> bool:
    state = await run.store.get_task_state(run.task.id)
    record = state.phases.get(phase) if state is not None else None
    return record is not None and record.status == PhaseStatus.COMPLETED


def failure(message: str, *, retryable: bool, kind: str = "failed") -> WorkflowResult:
    return WorkflowResult(
        WorkflowStatus.FAILED,
        phase="build",
        message=message,
        retryable=retryable,
        outcome_kind=kind,
    )


def merged_tasks(repo: Path) -> list[str]:
    """Task ids of the merge commits on main, oldest first (one line per landing)."""
    out = git(
        repo,
        "log",
        "--first-parent",
        "--reverse",
        "--format=%(trailers:key=Council-Task,valueonly)",
        "main",
    )
    return [line.strip() for line in out.splitlines() if line.strip()]
