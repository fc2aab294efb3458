"""A worktree whose admin directory was deleted, given back to git (blocking: worker threads).

A linked worktree is two halves: its checkout (with a ``.git`` file naming its admin
directory) and that admin directory, ``<common dir>/worktrees/<name>`` (``HEAD``, ``index``,
``commondir``, ``gitdir``, the lock). A CLI that deletes the admin directory of a worktree
beside its own (``rm -rf .git/worktrees/<name>``) strands the checkout: every git command
in it fails ("not a git repository"), so its uncommitted edits are loose files git no longer
knows, which no commit, rescue ref or removal would keep.

- ``stranded_admin(worktree, common_dir)`` is the admin directory a checkout's ``.git`` file
  names when that directory is gone (its ``HEAD`` missing), else None: a few stats, no
  process. A ``.git`` file naming anything outside ``<common dir>/worktrees/`` is not ours to
  recreate (None).
- ``restore_admin_sync`` recreates it, as ``git worktree add`` would have left it and without
  touching one file of the checkout: ``HEAD`` = ``ref: refs/heads/<branch>``, ``commondir``,
  ``gitdir``, the lock reason and the orchestrator's ready mark (``READY``: the making of the
  worktree was complete, so nothing checks it out again), then an index from
  ``git read-tree <branch>`` (the branch's tree; the files on disk are compared against it by
  content). The checkout's edits are changes again, and the next commit puts them on the
  session branch. (``git worktree repair`` cannot do this: it mends the links between the two
  halves, and needs both.) Callers hold the repository's metadata lock.

- ``restore_stranded(ws, session)`` is the same for a session the orchestrator knows, under
  the metadata lock: ``reconcile`` (``council worktrees prune`` and ``clean``), ``retire`` and
  a retry's ``recreate`` call it before they touch the checkout; the tamper guard restores a
  running session's at the next check.

Limits: a sparse worktree's own sparse-checkout file went with its admin directory, and the
recreated one is not sparse: every tracked file missing from disk is marked
``skip-worktree`` so that no commit deletes what was never checked out, and a deletion the
CLI made there is not recovered as one (its content is still on the branch). The admin
directory's reflog is gone with it. A checkout the orchestrator knows no session for (not in
the store) has no known branch, and is left for a human as before.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import WorkspaceError
from orchestrator.git import seal
from orchestrator.git.gitfile import read_gitfile
from orchestrator.git.repo import Git
from orchestrator.safety.safe_write import make_dirs, write_atomic
from orchestrator.worktrees.models import SessionWorktree
from orchestrator.worktrees.names import lock_reason
from orchestrator.worktrees.ops import Workspace

__all__ = ["READY", "restore_admin_sync", "restore_stranded", "stranded_admin"]

log = logging.getLogger(__name__)

READY = "council-ready"  # in a worktree's admin directory: the orchestrator finished making it


def stranded_admin(worktree: Path, common_dir: Path) -> Path | None:
    """The admin directory ``worktree``'s ``.git`` file names, when it is gone (module doc)."""
    admin = read_gitfile(worktree)
    if admin is None or admin.parent != common_dir / "worktrees":
        return None
    if os.path.lexists(admin / "HEAD"):
        return None
    return admin


def restore_admin_sync(
    git: Git,
    common_dir: Path,
    worktree: Path,
    branch: str,
    *,
    lock_reason: str | None,
    ready: str | None,
    sparse: bool = False,
) -> str:
    """Recreate ``worktree``'s deleted admin directory on ``branch`` (short name); what was
    done, for a human. ``WorkspaceError`` when it cannot be (the branch is gone too, or the
    worktree is whole again)."""
    admin = stranded_admin(worktree, common_dir)
    if admin is None:
        raise WorkspaceError(f"{worktree} is not a stranded worktree of this repository")
    ref = f"refs/heads/{branch}"
    if not git.run_sync("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False).ok:
        raise WorkspaceError(
            f"{worktree}: its admin directory was deleted and its branch {branch} is gone; "
            "its files are left in place for a human"
        )
    # The run's seal knew the old admin dir's files: they are made anew here, not put back.
    seal.forget_worktree(git.cwd, worktree)
    make_dirs(common_dir, admin)
    gitdir = os.path.join(os.path.realpath(worktree), ".git")
    files = {
        "commondir": "../..\n",
        "gitdir": gitdir + "\n",
        **({"locked": lock_reason} if lock_reason is not None else {}),
        **({READY: ready.rstrip("\n") + "\n"} if ready is not None else {}),
        "config.worktree": "",  # as the sandbox's reach makes it (``worktrees.confine``)
    }
    for name, text in files.items():
        write_atomic(common_dir, admin / name, text.encode())
    write_atomic(common_dir, admin / "HEAD", f"ref: {ref}\n".encode())  # last: now it counts
    here = git.at(worktree)
    here.run_sync("read-tree", ref)
    if sparse:
        _keep_missing(here, worktree)
    listed = here.run_sync(
        *("--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all"),
        check=False,
    )
    changed = len([entry for entry in listed.stdout.split("\0") if entry]) if listed.ok else 0
    seal.expect_worktree(git.cwd, worktree)  # as made anew: sealed from here on
    return (
        f"its admin directory {admin.name} recreated on {branch}, "
        f"{changed} changed path{'' if changed == 1 else 's'} known to git again"
    )


def _keep_missing(git: Git, worktree: Path) -> None:
    listed = git.run_sync("ls-files", "-z")
    missing = [
        path for path in listed.stdout.split("\0") if path and not os.path.lexists(worktree / path)
    ]
    for start in range(0, len(missing), 500):
        git.run_sync("update-index", "--skip-worktree", "--", *missing[start : start + 500])


async def restore_stranded(ws: Workspace, session: SessionWorktree) -> str | None:
    """Give ``session``'s checkout back to git when its admin directory was deleted
    (``stranded``), under the metadata lock; what was done, None when it was whole."""
    common = ws.layout.common_dir
    if await anyio.to_thread.run_sync(stranded_admin, session.path, common) is None:
        return None
    reason = lock_reason(session.session_id, session.cli, session.task_id)

    def restore() -> str | None:
        if stranded_admin(session.path, common) is None:
            return None  # restored meanwhile
        return restore_admin_sync(
            ws.git,
            common,
            session.path,
            session.branch,
            lock_reason=reason,
            ready=session.session_id,
            sparse=bool(ws.settings.sparse),
        )

    async with ws.meta.hold():
        done = await anyio.to_thread.run_sync(restore)
    if done is not None:
        log.warning("session %s: %s", session.session_id, done)
    return done
