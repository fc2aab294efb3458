"""What the merge queue answers: a merge's outcome, a conflict forecast, the committer identity.

A ``MergeResult`` is a report, never a promise to act later: ``waiting_for_checkout`` and
``conflict`` leave the base branch exactly as it was, and the caller decides when to call
``merge`` again (after the user cleaned their checkout, or after a resolve round).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = ["ConflictForecast", "GitIdentity", "MergeResult", "MergeStatus"]


class MergeStatus(StrEnum):
    MERGED = "merged"  # a new merge commit is on the base
    ALREADY_MERGED = "already_merged"  # the base held the tip or the task's trailer already
    CONFLICT = "conflict"  # nothing written; ``conflicts`` lists the paths
    WAITING_FOR_CHECKOUT = "waiting_for_checkout"  # the base's checkout is not clean; retry later


LANDED_STATUSES = frozenset({MergeStatus.MERGED, MergeStatus.ALREADY_MERGED})


@dataclass(frozen=True)
class GitIdentity:
    """Author and committer of the merge commits (the orchestrator, not the user or a CLI)."""

    name: str = "CLI Council"
    email: str = "council@localhost"

    def env(self) -> dict[str, str]:
        return {
            "GIT_AUTHOR_NAME": self.name,
            "GIT_AUTHOR_EMAIL": self.email,
            "GIT_COMMITTER_NAME": self.name,
            "GIT_COMMITTER_EMAIL": self.email,
        }


@dataclass(frozen=True)
class MergeResult:
    """The outcome of one ``MergeQueue.merge`` call.

    ``base_before`` is the base tip the last attempt read; ``base_after`` the tip when the
    call returned (equal to ``base_before`` unless ``status`` is ``merged``). ``merge_commit``
    is the commit that landed the work: the new one, or for ``already_merged`` the earlier
    merge commit carrying the task's trailer (None when the base simply contains the tip).
    ``tip_contained`` says whether the base now contains ``branch_tip`` (the condition for
    removing the session's worktree): true for ``merged``, and for ``already_merged`` unless
    the task landed from an earlier, different branch (then this tip's commits are not on the
    base, and the branch should be kept or rescued, not deleted).
    ``timings`` are seconds: ``lock_wait``, ``git`` (the attempts) and ``total``.
    In remote mode (``MergeQueue(remote=...)``) the base is the remote's branch:
    ``pushed_to`` names the remote when this call pushed the merge commit there, and
    ``local_behind`` is true when this clone's own base branch was left where it was (a
    dirty checkout, commits of its own; ``message`` says which): the landing still happened.
    """

    status: MergeStatus
    session_id: str
    task_id: str
    branch: str
    base_branch: str
    branch_tip: str
    base_before: str
    base_after: str
    merge_commit: str | None = None
    tip_contained: bool = False
    conflicts: list[str] = field(default_factory=list)
    message: str = ""
    details: list[str] = field(default_factory=list)
    checkout: Path | None = None
    attempts: int = 1
    git_calls: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    pushed_to: str | None = None
    local_behind: bool = False

    @property
    def landed(self) -> bool:
        """True when the base now contains the work (merged now or before)."""
        return self.status in LANDED_STATUSES

    def event_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": str(self.status),
            "session_id": self.session_id,
            "task_id": self.task_id,
            "branch": self.branch,
            "base_branch": self.base_branch,
            "branch_tip": self.branch_tip,
            "base_before": self.base_before,
            "base_after": self.base_after,
            "merge_commit": self.merge_commit,
            "tip_contained": self.tip_contained,
            "attempts": self.attempts,
            "git_calls": self.git_calls,
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
        }
        if self.conflicts:
            data["conflicts"] = list(self.conflicts)
        if self.message:
            data["message"] = self.message
        if self.details:
            data["details"] = list(self.details)
        if self.checkout is not None:
            data["checkout"] = str(self.checkout)
        if self.pushed_to is not None:
            data["pushed_to"] = self.pushed_to
        if self.local_behind:
            data["local_behind"] = True
        return data


@dataclass(frozen=True)
class ConflictForecast:
    """Whether merging ``branch_a`` and ``branch_b`` (at their merge base) would conflict."""

    branch_a: str
    branch_b: str
    conflicts: bool
    paths: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
