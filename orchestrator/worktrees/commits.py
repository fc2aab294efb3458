"""Committing a session's work, and keeping a tip reachable before anything destructive.

- ``commit_all`` commits every file of the worktree except the files the orchestrator copied
  in (``.env`` and the like, which are configuration, not work, and often secrets), with the
  orchestrator's identity (from the ``Git`` environment), unsigned (a signing agent may need a
  terminal we do not have), no hooks, and ``Council-Task`` / ``Council-Session`` trailers
  (written in the message: ``with_trailers``). It never runs ``git commit``: the commit is
  built from the files alone in an index of the orchestrator's own, with the parent the caller
  recorded (``own_commit``: nothing a CLI left in git's files, a ``MERGE_HEAD``, an index
  flag, a moved branch, is honoured). Files equal to the parent's tree are a result
  (``committed=False``), not an error. A caller that wants the commit's diff as well
  (``diff``) gets it from the same process that names the files: one ``git diff``
  (``PATCH``) from the parent's tree to the new one, the very command the work's facts run
  against the base (``workflow.handoffs.facts``).
- ``save_uncommitted_sync`` is the rescue before a removal or reuse: any uncommitted or
  untracked work becomes a ``council: rescue uncommitted work`` commit, and the worktree must
  be clean of work afterwards. It commits only on the task's own ``council/<task>/...``
  branch or a detached HEAD: a worktree found on any other branch (a CLI switched it to the
  base) is detached first, so no cleanup ever commits to the base. What git cannot commit
  (changes inside a submodule, say) stops the removal with a ``WorkspaceError`` listing the
  paths, since nothing may be lost.
- ``settle_index_lock_sync`` runs before both: an ``index.lock`` a killed CLI (or its git) left
  in the worktree's git dir would fail every ``git add``. Nobody holding it (no process has it
  open, no git runs in that checkout; ``process.path_users``), it is moved aside, once it is
  ``min_age`` old (waiting that long if need be); one that is held is never touched, and the
  commit fails naming the holder.
- ``keep_tip`` points ``refs/council/rescue/<session>`` at a tip with a compare-and-swap; an
  older, unrelated value found there (a reused session id) is first kept under
  ``refs/council/rescue-old/<session>/<sha>`` rather than overwritten.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from orchestrator.errors import WorkspaceError
from orchestrator.git.gitfile import read_gitfile
from orchestrator.git.parse import Status, parse_status
from orchestrator.git.repo import Git
from orchestrator.process.path_users import move_stale_lock
from orchestrator.safety.untrusted_read import read_regular
from orchestrator.worktrees import own_commit
from orchestrator.worktrees.models import CommitResult

__all__ = [
    "PATCH",
    "RESCUE_MESSAGE",
    "Saved",
    "commit_all",
    "commit_all_sync",
    "discard_uncommitted_sync",
    "finish_checkout_sync",
    "gitlinks",
    "keep_tip",
    "numstat_files",
    "read_status",
    "read_status_sync",
    "save_uncommitted_sync",
    "settle_index_lock_sync",
    "split_patch",
    "with_trailers",
]

RESCUE_MESSAGE = "council: rescue uncommitted work"
_CAS_ATTEMPTS = 8
log = logging.getLogger(__name__)


def settle_index_lock_sync(worktree: Path, admin_dir: Path | None, min_age: float) -> None:
    """Move aside a stale ``index.lock`` of the worktree (blocking: call it in a worker
    thread; see the module doc). A lock too young to judge is looked at again after
    ``min_age`` seconds, which blocks the thread that long (rare: git itself was just
    holding it)."""
    verdict, lock, moved = _settle_lock(worktree, admin_dir, min_age)
    if verdict == "young":
        time.sleep(min_age)
        verdict, lock, moved = _settle_lock(worktree, admin_dir, min_age)
    if verdict == "young":
        raise WorkspaceError(
            f"{lock} keeps coming back though no process holds it; nothing was committed"
        )
    if moved is not None:
        log.warning("%s: moved a stale %s aside to %s", worktree, lock.name, moved.name)


def _settle_lock(
    worktree: Path, admin_dir: Path | None, min_age: float
) -> tuple[str, Path, Path | None]:
    admin = admin_dir or read_gitfile(worktree)
    lock = (admin or worktree) / "index.lock"
    if admin is None or not os.path.lexists(lock):  # the common case: one read, one stat
        return "absent", lock, None
    verdict, moved = move_stale_lock(lock, [worktree, admin], min_age=min_age)
    return verdict, lock, moved


_STATUS = (
    "status",
    "--porcelain=v2",
    "--branch",
    "-z",
    "--untracked-files=all",
    "--ignore-submodules=none",
)


# The files, their stat and the patch of a diff in one process: NUL-terminated numstat
# entries, one more NUL, then the patch (``split_patch``).
PATCH = ("diff", "--numstat", "-z", "-p", "--no-renames", "--no-color", "--no-ext-diff")


def split_patch(stdout: str) -> tuple[str, str]:
    """``PATCH``'s output as its numstat block and its patch text."""
    numstat, _, patch = stdout.partition("\0\0")
    return numstat, patch


