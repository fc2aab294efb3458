"""A build's facts are read in its commit's own worker-thread call (issue 51): the commit just
made is what they read, under the session's lock, with no hop of their own; its commit's
refusal of a secret reads nothing. Its handoff's file is written in its record's call."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.errors import SecretInWork
from orchestrator.safety.safe_write import write_atomic
from orchestrator.workflow.handoffs import facts as facts_module
from orchestrator.workflow.task_run import WorkflowStatus
from orchestrator.workflow.workflow import run_workflow
from orchestrator.worktrees import session_work
from orchestrator.worktrees.models import CommitResult
from tests.support.hops import count_hops
from tests.support.workflow_helpers import Harness, git, harness, task

__all__ = ["harness"]


async def test_the_builds_facts_ride_with_its_commit(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = harness.config(
        task({"build": "WRITE src/feature.py <<EOF\nVALUE = 1\nEOF"}),
        workflow={"phases": [{"name": "build"}]},
    )
    run = await harness.start(config)
    hopped = count_hops(monkeypatch)

    result = await run_workflow(run)

    assert result.status == WorkflowStatus.READY_TO_MERGE, result.message
    assert result.files_changed == ["src/feature.py"]
    tip = git(harness.repo, "rev-parse", f"refs/heads/{run.session.branch}").strip()
    built = await harness.handoff("build")
    assert built.commits == [tip] and "+VALUE = 1" in built.diff
    names = [getattr(fn, "__qualname__", "") for fn in hopped]
    modules = [getattr(fn, "__module__", "") for fn in hopped]
    assert facts_module.__name__ not in modules  # no hop of the facts' own
    assert write_atomic not in hopped  # the handoff's file: in its record's call
    written = run.session.path / ".council" / "handoff" / "build.json"
    assert json.loads(written.read_text())["phase"] == "build"
    # the phase's start commits what was there, the build its work: each one call
    assert "SessionWork.commit_then.<locals>.commit_and_then" in names


async def test_a_commit_refused_for_a_secret_reads_nothing_after_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = harness.config(task({"build": "SAY nothing"}))
    run = await harness.start(config)
    (run.session.path / "notes.txt").write_text("some work\n")
    real = session_work.commit_all_sync

    def scrubbed(*args: Any, **kwargs: Any) -> CommitResult:
        # As ``commit_all_sync`` answers when the work held a key it masked.
        return real(*args, **kwargs).model_copy(update={"scrubbed": ["notes.txt"]})

    monkeypatch.setattr(session_work, "commit_all_sync", scrubbed)
    read: list[object] = []
    with pytest.raises(SecretInWork):
        await harness.worktrees.commit_then(run.session, "work", read.append)
    assert read == []
