"""What one merge attempt decides before it writes anything, whatever base it lands on.

The local queue (``merge.queue``: the base is this repository's branch) and the remote
landing (``merge.remote``: the base is a shared remote's branch, read through its tracking
ref) ask the same questions of the tips they read: did the task land already, does the branch
conflict, does the base already contain the tip. ``examine`` answers them; only what follows
(moving a local ref, or pushing) differs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from orchestrator.git.merge_tree import GitCalls, Tips, merge_trees
from orchestrator.merge.history import TaskIndex
from orchestrator.merge.types import MergeResult, MergeStatus

__all__ = ["Mergeable", "Request", "Retry", "examine"]


@dataclass(frozen=True)
class Request:
    session_id: str
    task_id: str
    branch: str
    ref: str
    message: str | None


@dataclass(frozen=True)
class Retry:
    """The attempt must start over; ``reason`` is git's refusal when there was one."""

    reason: str = ""


@dataclass(frozen=True)
class Mergeable:
    """The branch merges cleanly into the base: ``tree`` is the merged tree, ``report`` the
    result so far (status ``merged``, base before and after still the tip read)."""

    report: MergeResult
    tree: str


def examine(
    calls: GitCalls,
    history: TaskIndex,
    request: Request,
    base_branch: str,
    tips: Tips,
    *,
    landed: str | None = None,
) -> MergeResult | Mergeable:
    """``already_merged`` or ``conflict`` as a final result, or what a landing needs.

    ``tips.base`` is what the branch is merged onto; ``landed`` the base tip of record, when
    the two differ (a merge train: ``merge.cars``): whether the task landed already is read
    there, never on merges that have not landed yet."""
    base = tips.base
    record = landed or base
    report = MergeResult(
        status=MergeStatus.MERGED,
        session_id=request.session_id,
        task_id=request.task_id,
        branch=request.branch,
        base_branch=base_branch,
        branch_tip=tips.branch,
        base_before=base,
        base_after=base,
    )
    earlier = history.lookup(calls, record, request.task_id)
    if earlier is not None:
        return replace(
            report,
            status=MergeStatus.ALREADY_MERGED,
            merge_commit=earlier,
            tip_contained=calls.is_ancestor(tips.branch, record),
            message=f"task {request.task_id!r} already landed on {base_branch!r} in {earlier}",
        )
    merged = merge_trees(calls, base, tips.branch)
    if not merged.clean:
        return replace(
            report,
            status=MergeStatus.CONFLICT,
            conflicts=merged.conflicts,
            details=merged.messages,
            message=f"{request.branch} conflicts with {base_branch} in "
            f"{len(merged.conflicts)} path(s)",
        )
    # Only an unchanged tree can mean the base already holds the tip (or the branch brings
    # nothing new, which still gets a merge commit so its tip is contained afterwards).
    if merged.tree == tips.base_tree and calls.is_ancestor(tips.branch, record):
        return replace(
            report,
            status=MergeStatus.ALREADY_MERGED,
            tip_contained=True,
            message=f"{base_branch!r} already contains {request.branch} ({tips.branch})",
        )
    return Mergeable(report, merged.tree)