def numstat_files(numstat: str) -> list[str]:
    """The paths of a ``--numstat -z --no-renames`` block, in its order."""
    return [entry.split("\t", 2)[2] for entry in numstat.split("\0") if entry.count("\t") >= 2]


def with_trailers(message: str, task_id: str, session_id: str) -> str:
    """``message`` with the ``Council-Task`` and ``Council-Session`` trailers as their own last
    paragraph, where ``git log``'s ``%(trailers)`` finds them (``merge.history``). For the
    orchestrator's one-line messages the commit is byte for byte what ``--trailer`` made."""
    return f"{message.rstrip()}\n\nCouncil-Task: {task_id}\nCouncil-Session: {session_id}"


def read_status_sync(git: Git) -> Status:
    """``read_status`` in this thread (a worker thread, never the event loop)."""
    return parse_status(git.run_sync(*_STATUS).stdout)


async def read_status(git: Git) -> Status:
    return await anyio.to_thread.run_sync(read_status_sync, git)


def commit_all_sync(
    git: Git,
    message: str,
    *,
    task_id: str,
    session_id: str,
    keep_out: Sequence[str] = (),
    parent: str | None = None,
    branch: str | None = None,
    diff: bool = False,
) -> CommitResult:
    """``commit_all`` in this thread: the worktree's files committed by the orchestrator
    (``own_commit.build``: its own index, ``commit-tree``, nothing the CLI left in git's
    files honoured), with ``parent`` as the one parent (a commit the orchestrator recorded;
    None: the tip HEAD names now) on ``branch`` (``refs/heads/...``; None: the branch HEAD
    names, or a detached HEAD). Known secrets in the files are masked first
    (``secret_scrub``). With ``diff`` the result carries the commit's diff from ``parent``."""
    admin = read_gitfile(git.cwd)
    if admin is None or not admin.is_dir():
        raise WorkspaceError(f"{git.cwd} is not a linked worktree: nothing was committed")
    if branch is None:
        branch = head_branch(git.cwd)
    if parent is None:
        parent = own_commit.tip_of(git, admin.parent.parent, branch or "HEAD")
    built = own_commit.build(
        git,
        admin,
        branch,
        parent,
        with_trailers(message, task_id, session_id),
        keep_out=keep_out,
        patch=PATCH if diff else None,
    )
    return CommitResult(
        committed=built.committed,
        sha=built.sha,
        files=built.files,
        head=built.head,
        scrubbed=built.scrubbed,
        parent=parent if built.diff is not None else None,
        diff=built.diff,
    )


async def commit_all(
    git: Git,
    message: str,
    *,
    task_id: str,
    session_id: str,
    keep_out: Sequence[str] = (),
) -> CommitResult:
    return await anyio.to_thread.run_sync(
        lambda: commit_all_sync(
            git, message, task_id=task_id, session_id=session_id, keep_out=keep_out
        )
    )


def finish_checkout_sync(git: Git, admin_dir: Path | None) -> bool:
    """Finish a checkout a crash cut short; True when there was one to finish.

    A worktree is added with ``--no-checkout`` and then checked out: killed in between, it
    has no index, and git calls every file of its branch deleted, which a commit would
    record and a merge would land. So before anything reads or commits a worktree, the
    index is made from HEAD and the files are written without overwriting anything that is
    there (``checkout-index`` without ``--force`` leaves existing files alone, by design).
    """
    if admin_dir is None or (admin_dir / "index").exists():
        return False
    git.run_sync("read-tree", "HEAD")
    git.run_sync("checkout-index", "--all", check=False)
    return True


def discard_uncommitted_sync(git: Git, keep_out: Sequence[str] = ()) -> list[str]:
    """Put the worktree back to its HEAD: tracked changes undone, untracked files removed
    (ignored ones and the orchestrator's copied files stay); the paths that were changed.
    Only for what no CLI made: a verify command's by-products, which must never be
    committed as the task's work."""
    changed = read_status_sync(git).work(keep_out)
    if changed:
        git.run_sync("reset", "--hard", "--quiet", "HEAD")
        git.run_sync("clean", "-f", "-d", "--quiet", "--", *(f":(literal){p}" for p in changed))
    return changed


