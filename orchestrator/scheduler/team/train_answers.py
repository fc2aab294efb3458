"""A team train's answers, as the store keeps them (``team.train``): what the lander writes of a
landing's result on a teammate's record (``result_data``: its texts masked and bounded) and how
the owner reads it back (``result_from``), as untrusted input: every field checked against what
a landing of that task at its recorded commit gives, a wrong one named."""

from __future__ import annotations

from typing import Any

from orchestrator.ids import is_commit_id
from orchestrator.merge.types import MergeResult, MergeStatus
from orchestrator.safety import secret_mask

__all__ = ["SHOWN", "TEXT", "listed", "masked", "result_data", "result_from"]

SHOWN = 20  # conflict paths, details and findings kept in an answer
TEXT = 2000  # characters of a message kept in an answer


def masked(text: str) -> str:
    return secret_mask.hidden(text)[:TEXT]


def listed(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


_RESULTTEXT = ("session_id", "task_id", "branch", "base_branch", "message")
_RESULT_SHAS = ("branch_tip", "base_before", "base_after")


def result_data(result: MergeResult) -> dict[str, Any]:
    """What an owner needs of a landing's result (``result_from`` reads it back)."""
    return {
        "status": str(result.status),
        **{name: getattr(result, name) for name in _RESULTTEXT},
        **{name: getattr(result, name) for name in _RESULT_SHAS},
        "message": masked(result.message),
        "merge_commit": result.merge_commit,
        "tip_contained": result.tip_contained,
        "conflicts": [masked(p) for p in result.conflicts[:SHOWN]],
        "details": [masked(d) for d in result.details[:SHOWN]],
        "attempts": result.attempts,
        "pushed_to": result.pushed_to,
    }


def result_from(value: object, task_id: str, tip: str) -> MergeResult:
    """A teammate's answer read back as a result, checked: ``ValueError`` (or ``TypeError``)
    naming the field that is not what a landing of ``task_id`` at ``tip`` gives."""
    if not isinstance(value, dict):
        raise TypeError("the result is not a mapping")
    status = MergeStatus(str(value.get("status")))
    if status is MergeStatus.WAITING_FOR_CHECKOUT:
        raise ValueError("a remote landing never waits for a checkout")
    text = {name: value.get(name) for name in _RESULTTEXT}
    for name, found in text.items():
        if not isinstance(found, str):
            raise TypeError(f"result.{name} is not text")
    if text["task_id"] != task_id:
        raise ValueError(f"result.task_id {text['task_id']!r} is not {task_id!r}")
    shas = {name: value.get(name) for name in _RESULT_SHAS}
    for name, found in shas.items():
        if not is_commit_id(found):
            raise ValueError(f"result.{name} is not a commit id")
    if shas["branch_tip"] != tip:
        raise ValueError(f"result.branch_tip {shas['branch_tip']} is not the recorded {tip}")
    merge_commit = value.get("merge_commit")
    if merge_commit is not None and (not is_commit_id(merge_commit)):
        raise ValueError("result.merge_commit is not a commit id")
    if status is MergeStatus.MERGED and merge_commit is None:
        raise ValueError("a merged result names no merge commit")
    pushed_to = value.get("pushed_to")
    attempts = value.get("attempts", 1)
    return MergeResult(
        status=status,
        session_id=str(text["session_id"]),
        task_id=task_id,
        branch=str(text["branch"]),
        base_branch=str(text["base_branch"]),
        branch_tip=tip,
        base_before=str(shas["base_before"]),
        base_after=str(shas["base_after"]),
        merge_commit=merge_commit,
        tip_contained=value.get("tip_contained") is True,
        conflicts=[str(p) for p in listed(value.get("conflicts"))][:SHOWN],
        message=str(text["message"])[:TEXT],
        details=[str(d) for d in listed(value.get("details"))][:SHOWN],
        attempts=attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 1,
        pushed_to=pushed_to if isinstance(pushed_to, str) else None,
    )
