"""The files the other sessions are on, read in the worker-thread call that forks the
attempt's worktree (``TaskRun.busy_read``, issue 51): its first prompt names them with no read
of its own, and no call more for the fork; every later prompt reads them itself."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from orchestrator.state.context import BusyFile, ContextManager
from orchestrator.workflow.handoffs.busy_files import LEAD
from orchestrator.workflow.task_run import WorkflowStatus
from orchestrator.workflow.workflow import run_workflow
from tests.support.hops import count_hops
from tests.support.workflow_helpers import WRITE_FEATURE, Harness, harness, task

__all__ = ["harness"]


async def test_the_first_prompt_takes_what_the_forks_call_read(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    contexts = ContextManager(harness.store, harness.repo)
    await contexts.update_context("other", task="owner", files_locked=["owned.py"])
    worktrees = harness.worktrees
    await worktrees.create_session_worktree("s0", "bot", "t0")  # the repository's set-up made
    read = contexts.reading(exclude={"s1"})
    assert read is not None
    with monkeypatch.context() as patch:
        hopped = count_hops(patch)
        session = await worktrees.create_session_worktree("s1", "bot", "t1", beside=read.take)
        assert len(hopped) == 1, hopped  # the fork's own call: the read rode in it
    assert read.found == [BusyFile("owned.py", "other", "owner")]
    phases = {"phases": [{"name": "scout"}, {"name": "build"}]}
    config = harness.config(
        task({"scout": "SAY src/app.py", "build": WRITE_FEATURE}), workflow=phases
    )
    run = await harness.start(config, session=session)
    run.busy_read = read
    asked: list[Collection[str]] = []
    real = ContextManager.busy_files

    async def busy_files(self: ContextManager, exclude: Collection[str] = ()) -> list[BusyFile]:
        asked.append(exclude)
        return await real(self, exclude)

    monkeypatch.setattr(ContextManager, "busy_files", busy_files)
    result = await run_workflow(run)
    assert result.status is WorkflowStatus.READY_TO_MERGE, result.message
    assert asked == [{"s1"}]  # the build's own read; the scout's came with the fork
    for phase in ("scout", "build"):
        (prompt,) = harness.prompts(phase)
        assert f"{LEAD}\n- owned.py (task owner)\n" in prompt, phase
    assert run.busy_read is None  # taken once
