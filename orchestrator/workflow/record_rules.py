"""The workflow's own record rules (``RecordRule``), registered on the store of every run:
what a task's phase records and its stored handoffs must always say, whoever writes them.

- ``workflow.phase-order``: each phase record is filed under its own name; at most one phase
  of a task runs at a time (the workflow runs them one after another); a phase does not end
  before it started. (Whether a completed phase's handoff is the one it produced is checked
  where it is read, ``resume``: a workflow of a caller's own may keep no handoffs.)
- ``workflow.handoff-digests``: a stored handoff is a valid ``Handoff`` whose artifacts match
  their sha256 (``Handoff`` checks that), filed under the key of its own task and phase.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from orchestrator.models import KeyedRecord, PhaseStatus, TaskState
from orchestrator.plugins.record_rule import RecordRule
from orchestrator.state.history_kinds import keyed_kind
from orchestrator.workflow.handoffs.document import NAMESPACE, Handoff, handoff_key

__all__ = ["HANDOFF_DIGESTS", "PHASE_ORDER", "workflow_rules"]


def _phase_order(kind: str, key: str, before: Any, after: Any) -> str | None:
    if not isinstance(after, TaskState):
        return None
    running = [name for name, phase in after.phases.items() if phase.status == PhaseStatus.RUNNING]
    if len(running) > 1:
        return f"phases {', '.join(running)} would run at once"
    for name, phase in after.phases.items():
        if phase.name != name:
            return f"phase {phase.name!r} is filed under {name!r}"
        if phase.started_at and phase.finished_at and phase.finished_at < phase.started_at:
            return f"phase {name!r} would end ({phase.finished_at}) before it started"
    return None


def _handoff_digests(kind: str, key: str, before: Any, after: Any) -> str | None:
    if not isinstance(after, KeyedRecord):
        return None
    try:
        handoff = Handoff.model_validate(after.data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "the document"
        return f"not a valid handoff: {where}: {problem['msg']}"
    expected = handoff_key(handoff.task, handoff.phase)
    if key != expected:
        return f"the handoff of {handoff.task}/{handoff.phase} belongs under {expected!r}"
    return None


PHASE_ORDER = RecordRule("workflow.phase-order", _phase_order, frozenset({"tasks"}))
HANDOFF_DIGESTS = RecordRule(
    "workflow.handoff-digests", _handoff_digests, frozenset({keyed_kind(NAMESPACE)})
)


def workflow_rules() -> list[RecordRule]:
    return [PHASE_ORDER, HANDOFF_DIGESTS]
