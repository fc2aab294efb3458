"""How a phase's CLI outcome decides the attempt: the table the scheduler acts on.

=================  ===========  ==========  ==================================================
CLI outcome        result       retryable   why
=================  ===========  ==========  ==================================================
rate_limited       PARKED       yes         resume the same conversation after ``retry_at``
auth_required      FAILED       no          a human must log in; the CLI's message says how
permission_denied  FAILED       no          the CLI was refused what the task needs
cancelled          CANCELLED    no          stopped on request; the work is committed
no_changes         FAILED       once        the orchestrator found an empty diff: one retry at
                                            once, its build told why; a second ends the task
failed, crashed,   FAILED       yes         transient until the retries run out
timed_out
=================  ===========  ==========  ==================================================

``retry_at`` of a parked result is the CLI's reset time, else now plus its ``retry_after``,
else None (the scheduler then backs off on its own).

A build that changed nothing is ``permission_denied`` rather than ``no_changes`` when the
CLI was refused something on the way (``Adapter.denials``) or its adapter cannot write with
its options (``Adapter.can_write``: a plan or read-only mode): another attempt with the same
options would be refused the same way, so it is final (``empty_build_outcome``).
"""

from __future__ import annotations

from datetime import timedelta

from orchestrator.adapter import Outcome, OutcomeKind
from orchestrator.models import utcnow
from orchestrator.workflow.task_run import WorkflowResult, WorkflowStatus

__all__ = ["NOT_RETRYABLE", "empty_build_outcome", "result_for"]

NOT_RETRYABLE = frozenset({OutcomeKind.AUTH_REQUIRED, OutcomeKind.PERMISSION_DENIED})


def result_for(outcome: Outcome, phase: str, message: str | None = None) -> WorkflowResult:
    """The attempt's result when ``phase`` ended with ``outcome`` (never SUCCEEDED)."""
    kind = outcome.kind
    text = message or outcome.message or str(kind)
    if kind == OutcomeKind.RATE_LIMITED:
        retry_at = outcome.retry_at
        if retry_at is None and outcome.retry_after is not None:
            retry_at = utcnow() + timedelta(seconds=outcome.retry_after)
        return WorkflowResult(
            status=WorkflowStatus.PARKED,
            phase=phase,
            message=text,
            retryable=True,
            outcome_kind=str(kind),
            retry_at=retry_at,
        )
    if kind == OutcomeKind.CANCELLED:
        return WorkflowResult(
            status=WorkflowStatus.CANCELLED, phase=phase, message=text, outcome_kind=str(kind)
        )
    return WorkflowResult(
        status=WorkflowStatus.FAILED,
        phase=phase,
        message=text,
        retryable=kind not in NOT_RETRYABLE,
        outcome_kind=str(kind),
    )


def empty_build_outcome(denials: list[str], read_only: str | None, said: str) -> Outcome:
    """Why a build changed nothing: ``permission_denied`` after a denial or through an adapter
    that cannot write (``read_only`` says why), else ``no_changes``; ``said`` is the CLI's
    summary."""
    quoted = f"(the CLI said: {said[:300]!r})"
    if denials:
        shown = "; ".join(denials[:5]) + (
            f"; and {len(denials) - 5} more" if len(denials) > 5 else ""
        )
        message = f"the build changed nothing and the CLI was refused: {shown} {quoted}"
        return Outcome(kind=OutcomeKind.PERMISSION_DENIED, message=message)
    if read_only is not None:
        message = f"the build changed nothing: {read_only} {quoted}"
        return Outcome(kind=OutcomeKind.PERMISSION_DENIED, message=message)
    message = (
        f"the build changed nothing: no commits ahead of the base and nothing to commit {quoted}"
    )
    return Outcome(kind=OutcomeKind.NO_CHANGES, message=message)
