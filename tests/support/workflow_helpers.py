"""A real setting for workflow tests: a git repository, the file store, worktrees, locks and
the scripted CLI (delay 0) as adapter ``bot``. Tests tell the CLI what to do per phase through
the task's ``metadata.phase_instructions``."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config.run import RunConfig
from orchestrator.config.task import TaskConfig
from orchestrator.events import Event
from orchestrator.locks.manager import LockManager
from orchestrator.models import ClaimStatus, TaskState
from orchestrator.plugins.host import PluginHost, default_plugins
from orchestrator.state import FileStateStore
from orchestrator.workflow.handoffs.document import Handoff, load_handoff
from orchestrator.workflow.task_run import TaskRun
from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import SessionWorktree

PY = sys.executable


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    )
    return result.stdout


def make_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@localhost")
    (path / "src").mkdir()
    (path / "src" / "app.py").write_text("def app():\n    return 1\n")
    (path / "README.md").write_text("# demo\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def task(instructions: dict[str, Any], *, task_id: str = "t1", **fields: Any) -> TaskConfig:
    metadata = {"phase_instructions": instructions}
    return TaskConfig(id=task_id, prompt="Add the feature module.", metadata=metadata, **fields)


WRITE_FEATURE = "WRITE src/feature.py <<EOF\nVALUE = 1\nEOF"
HAPPY = {
    "scout": "SAY The app lives in src/app.py.",
    "plan": "SAY Step 1: add the module. FILES: src/feature.py",
    "build": WRITE_FEATURE,
    "review": "SAY Looks right. VERDICT: approve",
}


@dataclass
class Harness:
    tmp: Path
    repo: Path
    store: FileStateStore
    worktrees: WorktreeManager
    locks: LockManager
    plugins: PluginHost
    events: list[Event] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)

    def config(self, *tasks: TaskConfig, **fields: Any) -> RunConfig:
        data: dict[str, Any] = {
            "repo": str(self.repo),
            "adapters": {"bot": {"type": "scripted", "options": {"delay": 0}}},
            "default_adapter": "bot",
            "tasks": [t.model_dump() for t in tasks],
            **fields,
        }
        return RunConfig.model_validate(data)

    async def start(
        self,
        config: RunConfig,
        task_id: str = "t1",
        *,
        session: SessionWorktree | None = None,
        session_id: str = "s1",
        adapter: str = "bot",
    ) -> TaskRun:
        """A new attempt: a fresh claim (the old one abandoned), the given or a new worktree.

        As the scheduler does when an attempt ends, the earlier attempts' locks are released.
        """
        for earlier in self.sessions:
            await self.locks.release_all_session_locks(earlier)
        state = await self.store.get_task_state(task_id)
        if state is None:
            await self.store.update_task_state(task_id, {})
        elif state.claim is not None and state.claim.status == ClaimStatus.ACTIVE:
            await self.store.release_claim(task_id, state.claim.token, ClaimStatus.ABANDONED)
        claim = await self.store.acquire_claim(task_id, "tests", 300)
        assert claim is not None
        if session is None:
            session = await self.worktrees.create_session_worktree(session_id, adapter, task_id)
        self.sessions.append(session.session_id)
        return TaskRun(
            config=config,
            task=next(t for t in config.tasks if t.id == task_id),
            session=session,
            adapter=adapter,
            claim_token=claim.token,
            store=self.store,
            worktrees=self.worktrees,
            locks=self.locks,
            plugins=self.plugins,
            log_dir=self.tmp / "logs",
            home_root=self.tmp / "homes",
            on_event=self.events.append,
        )

    async def state(self, task_id: str = "t1") -> TaskState:
        found = await self.store.get_task_state(task_id)
        assert found is not None
        return found

    async def handoff(self, phase: str, task_id: str = "t1") -> Handoff:
        found = await load_handoff(self.store, task_id, phase)
        assert found is not None
        return found

    def argv(self, phase: str, task_id: str = "t1") -> list[list[str]]:
        """The command lines the CLI ran with in ``phase``, oldest first (from the run logs)."""
        return logged_argvs(self.tmp / "logs", task_id, phase)

    def prompts(self, phase: str, task_id: str = "t1") -> list[str]:
        """The prompts the CLI got in ``phase``, oldest first."""
        return logged_prompts(self.tmp / "logs", task_id, phase)


def logged_argvs(log_dir: Path, task_id: str, phase: str) -> list[list[str]]:
    """The command lines ``task_id``'s CLI ran with in ``phase``, oldest first (from its logs)."""
    logs = sorted(log_dir.glob(f"{task_id}-{phase}-*.log"), key=_log_order)
    return [_logged_argv(log.read_text()) for log in logs]


def logged_prompts(log_dir: Path, task_id: str, phase: str) -> list[str]:
    """The prompts ``task_id``'s scripted CLI got in ``phase``, oldest first."""
    return [argv[argv.index("-p") + 1] for argv in logged_argvs(log_dir, task_id, phase)]


def _logged_argv(text: str) -> list[str]:
    # The header's argv line holds the prompt, newlines and all, up to the first output line.
    lines = text.split("\n")[1:]
    header: list[str] = []
    for line in lines:
        if line.startswith(("stdout| ", "stderr| ", "# exit_code=")):
            break
        header.append(line)
    return shlex.split("\n".join(header).removeprefix("# argv: "))


def _log_order(path: Path) -> int:
    # <task>-<phase>-<time>-<pid>-<n>.log: n counts up within one process.
    return int(path.stem.rsplit("-", 1)[1])


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    repo = make_repo(tmp_path / "repo")
    async with FileStateStore.for_repo(repo) as store, LockManager(repo, store=store) as locks:
        worktrees = WorktreeManager(repo, store=store)
        yield Harness(tmp_path, repo, store, worktrees, locks, default_plugins())
