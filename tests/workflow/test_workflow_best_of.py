"""Council mode: a comparison run of the real scripted CLI picks one of several candidates."""

from __future__ import annotations

import pytest

from orchestrator.errors import WorkflowError
from orchestrator.workflow.task_run import WorkflowResult, WorkflowStatus
from orchestrator.workflow.workflow import CandidateResult, pick_best
from tests.support.workflow_helpers import Harness, git, harness, task

__all__ = ["harness"]

READY = WorkflowResult(status=WorkflowStatus.READY_TO_MERGE, message="ready to merge")
FAILED = WorkflowResult(status=WorkflowStatus.FAILED, message="verify failed")


async def candidate(
    harness: Harness, session_id: str, content: str, result: WorkflowResult
) -> CandidateResult:
    session = await harness.worktrees.create_session_worktree(session_id, "bot", "t1")
    (session.path / "src" / "feature.py").write_text(content)
    await harness.worktrees.commit_in_worktree(session, f"{session_id}: work")
    return CandidateResult(session=session, adapter="bot", result=result)


async def choose(
    harness: Harness, instructions: dict[str, str], candidates: list[CandidateResult]
) -> str:
    config = harness.config(task(instructions))
    return await pick_best(
        config,
        config.tasks[0],
        candidates,
        worktrees=harness.worktrees,
        plugins=harness.plugins,
        home_root=harness.tmp / "homes",
        log_dir=harness.tmp / "logs",
    )


async def test_the_judge_names_the_winner(harness: Harness) -> None:
    candidates = [
        await candidate(harness, "s-a", "VALUE = 'first'\n", READY),
        await candidate(harness, "s-b", "VALUE = 'second'\n", READY),
        await candidate(harness, "s-c", "VALUE = 'third'\n", FAILED),
    ]
    winner = await choose(
        harness, {"council": "SAY The second is cleaner. WINNER: s-b"}, candidates
    )

    assert winner == "s-b"
    (prompt,) = harness.prompts("council")
    assert "## Candidate s-a" in prompt and "+VALUE = 'second'" in prompt
    assert "s-c" not in prompt  # only verified candidates are compared
    # The judge worked in a scratch directory, never in a candidate's worktree.
    log = next((harness.tmp / "logs").glob("t1-council-*.log")).read_text()
    assert f"cwd={harness.tmp / 'homes'}" in log.splitlines()[0]
    for c in candidates:
        assert git(c.session.path, "status", "--porcelain") == ""


async def test_an_unusable_answer_falls_back_to_the_first_verified(harness: Harness) -> None:
    candidates = [
        await candidate(harness, "s-a", "VALUE = 1\n", FAILED),
        await candidate(harness, "s-b", "VALUE = 2\n", READY),
        await candidate(harness, "s-c", "VALUE = 3\n", READY),
    ]
    winner = await choose(
        harness, {"council": "SAY WINNER: s-a (it failed, but I like it)"}, candidates
    )

    assert winner == "s-b"


async def test_a_single_verified_candidate_wins_without_a_judge(harness: Harness) -> None:
    candidates = [
        await candidate(harness, "s-a", "VALUE = 1\n", FAILED),
        await candidate(harness, "s-b", "VALUE = 2\n", READY),
    ]
    assert await choose(harness, {}, candidates) == "s-b"
    assert harness.prompts("council") == []


async def test_no_verified_candidate_is_an_error(harness: Harness) -> None:
    candidates = [await candidate(harness, "s-a", "VALUE = 1\n", FAILED)]
    with pytest.raises(WorkflowError, match="no candidate is ready to merge"):
        await choose(harness, {}, candidates)
