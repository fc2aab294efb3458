"""The ADW workflow end to end with the real scripted CLI: phases, handoffs, verified completion."""

from __future__ import annotations

import json

import pytest

from orchestrator.models import PhaseStatus
from orchestrator.workflow import plan_locks
from orchestrator.workflow.handoffs.document import sha256_text
from orchestrator.workflow.phases import NOTHING_CHANGED
from orchestrator.workflow.task_run import WorkflowStatus
from orchestrator.workflow.workflow import run_workflow
from tests.support.workflow_helpers import HAPPY, PY, WRITE_FEATURE, Harness, git, harness, task

__all__ = ["harness"]

CHECK_FEATURE = [
    PY,
    "-c",
    "import pathlib, sys; sys.exit(0 if pathlib.Path('src/feature.py').exists() else 5)",
]


async def test_four_phases_end_ready_to_merge_with_handoffs(harness: Harness) -> None:
    config = harness.config(task(HAPPY), verify=[CHECK_FEATURE])
    run = await harness.start(config)

    result = await run_workflow(run)

    assert result.status == WorkflowStatus.READY_TO_MERGE, result.message
    assert result.phases_run == ["scout", "plan", "build", "review"]
    tip = git(harness.repo, "rev-parse", f"refs/heads/{run.session.branch}").strip()
    assert result.commit == tip
    assert result.files_changed == ["src/feature.py"]
    assert git(harness.repo, "show", f"{tip}:src/feature.py") == "VALUE = 1\n"
    assert result.usage is not None and result.usage.input_tokens > 0

    # Every phase is recorded complete, with the digest of the handoff that is stored.
    state = await harness.state()
    for name in result.phases_run:
        record = state.phases[name]
        handoff = await harness.handoff(name)
        assert record.status == PhaseStatus.COMPLETED and record.adapter == "bot"
        assert record.started_at is not None and record.finished_at is not None
        assert record.handoff_sha256 == handoff.digest
        assert handoff.sha256["summary"] == sha256_text(handoff.summary)
    assert (await harness.handoff("plan")).files_to_touch == ["src/feature.py"]
    built = await harness.handoff("build")
    assert "+VALUE = 1" in built.diff and built.sha256["diff"] == sha256_text(built.diff)
    assert built.diff_stat is not None and built.diff_stat.insertions == 1
    assert built.commits == [tip] and built.verify[0].ok
    assert built.needs == ["summary", "files_changed", "diff_stat", "commits", "verify", "diff"]
    reviewed = await harness.handoff("review")
    assert reviewed.verdict == "approve" and reviewed.verdict_stated

    # Handoffs are in the worktree, and git never sees them.
    for name in result.phases_run:
        written = json.loads(
            (run.session.path / ".council" / "handoff" / f"{name}.json").read_text()
        )
        assert written["phase"] == name
    assert ".council" not in git(harness.repo, "ls-tree", "-r", "--name-only", tip)
    assert git(run.session.path, "status", "--porcelain", "--untracked-files=all") == ""

    # Each prompt carries the keys its phase needs from the handoff before it, and no others.
    build_prompt = harness.prompts("build")[0]
    assert "### Files to touch\n- src/feature.py" in build_prompt
    assert (
        "### Diff" not in build_prompt
        and "### Constraints\n" not in build_prompt.split("## The plan")[1]
    )
    review_prompt = harness.prompts("review")[0]
    assert "+VALUE = 1" in review_prompt and "passed" in review_prompt
    assert "### Files to touch" not in review_prompt
    assert "VERDICT: request-changes" in review_prompt  # the convention is explained

    # The plan's files were locked for this session before build (the scheduler releases them).
    assert [g.path for g in harness.locks.held(run.session.session_id)] == ["src/feature.py"]

    # CLI events reached the listener; lifecycle events went through the store too.
    kinds = {(e.type, e.data.get("phase")) for e in harness.events}
    assert ("phase.event", "build") in kinds and ("phase.completed", "review") in kinds
    assert any(e.data.get("kind") == "tool_call" for e in harness.events)


async def test_an_empty_diff_fails_with_no_changes(harness: Harness) -> None:
    config = harness.config(task({**HAPPY, "build": "SAY Nothing to do, all done!"}))
    result = await run_workflow(await harness.start(config))

    assert result.status == WorkflowStatus.FAILED
    assert (result.phase, result.outcome_kind, result.retryable) == ("build", "no_changes", True)
    assert result.phases_run == ["scout", "plan", "build"]
    record = (await harness.state()).phases["build"]
    assert record.status == PhaseStatus.FAILED and record.outcome == "no_changes"


async def test_the_retry_of_an_empty_build_is_told_why_in_its_prompt(harness: Harness) -> None:
    config = harness.config(task(HAPPY))
    run = await harness.start(config)
    run.note = "the build changed no files"

    result = await run_workflow(run)

    assert result.status == WorkflowStatus.READY_TO_MERGE
    build = harness.prompts("build")[0]
    assert build.startswith(NOTHING_CHANGED.format(reason="the build changed no files"))
    assert not harness.prompts("plan")[0].startswith("NOTE:")  # the build's alone


async def test_a_failing_verify_command_fails_the_build_and_keeps_the_work(
    harness: Harness,
) -> None:
    failing = [PY, "-c", "import sys; print('assertion boom'); sys.exit(3)"]
    config = harness.config(task(HAPPY, phases=["plan", "build", "review"]), verify=[failing])
    run = await harness.start(config)

    result = await run_workflow(run)

    assert result.status == WorkflowStatus.FAILED and result.retryable
    assert result.phase == "build" and "exited 3" in result.message
    assert "assertion boom" in result.message
    assert result.phases_run == ["plan", "build"]  # review never saw unverified work
    tip = f"refs/heads/{run.session.branch}"
    assert git(harness.repo, "show", f"{tip}:src/feature.py") == "VALUE = 1\n"