@dataclass(frozen=True)
class Saved:
    tip: str | None  # HEAD after the rescue (None only for a branch without commits)
    branch: str | None  # the branch HEAD is on, None when detached
    rescue_commit: str | None
    needs_force: bool  # git would object, but only to the orchestrator's own copied files


def save_uncommitted_sync(
    git: Git,
    admin_dir: Path | None,
    *,
    task_id: str,
    session_id: str,
    keep_out: Sequence[str] = (),
    lock_age: float = 2.0,
) -> Saved:
    """Commit whatever work the worktree holds; return where its HEAD ends up (blocking: its
    git steps run in the calling worker thread)."""
    settle_index_lock_sync(git.cwd, admin_dir, lock_age)
    finish_checkout_sync(git, admin_dir)
    status = read_status_sync(git)
    work = status.work(keep_out)
    if not work:
        return Saved(status.head, status.branch, None, needs_force=bool(status.paths))
    if status.branch is not None and not status.branch.startswith(f"council/{task_id}/"):
        # Never a cleanup's commit on a branch the task does not own (the base, switched to
        # by its CLI): HEAD is detached where it is (files and index untouched), and the
        # commit below is kept by the caller's rescue ref instead.
        log.warning("%s: on branch %s, detached before saving its work", git.cwd, status.branch)
        if status.head is not None:
            git.run_sync("update-ref", "--no-deref", "-m", "council: detach", "HEAD", status.head)
        branch = None
    else:
        branch = None if status.branch is None else f"refs/heads/{status.branch}"
    if status.head is None:
        raise WorkspaceError(f"{git.cwd}: its branch has no commit to save its work on")
    result = commit_all_sync(
        git,
        RESCUE_MESSAGE,
        task_id=task_id,
        session_id=session_id,
        keep_out=keep_out,
        parent=status.head,
        branch=branch,
    )
    after = read_status_sync(git)
    unsaved = after.work(keep_out)
    if unsaved:
        shown = ", ".join(unsaved[:10]) + (" ..." if len(unsaved) > 10 else "")
        raise WorkspaceError(
            f"{git.cwd}: git cannot commit these changes, so the worktree was kept: {shown} "
            "(changes inside a submodule or nested repository must be committed there)"
        )
    return Saved(after.head, after.branch, result.sha, needs_force=bool(after.paths))


def head_branch(worktree: Path) -> str | None:
    """The ref the worktree's HEAD is on (``refs/heads/...``), None when detached or unknown;
    read from its git dir's ``HEAD`` file (no process: every commit asks)."""
    admin = read_gitfile(worktree)
    head = (admin or worktree / ".git") / "HEAD"
    try:  # a file of the CLI's admin dir (``untrusted_read``)
        raw = read_regular(head, 4096)
    except OSError:
        return None
    if raw is None or len(raw) > 4096:
        return None
    text = raw.decode("utf-8", errors="replace").strip()
    return text.removeprefix("ref: ") if text.startswith("ref: refs/") else None


async def gitlinks(git: Git) -> list[str]:
    """Paths of nested repositories (gitlinks) in the worktree's index.

    A commit records only a nested repository's HEAD, not its objects, so a worktree holding
    one must never be force-removed or cleaned for reuse.
    """
    staged = await git.run("ls-files", "--stage", "-z")
    return [
        entry.split("\t", 1)[1]
        for entry in staged.stdout.split("\0")
        if entry.startswith("160000 ") and "\t" in entry
    ]


async def keep_tip(git: Git, ref: str, tip: str, *, owner: str, reason: str) -> None:
    """Make ``ref`` point at ``tip`` without losing whatever it pointed at before."""
    for _ in range(_CAS_ATTEMPTS):
        if await git.update_ref(ref, tip, None, reason):
            return
        current = await git.rev_parse(ref)
        if current is None:
            continue  # deleted meanwhile: create it again
        if current == tip:
            return
        if not await git.is_ancestor(current, tip):
            older = f"refs/council/rescue-old/{owner}/{current}"
            await git.update_ref(older, current, None, f"council: keep older {ref}")
        if await git.update_ref(ref, tip, current, reason):
            return
    raise WorkspaceError(f"could not point {ref} at {tip}: it kept changing under us")
