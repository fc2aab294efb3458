"""The workflow's pure parts: reading the prompt conventions, rendering prompts, handoff rules,
and the outcome table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from orchestrator.adapter import Outcome, OutcomeKind
from orchestrator.config.task import TaskConfig
from orchestrator.ids import is_safe_id
from orchestrator.workflow.handoffs.document import Handoff, handoff_key, needs_for, sha256_text
from orchestrator.workflow.handoffs.prompts import (
    PromptContext,
    instructions_for,
    render_handoff,
    render_prompt,
)
from orchestrator.workflow.handoffs.review import parse_plan_files, parse_verdict, parse_winner
from orchestrator.workflow.results import result_for
from orchestrator.workflow.task_run import WorkflowStatus


def handoff(**fields: object) -> Handoff:
    base: dict[str, object] = {"task": "t1", "phase": "plan", "adapter": "bot", "branch": "b"}
    return Handoff.model_validate(base | fields)


# --- conventions ---------------------------------------------------------------------------


def test_plan_files_from_lines_and_json_blocks_normalized_and_safe() -> None:
    texts = [
        "Step 1. FILES: `src/a.py`, ./src//b.py src/a.py.",
        'Or as JSON:\n```json\n{"files": ["docs/c.md", "../escape.py", "/abs.py"]}\n```',
        "FILES: .council/x, .git/config, none",
    ]
    assert parse_plan_files(texts) == ["src/a.py", "src/b.py", "docs/c.md"]
    assert parse_plan_files(["no list here", "```\nnot json\n```"]) == []


def test_the_last_verdict_wins_and_none_is_none() -> None:
    assert parse_verdict(["VERDICT: request-changes", "fixed? VERDICT: **Approved**"]) == "approve"
    assert parse_verdict(["VERDICT: approve\nthen VERDICT: Request Changes"]) == ("request-changes")
    assert parse_verdict(["verdict: changes requested"]) == "request-changes"
    assert parse_verdict(["Looks good to me."]) is None


def test_a_winner_must_be_a_candidate() -> None:
    ids = ["s-a", "s-b"]
    assert parse_winner(["WINNER: s-b."], ids) == "s-b"
    assert parse_winner(["WINNER: s-z"], ids) is None
    assert parse_winner(["WINNER: `s-a`", "no, WINNER: s-b"], ids) == "s-b"


# --- prompts -------------------------------------------------------------------------------


def test_unknown_braces_stay_and_sections_are_appended_when_not_placed() -> None:
    meta = {"phase_instructions": {"build": ["first round", "later rounds"]}}
    task = TaskConfig(id="t1", prompt="Do it.", metadata=meta)
    plan = handoff(summary="the plan", files_to_touch=["a.py"], needs=needs_for("build"))
    template = 'Task {task} in {phase}, json {"files": []} and {unknown}.'

    first = render_prompt(template, PromptContext(task, "build", 1, 3, (), [plan]))
    later = render_prompt(template, PromptContext(task, "build", 5, 3, (), [plan]))

    assert first.startswith('Task Do it. in build, json {"files": []} and {unknown}.')
    assert "### Files to touch\n- a.py" in first and first.rstrip().endswith("first round")
    assert later.rstrip().endswith("later rounds")
    assert instructions_for(task, "review") == ""


def test_only_the_needed_keys_are_rendered() -> None:
    built = handoff(
        phase="build",
        summary="did it",
        diff="+x = 1\n",
        files_to_touch=["secret-plan.py"],
        needs=["summary", "diff"],
    )
    text = render_handoff(built)
    assert "did it" in text and "+x = 1" in text
    assert "secret-plan.py" not in text


# --- handoffs ------------------------------------------------------------------------------


def test_a_handoff_refuses_unknown_keys_and_wrong_digests() -> None:
    with pytest.raises(ValidationError, match="extra"):
        handoff(surprise=1)
    with pytest.raises(ValidationError, match="summary does not match"):
        handoff(summary="a", sha256={"summary": sha256_text("b")})
    good = handoff(summary="a", sha256={"summary": sha256_text("a")}, diff="d", diff_truncated=True)
    assert Handoff.model_validate_json(good.model_dump_json()).digest == good.digest


def test_handoff_keys_stay_safe_ids_for_long_task_ids() -> None:
    assert handoff_key("t1", "plan") == "t1.plan"
    long_a, long_b = "a" * 63 + "1", "a" * 63 + "2"
    assert is_safe_id(handoff_key(long_a, "review"))
    assert handoff_key(long_a, "review") != handoff_key(long_b, "review")


def test_needs_by_consumer() -> None:
    assert needs_for("plan") == ["requirements", "constraints", "summary"]
    assert needs_for("build") == ["summary", "files_to_touch"]
    assert "diff" in needs_for("review") and "verify" in needs_for("review")
    assert needs_for("document") == ["summary"] and needs_for(None) == []


# --- outcomes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "retryable"),
    [
        (OutcomeKind.RATE_LIMITED, WorkflowStatus.PARKED, True),
        (OutcomeKind.AUTH_REQUIRED, WorkflowStatus.FAILED, False),
        (OutcomeKind.PERMISSION_DENIED, WorkflowStatus.FAILED, False),
        (OutcomeKind.CANCELLED, WorkflowStatus.CANCELLED, False),
        (OutcomeKind.FAILED, WorkflowStatus.FAILED, True),
        (OutcomeKind.CRASHED, WorkflowStatus.FAILED, True),
        (OutcomeKind.TIMED_OUT, WorkflowStatus.FAILED, True),
    ],
)
def test_outcome_table(kind: OutcomeKind, status: WorkflowStatus, retryable: bool) -> None:
    result = result_for(Outcome(kind=kind, message="the CLI said so"), "build")
    assert (result.status, result.retryable) == (status, retryable)
    assert result.message == "the CLI said so" and result.outcome_kind == str(kind)


def test_a_park_without_a_reset_time_uses_retry_after() -> None:
    before = datetime.now(UTC)
    result = result_for(Outcome(kind=OutcomeKind.RATE_LIMITED, retry_after=90), "plan")
    after = datetime.now(UTC)
    assert result.retry_at is not None
    # 90 s from when it was decided, however long that took (no bound on the machine's speed).
    assert before + timedelta(seconds=90) <= result.retry_at <= after + timedelta(seconds=90)
