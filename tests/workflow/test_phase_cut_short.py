"""One rule for a phase cut short, on every path: before it runs again, what it left goes to a
rescue ref and the worktree back to the start its record names, so an edit is made once,
whether the phase failed, was rate-limited and continued in the same conversation, or is
taken over; and a takeover reads back the stored handoff of a phase completed elsewhere as
completed (a digest that survives the store's round trip)."""

from __future__ import annotations

from orchestrator.models import PhaseStatus
from orchestrator.state.postgres.store import PostgresStateStore
from orchestrator.workflow.handoffs.document import (
    Handoff,
    load_handoff,
    sha256_text,
    store_handoff,
)
from orchestrator.workflow.phase_start import UNDONE
from orchestrator.workflow.task_run import WorkflowStatus
from orchestrator.workflow.workflow import run_workflow
from tests.support.cli_process_helpers import events
from tests.support.workflow_helpers import HAPPY, Harness, git, harness, task

__all__ = ["harness"]

APPEND = "APPEND notes.txt appended once"


def _notes(harness: Harness, branch: str) -> str:
    return git(harness.repo, "show", f"{branch}:notes.txt")


def _rescue_refs(harness: Harness) -> list[str]:
    out = git(harness.repo, "for-each-ref", "--format=%(refname)", "refs/council/rescue-phase/")
    return out.split()


async def test_a_build_that_failed_after_its_edit_runs_again_from_its_start(
    harness: Harness,
) -> None:
    failing = harness.config(task({**HAPPY, "build": f"{APPEND}\nFAIL the tests broke"}))
    first = await harness.start(failing)
    failed = await run_workflow(first)
    assert failed.status == WorkflowStatus.FAILED and failed.phase == "build"
    branch = first.session.branch
    assert _notes(harness, branch) == "appended once\n"  # committed: "build stopped (failed)"

    passing = harness.config(task({**HAPPY, "build": APPEND}))
    done = await run_workflow(await harness.start(passing, session=first.session))

    assert done.status == WorkflowStatus.READY_TO_MERGE, done.message
    assert _notes(harness, branch) == "appended once\n"  # not twice
    (rescue,) = _rescue_refs(harness)
    assert rescue.endswith("/build-1")
    assert git(harness.repo, "show", f"{rescue}:notes.txt") == "appended once\n"
    kept = [e["data"] for e in events(harness.repo) if e["type"] == "phase.leftovers_kept"]
    assert [(e["phase"], e["ref"]) for e in kept] == [("build", rescue)]


async def test_a_rate_limited_build_continued_in_its_conversation_edits_once(
    harness: Harness,
) -> None:
    # The CLI edits, then hits the limit; the same conversation goes on later and, told its
    # edits were undone, makes them again: once in all.
    config = harness.config(task({**HAPPY, "build": f"{APPEND}\nRATE_LIMIT reset=120"}))
    first = await harness.start(config)
    parked = await run_workflow(first)
    assert parked.status == WorkflowStatus.PARKED
    native = (await harness.state()).phases["build"].native_session_id
    assert native

    resumed = await run_workflow(await harness.start(config, session=first.session))

    assert resumed.status == WorkflowStatus.READY_TO_MERGE, resumed.message
    assert _notes(harness, first.session.branch) == "appended once\n"
    assert ["--resume", native] == harness.argv("build")[1][-4:-2]  # the same conversation
    prompts = harness.prompts("build")
    assert not prompts[0].startswith(UNDONE) and prompts[1].startswith(UNDONE)
    record = (await harness.state()).phases["build"]
    assert record.status == PhaseStatus.COMPLETED and record.attempt == 2


async def test_a_cut_off_phase_whose_start_the_branch_does_not_hold_undoes_nothing(
    harness: Harness,
) -> None:
    """A branch taken over as published before the phase began holds none of its work."""
    config = harness.config(task(HAPPY))
    first = await harness.start(config)
    done = await run_workflow(first)
    assert done.status == WorkflowStatus.READY_TO_MERGE
    state = await harness.state()
    build = state.phases["build"]
    # What another workstation recorded: build running from a start this clone never saw.
    unknown = "0" * 40
    cut = build.model_copy(
        update={
            "status": PhaseStatus.RUNNING,
            "result": {**build.result, "start_commit": unknown},
            "handoff_sha256": None,
        }
    )
    await harness.store.update_task_state("t1", {"phases": {**state.phases, "build": cut}})
    tip = git(harness.repo, "rev-parse", first.session.branch).strip()

    again = await run_workflow(await harness.start(config, session=first.session))

    assert again.status == WorkflowStatus.READY_TO_MERGE, again.message
    assert git(harness.repo, "merge-base", "--is-ancestor", tip, first.session.branch) == ""
    assert not _rescue_refs(harness)


def _handoff() -> Handoff:
    summary, diff = "Done: appended to tasks/t03.txt.", "+appended once by t03\n"
    return Handoff.model_validate(
        {
            "task": "t03",
            "phase": "build",
            "adapter": "cli",
            "round": 1,
            "branch": "council/t03/1",
            "head": "2073f6800e076aeb45cd8cb0ece3a1217c1c706f",
            "summary": summary,
            "files_changed": ["tasks/t03.txt"],
            "commits": ["2073f6800e076aeb45cd8cb0ece3a1217c1c706f"],
            "diff": diff,
            "sha256": {"summary": sha256_text(summary), "diff": sha256_text(diff)},
        }
    )


async def test_a_handoff_read_back_from_postgresql_matches_its_recorded_digest(
    pg_dsn: str,
) -> None:
    """jsonb orders an object's keys its own way ("diff" before "summary"): the digest of a
    handoff stored on one workstation must match it read back on another, or a takeover runs
    the completed build again on top of itself."""
    handoff = _handoff()
    async with await PostgresStateStore.connect(pg_dsn) as store:
        await store_handoff(store, handoff)
        read = await load_handoff(store, "t03", "build", handoff.digest)
    assert read is not None and read.digest == handoff.digest


def test_a_handoff_recorded_before_the_digest_was_canonical_still_matches() -> None:
    handoff = _handoff()
    old = sha256_text(handoff.model_dump_json())  # how the digest was taken before
    assert handoff.matches(old) and handoff.matches(handoff.digest)
    assert not handoff.matches("f" * 64)


async def test_a_build_recorded_complete_whose_commits_the_branch_lacks_runs_again(
    harness: Harness,
) -> None:
    """A workstation paused right after recording its build complete, before it published
    its branch: the one taking over has the record and the handoff, not the commits."""
    config = harness.config(task({**HAPPY, "build": APPEND}))
    first = await harness.start(config)
    done = await run_workflow(first)
    assert done.status == WorkflowStatus.READY_TO_MERGE
    branch = first.session.branch
    before_build = (await harness.state()).phases["build"].result["start_commit"]
    git(first.session.path, "reset", "-q", "--hard", before_build)  # the branch as published

    again = await run_workflow(await harness.start(config, session=first.session))

    assert again.status == WorkflowStatus.READY_TO_MERGE, again.message
    assert again.phases_run == ["build", "review"]  # scout and plan reused, build not
    assert _notes(harness, branch) == "appended once\n"
