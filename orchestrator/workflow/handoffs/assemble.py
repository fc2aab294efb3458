"""Assembling a phase's handoff from what the CLI said and what the orchestrator found.

``make_handoff`` fills the document (``orchestrator.workflow.handoffs.document``): the CLI's summary
and messages, the task's requirements and constraints, the plan's files (parsed from a plan phase's
answer), the work facts and verify results (build), the verdict (review: none stated is approve,
``verdict_stated`` says which), the artifacts' digests, and ``needs``: what the next phase reads, or
the review feedback keys when review sends the task back to build. ``record_result`` is the summary
of it kept in the phase's ``PhaseRecord.result``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.adapter import Usage
from orchestrator.config.task import TaskConfig
from orchestrator.runner.phase_call import PhaseRun
from orchestrator.workflow.handoffs.document import (
    FEEDBACK_NEEDS,
    Handoff,
    VerifyRecord,
    needs_for,
    sha256_text,
)
from orchestrator.workflow.handoffs.facts import WorkFacts
from orchestrator.workflow.handoffs.prompts import constraints_for
from orchestrator.workflow.handoffs.review import parse_plan_files, parse_verdict

__all__ = ["PhaseOutput", "add_usage", "make_handoff", "record_result"]


@dataclass(frozen=True)
class PhaseOutput:
    """One finished phase: which, in what round and by whom, and what came of it."""

    task: TaskConfig
    phase: str
    following: str | None  # the next phase in the workflow's order
    round: int
    adapter: str
    branch: str
    ran: PhaseRun
    facts: WorkFacts | None = None
    checks: Sequence[VerifyRecord] = ()


def make_handoff(out: PhaseOutput, verify: Sequence[Sequence[str]]) -> Handoff:
    ran, facts = out.ran, out.facts
    reviewing = out.phase == "review"
    verdict = parse_verdict(ran.texts) if reviewing else None
    needs = list(FEEDBACK_NEEDS) if verdict == "request-changes" else needs_for(out.following)
    digests = {"summary": sha256_text(ran.summary)}
    if facts is not None:
        digests["diff"] = facts.diff_sha256
    return Handoff(
        task=out.task.id,
        phase=out.phase,
        adapter=out.adapter,
        round=out.round,
        branch=out.branch,
        head=facts.head if facts else None,
        native_session_id=ran.cli.native_session_id,
        summary=ran.summary,
        messages=ran.messages,
        requirements=out.task.prompt,
        constraints=constraints_for(out.task, verify),
        files_to_touch=parse_plan_files(ran.texts) if out.phase == "plan" else [],
        files_changed=facts.files if facts else [],
        diff_stat=facts.stat if facts else None,
        commits=facts.commits if facts else [],
        diff=facts.diff if facts else "",
        diff_truncated=facts.diff_truncated if facts else False,
        verify=list(out.checks),
        verdict=(verdict or "approve") if reviewing else None,
        verdict_stated=verdict is not None,
        sha256=digests,
        needs=needs,
    )


def record_result(handoff: Handoff) -> dict[str, Any]:
    result: dict[str, Any] = {"summary_sha256": handoff.sha256["summary"]}
    if handoff.diff_stat is not None:
        result |= {"head": handoff.head, "files_changed": handoff.files_changed}
        result["verify_ok"] = all(check.ok for check in handoff.verify)
    if handoff.files_to_touch:
        result["files_to_touch"] = handoff.files_to_touch
    if handoff.verdict is not None:
        result |= {"verdict": handoff.verdict, "verdict_stated": handoff.verdict_stated}
    return result


def add_usage(total: Usage | None, more: Usage | None) -> Usage | None:
    if total is None or more is None:
        return total or more
    costs = [c for c in (total.cost_usd, more.cost_usd) if c is not None]
    return Usage(
        input_tokens=total.input_tokens + more.input_tokens,
        output_tokens=total.output_tokens + more.output_tokens,
        cache_read_tokens=total.cache_read_tokens + more.cache_read_tokens,
        cache_write_tokens=total.cache_write_tokens + more.cache_write_tokens,
        cost_usd=sum(costs) if costs else None,
    )
