"""A live session's work as the radar sees it, read from its worktree without disturbing it.

One ``git diff --merge-base <base> -U0`` in the worktree: the working tree (committed and
uncommitted changes alike) against where the session's branch left the base, so work the base
gained since is not counted as the session's. A diff of the working tree refreshes the index's
stat data and writes it back under ``index.lock`` (``--no-optional-locks`` does not stop
``git diff`` doing so, git 2.39): a CLI's own ``git add`` at that moment would fail. So git reads
a copy of the worktree's index (``GIT_INDEX_FILE``, in a scratch file of the radar's), and
whatever it refreshes is the copy's: the radar never takes the worktree's ``index.lock``. Files
not yet known to git (never added) are not in a diff, so not seen until the phase commit adds
them.

The tip is read with the diff (``rev-parse HEAD``, same process count as git's ref files would
need parsing here): a ``merge-tree`` needs committed tips.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.git.gitfile import read_gitfile
from orchestrator.git.merge_tree import GitCalls
from orchestrator.radar.hunks import FileDiff, parse_diff

__all__ = ["DIFF_ARGS", "Snapshot", "read_snapshot"]

DIFF_ARGS = (
    "--no-optional-locks",
    "diff",
    "--no-ext-diff",
    "--no-textconv",
    "--no-color",
    "--no-renames",
    "-U0",
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A session's work at one look: its tip, its diff against the base, and the diff's hash
    (what the engine compares to know it moved)."""

    tip: str
    diff: str
    digest: str

    def files(self) -> dict[str, FileDiff]:
        return parse_diff(self.diff)


def read_snapshot(calls: GitCalls, worktree: Path, base_ref: str) -> Snapshot | None:
    """The session's snapshot (blocking: run it in a worker thread); None when its worktree
    is gone or git cannot answer (the session ended under the look)."""
    if not worktree.is_dir():
        return None
    head = calls.run("--no-optional-locks", "rev-parse", "HEAD", cwd=worktree, check=False)
    if not head.ok:
        return None
    with tempfile.TemporaryDirectory(prefix="council-radar-") as scratch:
        index = os.path.join(scratch, "index")
        if not _copy_index(worktree, index):
            return None
        env = {"GIT_INDEX_FILE": index}
        args = (*DIFF_ARGS, "--merge-base", base_ref)
        diff = calls.run(*args, cwd=worktree, check=False, env=env)
    if not diff.ok:
        return None
    digest = hashlib.sha256(f"{head.out}\n{diff.stdout}".encode()).hexdigest()
    return Snapshot(head.out, diff.stdout, digest)


def _copy_index(worktree: Path, target: str) -> bool:
    """The worktree's index copied to ``target`` (git replaces an index by renaming a new one
    over it, so the copy is one whole version); False when the worktree has no admin dir."""
    admin = worktree / ".git" if (worktree / ".git").is_dir() else read_gitfile(worktree)
    if admin is None:
        return False
    with contextlib.suppress(FileNotFoundError):  # no index yet: git reads an empty one
        shutil.copyfile(admin / "index", target)
    return True
