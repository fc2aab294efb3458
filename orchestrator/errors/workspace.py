"""The user's repository, a worktree, or a path inside them: git failing, a push refused, the
base branch moving or locked under the merge queue."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.errors.base import CouncilError

__all__ = [
    "BaseLocked",
    "GitError",
    "MergeContention",
    "PathEscapeError",
    "RemotePushRefused",
    "UnusableRepository",
    "WorkspaceError",
    "WorktreeBusy",
]


class WorkspaceError(CouncilError):
    """A problem with the user's repository, a worktree, or a path inside them."""


class WorktreeBusy(WorkspaceError):
    """Processes still run inside a worktree that was to be removed."""


class PathEscapeError(WorkspaceError, ValueError):
    """A path resolves outside the directory it must stay under."""


class UnusableRepository(WorkspaceError, ValueError):
    """The configured repository cannot be used as it is (not a git checkout, a symlinked
    ``.council``); refused before anything is written, and the user's to fix (exit code 2)."""


class GitError(WorkspaceError):
    """A git command failed."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        detail = stderr.strip() or "no output"
        super().__init__(f"git {' '.join(self.argv)} failed ({returncode}): {detail}")


class RemotePushRefused(GitError):
    """The shared remote refused a push for a reason other than "the ref moved": a server
    hook declined, the branch is protected, no permission, the remote is unreachable.
    ``reason`` is git's short reason, ``server`` what the server said (a hook's lines).
    Never retried, never forced: nothing was changed on the remote."""

    def __init__(
        self,
        remote: str,
        ref: str,
        reason: str,
        server: Sequence[str],
        argv: Sequence[str],
        returncode: int | None,
    ) -> None:
        self.remote = remote
        self.ref = ref
        self.reason = reason
        self.server = list(server)
        said = "; ".join(self.server)
        detail = f"{reason}: {said}" if said and said != reason else reason
        GitError.__init__(self, argv, returncode, "\n".join(self.server) or reason)
        WorkspaceError.__init__(
            self, f"remote {remote!r} refused the push to {ref} ({detail}); nothing was forced"
        )


class MergeContention(WorkspaceError):
    """Another writer moved the base branch during every one of the merge queue's attempts."""

    def __init__(self, base_branch: str, attempts: int, last_error: str = "") -> None:
        self.base_branch = base_branch
        self.attempts = attempts
        self.last_error = last_error
        hint = (
            f" (last refusal: {last_error})"
            if last_error
            else "; another process keeps writing it (run its merges through the same merge "
            "lock, then retry)"
        )
        super().__init__(
            f"base branch {base_branch!r} moved or was locked during each of {attempts} merge "
            f"attempts{hint}"
        )


class BaseLocked(MergeContention):
    """A lock file of git's own (``<ref>.lock``, ``HEAD.lock``, ``packed-refs.lock``, the
    checkout's ``index.lock``) kept the merge queue from moving the base branch; ``locks``
    describes each (path, age, who holds it). Nothing was changed."""

    def __init__(self, base_branch: str, locks: Sequence[str], waited: float = 0.0) -> None:
        self.locks = list(locks)
        self.waited = waited
        how = f"waited {waited:.1f} s for it; " if waited > 0 else ""
        detail = "; ".join(self.locks)
        WorkspaceError.__init__(
            self,
            f"cannot move base branch {base_branch!r}: {detail}; {how}nothing was changed "
            "and the task's branch keeps its work. Once no git command runs in that "
            "repository any more, remove the lock file (git's own advice after a crash) and "
            "run the task again",
        )
        self.base_branch = base_branch
        self.attempts = 1
        self.last_error = detail