@pytest.mark.parametrize(
    ("instruction", "kind", "said"),
    [
        ("DENY src/secret.py", "permission_denied", "permission denied"),
        ("AUTH_ERROR", "auth_required", "Failed to authenticate"),
    ],
)
async def test_refusals_fail_for_good_with_the_cli_message(
    harness: Harness, instruction: str, kind: str, said: str
) -> None:
    # DENY exits 0: the exit code must not make it a success.
    build = f"{WRITE_FEATURE}\n{instruction}"
    config = harness.config(task({"build": build}, phases=["build", "review"]))
    run = await harness.start(config)

    result = await run_workflow(run)

    assert result.status == WorkflowStatus.FAILED
    assert (result.outcome_kind, result.retryable, result.phase) == (kind, False, "build")
    assert said in result.message
    # What the CLI wrote before it was refused is kept on the branch.
    assert "src/feature.py" in git(harness.repo, "ls-tree", "-r", "--name-only", run.session.branch)


async def test_request_changes_sends_the_task_back_to_build_once(harness: Harness) -> None:
    reviews = [
        "SAY Missing a docstring. VERDICT: request-changes",
        "SAY Good now. VERDICT: approve",
    ]
    builds = [WRITE_FEATURE, 'WRITE src/feature.py <<EOF\n"""The feature."""\nVALUE = 1\nEOF']
    config = harness.config(task({"build": builds, "review": reviews}, phases=["build", "review"]))
    run = await harness.start(config)

    result = await run_workflow(run)

    assert result.status == WorkflowStatus.READY_TO_MERGE, result.message
    assert result.phases_run == ["build", "review", "build", "review"]
    second = harness.prompts("build")[1]
    assert "round 2" in second and "Missing a docstring" in second
    assert "request-changes" in second
    state = await harness.state()
    assert state.phases["build"].attempt == 2 and state.phases["build"].result["round"] == 2
    assert (await harness.handoff("review")).round == 2
    shown = git(harness.repo, "show", f"{result.commit}:src/feature.py")
    assert shown.startswith('"""The feature."""')


async def test_review_rounds_are_bounded(harness: Harness) -> None:
    config = harness.config(
        task(
            {"build": WRITE_FEATURE, "review": "SAY VERDICT: request-changes"},
            phases=["build", "review"],
        ),
        workflow={"max_review_rounds": 1},
    )
    result = await run_workflow(await harness.start(config))

    assert result.status == WorkflowStatus.FAILED and not result.retryable
    assert result.phase == "review" and "max_review_rounds=1" in result.message
    assert result.phases_run.count("build") == 2


async def test_no_verdict_counts_as_approve(harness: Harness) -> None:
    config = harness.config(task({"build": WRITE_FEATURE}, phases=["build", "review"]))
    result = await run_workflow(await harness.start(config))

    assert result.status == WorkflowStatus.READY_TO_MERGE
    review = await harness.handoff("review")
    assert review.verdict == "approve" and not review.verdict_stated


async def test_busy_plan_files_fail_the_attempt_before_build(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan_locks, "PLAN_LOCK_TIMEOUT", 0.2)
    await harness.locks.acquire_file_lock("other", "src/feature.py")
    config = harness.config(task(HAPPY, phases=["plan", "build"]))

    result = await run_workflow(await harness.start(config))

    assert result.status == WorkflowStatus.FAILED and result.retryable
    assert result.phase == "build" and "other" in result.message
    assert result.phases_run == ["plan"]
    assert "build" not in (await harness.state()).phases


async def test_a_phase_runs_its_own_adapter_in_its_own_home(harness: Harness) -> None:
    config = harness.config(
        task(HAPPY, phases=["build", "review"]),
        adapters={
            "bot": {"type": "scripted", "options": {"delay": 0}},
            "judge": {"type": "scripted", "options": {"delay": 0, "personality": "Hmm."}},
        },
        workflow={"phases": [{"name": "build"}, {"name": "review", "adapter": "judge"}]},
    )
    result = await run_workflow(await harness.start(config))

    assert result.status == WorkflowStatus.READY_TO_MERGE, result.message
    phases = (await harness.state()).phases
    assert (phases["build"].adapter, phases["review"].adapter) == ("bot", "judge")
    assert (await harness.handoff("review")).summary.startswith("Hmm.")
    for adapter, phase in (("bot", "build"), ("judge", "review")):
        sessions = harness.tmp / "homes" / "t1" / adapter / phase / ".scripted-cli" / "sessions"
        assert [p.stem for p in sessions.glob("*.json")] == [phases[phase].native_session_id]


async def test_a_reviewer_edit_is_committed_and_verified_again(harness: Harness) -> None:
    no_extra = [PY, "-c", "import os, sys; sys.exit(7 if os.path.exists('src/extra.py') else 0)"]
    review = "WRITE src/extra.py <<EOF\nEXTRA = 1\nEOF\nSAY VERDICT: approve"
    config = harness.config(
        task({"build": WRITE_FEATURE, "review": review}, phases=["build", "review"]),
        verify=[no_extra],
    )
    run = await harness.start(config)

    result = await run_workflow(run)

    assert result.status == WorkflowStatus.FAILED and result.phase == "review"
    assert "exited 7" in result.message
    files = git(harness.repo, "ls-tree", "-r", "--name-only", run.session.branch).split()
    assert "src/extra.py" in files  # committed all the same: nothing is lost
