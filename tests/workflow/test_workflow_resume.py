"""Attempts that stop and go on: rate limits, cancellation, a crashed orchestrator, new branches."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from orchestrator.errors import StaleClaim
from orchestrator.models import PhaseStatus, utcnow
from orchestrator.workflow.task_run import WorkflowResult, WorkflowStatus
from orchestrator.workflow.workflow import run_workflow
from tests.support.timing import patience
from tests.support.workflow_helpers import HAPPY, WRITE_FEATURE, Harness, git, harness, task

__all__ = ["harness"]


async def test_a_rate_limited_phase_parks_then_resumes_the_same_conversation(
    harness: Harness,
) -> None:
    build = f"RATE_LIMIT reset=120\n{WRITE_FEATURE}"
    config = harness.config(task({**HAPPY, "build": build}))
    first = await harness.start(config)

    before = utcnow()
    parked = await run_workflow(first)
    after = utcnow()

    assert parked.status == WorkflowStatus.PARKED and parked.retryable
    assert (parked.phase, parked.outcome_kind) == ("build", "rate_limited")
    assert parked.retry_at is not None
    # 120 s from when the CLI said it, however long the phase took (a second of rounding).
    reset = timedelta(seconds=120)
    assert before + reset - timedelta(seconds=1) <= parked.retry_at <= after + reset
    record = (await harness.state()).phases["build"]
    assert record.status == PhaseStatus.FAILED and record.outcome == "rate_limited"
    native = record.native_session_id
    assert native

    # The next attempt (new claim, same worktree) skips what was done and continues the chat.
    resumed = await run_workflow(await harness.start(config, session=first.session))

    assert resumed.status == WorkflowStatus.READY_TO_MERGE, resumed.message
    assert resumed.phases_run == ["build", "review"]
    state = await harness.state()
    assert state.phases["build"].native_session_id == native
    assert state.phases["build"].attempt == 2
    assert state.phases["scout"].attempt == state.phases["plan"].attempt == 1
    assert ["--resume", native] == harness.argv("build")[1][-4:-2]
    assert (await harness.handoff("build")).native_session_id == native
    assert len(harness.prompts("scout")) == len(harness.prompts("plan")) == 1


async def test_a_crashed_run_resumes_at_the_phase_that_did_not_finish(harness: Harness) -> None:
    config = harness.config(task(HAPPY))
    first = await harness.start(config)
    done = await run_workflow(first)
    assert done.status == WorkflowStatus.READY_TO_MERGE

    # What an orchestrator killed during build leaves: build running, review never finished.
    state = await harness.state()
    phases = dict(state.phases)
    for name in ("build", "review"):
        phases[name] = phases[name].model_copy(update={"status": PhaseStatus.RUNNING})
    await harness.store.update_task_state("t1", {"phases": phases})

    again = await run_workflow(await harness.start(config, session=first.session))

    assert again.status == WorkflowStatus.READY_TO_MERGE, again.message
    assert again.phases_run == ["build", "review"]
    # The same content on the same parent: the phases ran again from their recorded start.
    # (Not the same commit id: that holds only while both commits fall in one second of the
    # clock, which a loaded machine does not keep.)
    assert again.commit is not None and done.commit is not None
    for rev in ("{}^{{tree}}", "{}^@"):
        assert git(harness.repo, "rev-parse", rev.format(again.commit)) == git(
            harness.repo, "rev-parse", rev.format(done.commit)
        )
    after = await harness.state()
    assert [after.phases[p].attempt for p in ("scout", "plan", "build", "review")] == [1, 1, 2, 2]


async def test_a_finished_run_resumed_runs_nothing_again(harness: Harness) -> None:
    config = harness.config(task(HAPPY))
    first = await harness.start(config)
    done = await run_workflow(first)

    again = await run_workflow(await harness.start(config, session=first.session))

    assert again.status == WorkflowStatus.READY_TO_MERGE
    assert again.phases_run == [] and again.commit == done.commit
    # The stored handoffs were put back into the worktree.
    assert (first.session.path / ".council" / "handoff" / "plan.json").is_file()


async def test_a_new_branch_reuses_the_documents_but_builds_again(harness: Harness) -> None:
    config = harness.config(task({**HAPPY, "build": f"{WRITE_FEATURE}\nFAIL compiler crashed"}))
    first = await run_workflow(await harness.start(config))
    assert first.status == WorkflowStatus.FAILED and first.retryable
    assert first.outcome_kind == "failed" and "compiler crashed" in first.message

    fixed = harness.config(task(HAPPY))
    second = await harness.start(fixed, session_id="s2")
    assert second.session.branch == "council/t1/2"

    result = await run_workflow(second)

    assert result.status == WorkflowStatus.READY_TO_MERGE, result.message
    assert result.phases_run == ["build", "review"]
    assert git(harness.repo, "show", f"{result.commit}:src/feature.py") == "VALUE = 1\n"


def _processes_mentioning(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


async def test_cancel_mid_phase_stops_the_cli_and_commits_its_work(harness: Harness) -> None:
    marker = f"hang-marker-{os.getpid()}"
    build = f"SAY {marker}\n{WRITE_FEATURE}\nHANG"
    config = harness.config(task({"build": build}, phases=["build", "review"]))
    run = await harness.start(config)
    written = run.session.path / "src" / "feature.py"
    results: list[WorkflowResult] = []

    async def go() -> None:
        results.append(await run_workflow(run))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(go)
        with anyio.fail_after(patience(20)):
            while not written.exists():
                await anyio.sleep(0.02)
        assert _processes_mentioning(marker)
        run.cancel.set()

    (result,) = results
    assert result.status == WorkflowStatus.CANCELLED
    assert (result.phase, result.outcome_kind) == ("build", "cancelled")
    assert _processes_mentioning(marker) == []
    assert git(harness.repo, "show", f"{run.session.branch}:src/feature.py") == "VALUE = 1\n"
    record = (await harness.state()).phases["build"]
    assert record.status == PhaseStatus.FAILED and record.outcome == "cancelled"
    assert record.native_session_id  # a resumed attempt continues this conversation


async def test_a_cancel_before_a_phase_starts_ends_without_running_it(harness: Harness) -> None:
    config = harness.config(task(HAPPY))
    run = await harness.start(config)
    run.cancel.set()

    result = await run_workflow(run)

    assert result.status == WorkflowStatus.CANCELLED and result.phases_run == []
    assert (await harness.state()).phases == {}


async def test_a_phase_over_its_time_limit_fails_retryable(harness: Harness) -> None:
    config = harness.config(
        task({"build": f"{WRITE_FEATURE}\nHANG"}, phases=["build"]),
        workflow={"phases": [{"name": "build", "timeout": 3}]},
    )
    run = await harness.start(config)

    result = await run_workflow(run)

    assert result.status == WorkflowStatus.FAILED and result.retryable
    assert (result.phase, result.outcome_kind) == ("build", "timed_out")
    assert git(harness.repo, "show", f"{run.session.branch}:src/feature.py") == "VALUE = 1\n"


async def test_an_attempt_that_lost_its_claim_cannot_write(harness: Harness) -> None:
    config = harness.config(task(HAPPY))
    stale = await harness.start(config)
    await harness.start(config, session=stale.session)  # someone else holds the task now

    with pytest.raises(StaleClaim):
        await run_workflow(stale)
    assert (await harness.state()).phases == {}


async def test_the_callers_cancellation_still_commits_and_records(harness: Harness) -> None:
    config = harness.config(task({"build": f"{WRITE_FEATURE}\nHANG"}, phases=["build"]))
    run = await harness.start(config)
    written = run.session.path / "src" / "feature.py"

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run_workflow, run)
        with anyio.fail_after(patience(20)):
            while not written.exists():
                await anyio.sleep(0.02)
        tasks.cancel_scope.cancel()

    assert git(harness.repo, "show", f"{run.session.branch}:src/feature.py") == "VALUE = 1\n"
    record = (await harness.state()).phases["build"]
    assert record.status == PhaseStatus.FAILED and record.outcome == "cancelled"


async def test_a_build_sent_back_and_parked_resumes_with_the_review_feedback(
    harness: Harness,
) -> None:
    builds = [WRITE_FEATURE, f"RATE_LIMIT reset=60\n{WRITE_FEATURE}\nAPPEND src/feature.py # doc"]
    reviews = ["SAY Missing a docstring. VERDICT: request-changes", "SAY VERDICT: approve"]
    config = harness.config(task({"build": builds, "review": reviews}, phases=["build", "review"]))
    first = await harness.start(config)
    parked = await run_workflow(first)
    assert parked.status == WorkflowStatus.PARKED
    assert parked.phases_run == ["build", "review", "build"]

    resumed = await run_workflow(await harness.start(config, session=first.session))

    assert resumed.status == WorkflowStatus.READY_TO_MERGE, resumed.message
    assert resumed.phases_run == ["build", "review"]
    third = harness.prompts("build")[2]
    assert "round 2" in third and "Missing a docstring" in third
    native = (await harness.state()).phases["build"].native_session_id
    assert "--resume" not in harness.argv("build")[1]  # round 2 began a new conversation
    assert harness.argv("build")[2][-4:-2] == ["--resume", native]  # and continued it
    assert git(harness.repo, "show", f"{resumed.commit}:src/feature.py").endswith("# doc\n")
