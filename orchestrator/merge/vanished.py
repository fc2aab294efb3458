"""Landed means still landed: which recorded landings the base lacks now, and what replaced them.

A task is landed while the base's first-parent history holds a merge commit with its
``Council-Task`` trailer (``merge.history``), or while the base contains the commit recorded as
its landing (a task that was found already on the base). Anything else, whatever the tree
holds, is a vanished landing: a reset or force-push that dropped the merge, the base branch
deleted and recreated, or a rewrite that squashed the merge into a commit without the trailer
(its content may still be there, but nothing says which task it is, so it does not count: the
relanding then makes a merge commit that changes nothing but carries the trailer).

``find_vanished`` costs nothing beyond the trailer index while every landing is still there
(no git call when the index already knows the tip); only a missing trailer costs a git call
(the ancestry check), and only a vanished one is described: where the base parts from the
landing (``merge-base``) and the first-parent commits the base gained since (at most
``_REPLACED_SHOWN``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestrator.git.merge_tree import GitCalls
from orchestrator.merge.history import TaskIndex

__all__ = ["VanishedLanding", "find_vanished", "kept_tip"]

_REPLACED_SHOWN = 20


@dataclass(frozen=True)
class VanishedLanding:
    """``task_id`` was landed in ``commit``, which the base (tip ``base``; None when the base
    branch is gone) no longer has; ``replaced_by``: ``<sha> <subject>``, newest first."""

    task_id: str
    commit: str
    base: str | None
    merge_base: str | None = None
    replaced_by: list[str] = field(default_factory=list)


def find_vanished(
    calls: GitCalls,
    history: TaskIndex,
    base: str | None,
    landed: Mapping[str, str],
    *,
    fresh: bool = True,
) -> list[VanishedLanding]:
    """The landings of ``landed`` (task id -> recorded landing commit) ``base`` lacks.

    ``fresh``: ``base`` was read after the records of ``landed`` (the end-of-run look). A tip
    read before them (the look after a landing, at the tip that landing read) may simply be
    older than a landing made meanwhile, here or on another workstation: there, a landing
    this clone does not know yet, or one that ``base`` precedes, is not judged."""
    gone: list[VanishedLanding] = []
    for task_id, commit in landed.items():
        if base is not None:
            if history.lookup(calls, base, task_id) is not None:
                continue
            known = calls.rev_parse(commit) is not None
            if known and calls.is_ancestor(commit, base):
                continue
            if not fresh and (not known or calls.is_ancestor(base, commit)):
                continue  # landed after the tip looked at: not for this look to judge
        gone.append(_describe(calls, task_id, commit, base))
    return gone


def kept_tip(calls: GitCalls, branch_ref: str, landing: str) -> str | None:
    """The work to land again: the tip of the task's kept branch, else the branch side of its
    recorded landing merge (its second parent, while git still has the object); None if
    neither is left."""
    tip = calls.rev_parse(branch_ref)
    if tip is not None:
        return tip
    return calls.rev_parse(f"{landing}^2")


def _describe(calls: GitCalls, task_id: str, commit: str, base: str | None) -> VanishedLanding:
    if base is None or calls.rev_parse(commit) is None:
        return VanishedLanding(task_id, commit, base)
    found = calls.run("merge-base", commit, base, check=False)
    merge_base = found.out if found.ok and found.out else None
    args = ["log", "--first-parent", f"--max-count={_REPLACED_SHOWN}", "--format=%H %s", base]
    if merge_base is not None:
        args.append(f"^{merge_base}")
    listed = calls.run(*args, check=False)
    replaced = [line for line in listed.out.splitlines() if line] if listed.ok else []
    return VanishedLanding(task_id, commit, base, merge_base, replaced)
