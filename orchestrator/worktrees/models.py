"""What the worktree manager hands back: session worktrees, commit and removal results, reports.

All are frozen pydantic models, so a caller can log them (``model_dump_json``), store them, or
compare them, and nothing downstream can change a result after the fact. ``WorktreeSettings``
is the run config's ``worktrees:`` section plus the knobs that only code sets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.config.sections import WorktreeConfig
from orchestrator.id_fields import SafeId
from orchestrator.sandbox.plan import SandboxSettings

__all__ = [
    "CommitResult",
    "MovedLock",
    "ReconcileReport",
    "RemovalResult",
    "Rewound",
    "SessionStats",
    "SessionWorktree",
    "WorktreeInfo",
    "WorktreeKind",
    "WorktreeSettings",
]

_ATTEMPT = re.compile(r"/([1-9][0-9]*)$")


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorktreeSettings:
    """How worktrees are prepared: the run config's ``worktrees:`` section (``config``, or its
    fields given by name) and the knobs only code sets."""

    def __init__(
        self,
        config: WorktreeConfig | None = None,
        *,
        meta_lock_timeout: float = 120.0,  # wait at most this long for the worktree lock
        stale_lock_age: float = 2.0,  # a younger index.lock is never moved: git may be making it
        sandbox: SandboxSettings | None = None,  # the run's: setup commands run inside it
        # An adapter's own (its ``sandbox:`` over the run's): its sessions' setup runs in it.
        adapter_sandboxes: Mapping[str, SandboxSettings] | None = None,
        **fields: Any,
    ) -> None:
        if config is not None and fields:
            raise TypeError("give WorktreeSettings a WorktreeConfig or its fields, not both")
        self.config = config if config is not None else WorktreeConfig.model_validate(fields)
        if meta_lock_timeout <= 0 or stale_lock_age < 0:
            raise ValueError("meta_lock_timeout must be positive and stale_lock_age not negative")
        self.meta_lock_timeout = meta_lock_timeout
        self.stale_lock_age = stale_lock_age
        self.sandbox = sandbox
        self.adapter_sandboxes = dict(adapter_sandboxes or {})

    def sandbox_for(self, cli: str) -> SandboxSettings | None:
        """The sandbox the CLI ``cli`` runs in, which its sessions' setup commands get too."""
        return self.adapter_sandboxes.get(cli, self.sandbox)

    @classmethod
    def from_config(cls, config: WorktreeConfig) -> WorktreeSettings:
        return cls(config)

    @property
    def copy_files(self) -> list[str]:
        return self.config.copy_files

    @property
    def setup(self) -> list[list[str]]:
        return self.config.setup

    @property
    def setup_timeout(self) -> float:
        return self.config.setup_timeout

    @property
    def passthrough_env(self) -> list[str]:
        return self.config.passthrough_env

    @property
    def pool_size(self) -> int:
        return self.config.pool_size

    @property
    def sparse(self) -> list[str]:
        return self.config.sparse


class SessionWorktree(_Result):
    """One CLI session's worktree: where it is, which branch it works on, what it forked from."""

    session_id: SafeId
    cli: SafeId
    task_id: SafeId
    path: Path
    branch: str
    base_commit: str
    created_at: datetime

    @property
    def attempt(self) -> int:
        """The ``<n>`` of ``council/<task>/<n>``."""
        match = _ATTEMPT.search(self.branch)
        return int(match.group(1)) if match else 0


class CommitResult(_Result):
    committed: bool
    sha: str | None = None
    files: list[str] = Field(default_factory=list)
    head: str | None = Field(
        default=None, description="the worktree's HEAD afterwards, committed or not (if read)"
    )
    scrubbed: list[str] = Field(
        default_factory=list,
        description="files a known secret was masked in before the commit, each with the "
        "secrets' names: `settings.env (OPENAI_API_KEY)`",
    )
    parent: str | None = Field(
        default=None, description="the commit's one parent, when `diff` is its diff from it"
    )
    diff: str | None = Field(
        default=None,
        repr=False,
        description="`git diff --numstat -z -p` from `parent` to the commit, when asked for "
        "and git's files told the commit exactly (`commits.commit_all_sync`)",
    )

    @property
    def files_changed(self) -> int:
        return len(self.files)


class Rewound(_Result):
    """A session put back at a phase's start (``SessionWork.rewind``)."""

    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use

    head: str = Field(description="the branch's tip now: the start, or (not held) as it was")
    kept: str | None = Field(
        default=None, description="the tip kept on the rescue ref, when anything was undone"
    )
    held: bool = Field(
        description="the branch held the start; False: it predates the phase, nothing undone"
    )


class SessionStats(_Result):
    """The branch's committed work against its merge-base with the base branch."""

    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use

    session_id: str
    branch: str
    tip: str | None
    merge_base: str | None
    commits_ahead: int
    files_changed: int
    insertions: int
    deletions: int
    dirty: bool = Field(description="the worktree holds changes not committed yet")


class RemovalResult(_Result):
    session_id: str
    branch: str
    tip: str | None = Field(description="the last commit of the session's work")
    merged: bool = Field(description="the base branch contains the tip")
    rescue_commit: str | None = Field(
        default=None, description="the commit that saved uncommitted work, if there was any"
    )
    rescue_ref: str | None = Field(
        default=None, description="the ref holding the tip (when the base does not contain it)"
    )
    worktree_removed: bool = False
    pooled: bool = Field(default=False, description="kept, clean, for reuse by a new session")
    branch_deleted: bool = False


WorktreeKind = Literal["main", "linked", "session", "pool"]
"""``main``: the user's checkout; ``linked``: a worktree the user made; ``session`` and
``pool``: the orchestrator's (under ``.council/worktrees`` and ``.council/pool``)."""


class WorktreeInfo(_Result):
    path: Path
    kind: WorktreeKind
    head: str | None = None
    branch: str | None = Field(default=None, description="short branch name; None if detached")
    locked: bool = False
    lock_reason: str | None = None
    prunable: bool = False
    registered: bool = Field(default=True, description="git's worktree metadata knows it")
    exists: bool = Field(default=True, description="its directory is on disk")
    session_id: str | None = None
    cli: str | None = None
    task_id: str | None = None

    @property
    def ours(self) -> bool:
        return self.kind in ("session", "pool")


class MovedLock(_Result):
    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use
    path: Path
    moved_to: Path


class ReconcileReport(_Result):
    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use
    moved_locks: list[MovedLock] = Field(default_factory=list)
    pruned: list[Path] = Field(
        default_factory=list, description="worktrees whose directory was gone: metadata removed"
    )
    recovered: list[str] = Field(
        default_factory=list,
        description="sessions whose admin directory was deleted, given back to git: what was done",
    )
    missing: list[str] = Field(
        default_factory=list,
        description="live sessions without a worktree; recreate_session_worktree brings them back",
    )
    removed: list[RemovalResult] = Field(
        default_factory=list, description="worktrees of dead sessions, cleaned up safely"
    )
    busy: list[str] = Field(
        default_factory=list, description="dead sessions left alone: processes still run inside"
    )
    pool_trimmed: list[Path] = Field(default_factory=list)
    orphans: list[Path] = Field(
        default_factory=list,
        description="directories under .council that git does not know; left for a human",
    )
    problems: list[str] = Field(default_factory=list)
