"""Git's own lock files that stand between the merge queue and the base branch.

Git takes ``<file>.lock`` (created exclusively, renamed over the file when done) for every ref,
``HEAD``, ``packed-refs`` and each checkout's ``index``. A git that crashed (or was killed)
leaves its lock behind, and from then on every git command that needs that file fails with
"File exists". For the merge queue that matters before anything is written: ``git merge
--ff-only`` in a checkout of the base rewrites the index and the files first and moves the ref
last, so a leftover ref lock made it leave the merge staged in the user's checkout with the
ref unmoved.

``held_git_locks`` names the locks a merge into the base would need and finds present, before
the queue touches anything:

- always ``<common dir>/<base ref>.lock`` and ``<common dir>/packed-refs.lock``;
- when the base is checked out, that checkout's ``HEAD.lock`` and ``index.lock`` (in its own
  git directory: the common dir for the main checkout, ``worktrees/<name>`` for a linked one).

Each comes with its age and the processes that may hold it (``worktree_safety.lock_holders``:
a process with the file open, or a git process working in the repository, which may hold it
between creating and renaming it). ``GitLockFile.stale`` is a lock that no process holds and
that is older than ``min_age`` (git may be creating one this very moment): waiting for it is
pointless. The queue never removes one: it is in the user's repository, and only they know
whether the git that left it is gone for good.

Blocking (a few ``lstat`` calls; the processes are looked at only when a lock is there): call it
in a worker thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.process.path_users import Holder, lock_holders

__all__ = ["GitLockFile", "describe_age", "held_git_locks"]

_MIN_AGE = 2.0  # seconds: a younger lock without a holder may be one git is creating now


@dataclass(frozen=True)
class GitLockFile:
    """One lock file of git's that is present, how old it is and who may hold it."""

    path: Path
    age: float  # seconds since it was last written
    holders: list[Holder] = field(default_factory=list)
    min_age: float = _MIN_AGE

    @property
    def stale(self) -> bool:
        """Nobody holds it and it is old enough that nobody is about to: it stays forever."""
        return not self.holders and self.age >= self.min_age

    def describe(self) -> str:
        where = f"{self.path} exists ({describe_age(self.age)} old)"
        if self.holders:
            named = "; ".join(f"pid {h.pid} ({h.command}), which {h.how}" for h in self.holders[:3])
            return f"{where} and a git process may hold it: {named}"
        if not self.stale:
            return f"{where}; no process holds it yet (a git command may be creating it)"
        return f"{where} and no git process holds it: a git command that crashed left it behind"


def held_git_locks(
    common_dir: Path,
    base_ref: str,
    checkout_admin: Path | None,
    places: Sequence[Path],
    *,
    min_age: float = _MIN_AGE,
) -> list[GitLockFile]:
    """The lock files a merge into ``base_ref`` would need that are present now.

    ``checkout_admin`` is the git directory of the checkout holding the base (None when it is
    not checked out); ``places`` the directories a git process holding one would work in (the
    repository's checkouts and its common dir)."""
    candidates = [common_dir / f"{base_ref}.lock", common_dir / "packed-refs.lock"]
    if checkout_admin is not None:
        candidates += [checkout_admin / "HEAD.lock", checkout_admin / "index.lock"]
    found: list[GitLockFile] = []
    for path in candidates:
        try:
            modified = os.lstat(path).st_mtime
        except FileNotFoundError:
            continue
        holders = lock_holders(path, places)
        age = max(0.0, time.time() - modified)
        found.append(GitLockFile(path, age, holders, min_age=min_age))
    return found


def describe_age(seconds: float) -> str:
    """``45 s``, ``1 min 30 s``, ``2 h 0 min``, ``3 d 4 h``: precise enough to tell a lock a
    git is holding right now from one a crash left days ago."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
