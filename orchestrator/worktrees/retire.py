"""Retiring a session's worktree in the order of the design: save its work, save its tip
unless the base has it, then the destructive steps; a branch is deleted only when the base
contains its tip, and only if it still points where it was checked (``update-ref -d <ref>
<old>``, done on git's files by ``git.loose_refs`` where it can be exact). A merged, clean
worktree nobody runs in is removed by a fast path of at most three git processes
(``for-each-ref --merged=<base> --points-at=HEAD``, a plain ``worktree remove``, which git
itself refuses while anything is uncommitted or untracked, and the compare-and-swap branch
deletion, no process where ``git.loose_refs`` deletes it), one fewer when git's files show
the base's first-parent line holding its merge (the loose commits of the queue's landings,
``git.ref_files``); any doubt takes the full path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, TypeVar

import anyio.to_thread

from orchestrator.errors import GitError, WorkspaceError, WorktreeBusy
from orchestrator.git.gitfile import read_gitfile
from orchestrator.git.ref_files import first_parents_merged, read_refs
from orchestrator.git.repo import Git
from orchestrator.process.path_users import processes_inside
from orchestrator.safety.untrusted_read import read_regular
from orchestrator.worktrees import own_commit
from orchestrator.worktrees.commits import Saved, gitlinks, keep_tip, save_uncommitted_sync
from orchestrator.worktrees.models import RemovalResult, SessionWorktree
from orchestrator.worktrees.names import rescue_ref
from orchestrator.worktrees.ops import (
    Workspace,
    drop_branch,
    drop_sync,
    relock_admin,
    remove_and_drop,
    unlock_admin,
)
from orchestrator.worktrees.stranded import restore_stranded, stranded_admin

__all__ = ["Forget", "retire"]

R = TypeVar("R")
_Looked = tuple[bool, str | None, bool | None]  # stranded, merged tip, branch deleted


class Forget(Protocol):
    """Runs ``blocking`` (the fast path's metadata-locked removal) in the worker-thread call
    that then deletes the session's record when ``removed`` says so of its answer."""

    async def __call__(self, blocking: Callable[[], R], removed: Callable[[R], bool]) -> R: ...


def _removed(out: tuple[bool, _Looked | None]) -> bool:
    """Whether the fast path's first try took the lock and removed the worktree."""
    took, looked = out
    return took and looked is not None and looked[2] is not None


def _contains(git: Git, base_ref: str, tip: str) -> bool:
    """``Git.is_ancestor(tip, base_ref)`` in this thread."""
    result = git.run_sync("merge-base", "--is-ancestor", tip, base_ref, check=False)
    if result.returncode not in (0, 1):
        raise GitError(
            ["merge-base", "--is-ancestor", tip, base_ref], result.returncode, result.stderr
        )
    return result.returncode == 0


def _save_work(ws: Workspace, session: SessionWorktree, *, check_busy: bool) -> Saved | None:
    """The first steps of ``retire`` in one worker thread: is the worktree there, does a
    process still run inside, and the rescue commit of whatever work it holds (None when the
    worktree is gone)."""
    if not (session.path / ".git").is_file():
        return None
    if check_busy:
        inside = processes_inside(session.path)
        if inside:
            raise WorktreeBusy(
                f"{session.path} was not removed: {inside[0]} (stop the session's processes "
                "first, or pass force=True)"
            )
    return save_uncommitted_sync(
        ws.git.at(session.path),
        read_gitfile(session.path),
        task_id=session.task_id,
        session_id=session.session_id,
        keep_out=ws.settings.copy_files,
        lock_age=ws.settings.stale_lock_age,
    )


def _merged_tip(ws: Workspace, session: SessionWorktree, *, check_busy: bool) -> str | None:
    """The first step of ``retire``'s fast path (blocking): the tip, when the worktree is
    there, nobody runs inside, its HEAD is its branch's tip and the base contains it; else
    None (the full path then finds out what is what). Right after its landing, git's files
    answer the last three questions (``_just_landed``); else one git process does:
    ``for-each-ref --merged=<base> --points-at=HEAD <branch>``."""
    if not (session.path / ".git").is_file():
        return None
    admin = read_gitfile(session.path)
    if admin is None or not (admin / "index").exists():
        return None  # a checkout a crash left half made: the full path finishes it
    if check_busy and processes_inside(session.path):
        return None  # the full path names the process
    landed = _just_landed(ws, session, admin)
    if landed is not None:
        return landed
    found = ws.git.at(session.path).run_sync(
        "for-each-ref",
        f"--merged={ws.base_ref}",
        "--points-at=HEAD",
        "--format=%(objectname)",
        f"refs/heads/{session.branch}",
        check=False,
    )
    tip = found.out.strip()
    return tip if found.ok and tip else None


def _just_landed(ws: Workspace, session: SessionWorktree, admin: Path) -> str | None:
    """The branch tip, read from git's files, when the worktree's HEAD is on the branch and
    the base's first-parent line holds the merge that landed it (or the tip itself), as the
    loose commits the queue's merges are show it: the answer of ``_merged_tip``'s
    ``for-each-ref`` without a process, also after other trains landed since. None when that
    cannot be told so (not merged, objects packed, refs unreadable): git is asked then."""
    ref = f"refs/heads/{session.branch}"
    try:  # a file of the CLI's admin dir (``untrusted_read``)
        raw = read_regular(admin / "HEAD", 4096)
        head = raw.decode("utf-8").strip() if raw is not None and len(raw) <= 4096 else None
    except (OSError, UnicodeDecodeError):
        return None
    if head is None:
        return None
    refs = read_refs(ws.layout.common_dir, (ws.base_ref, ref))
    if head != f"ref: {ref}" or refs is None or ref not in refs or ws.base_ref not in refs:
        return None
    tip, base = refs[ref], refs[ws.base_ref]
    if first_parents_merged(ws.layout.common_dir, base, tip, stop=session.base_commit):
        return tip
    return None


def _remove_clean(ws: Workspace, session: SessionWorktree, tip: str) -> bool | None:
    """The rest of the fast path (blocking; the metadata lock held): remove the worktree
    without force, so that git itself refuses if it holds any change or untracked file, and
    delete the branch (still at ``tip``). Whether the branch was deleted; None when git
    refused (nothing was changed: the lock is put back) and the full path must run."""
    admin = read_gitfile(session.path)
    reason = unlock_admin(ws, admin)
    removed = ws.git.run_sync("worktree", "remove", str(session.path), check=False)
    if not removed.ok:
        relock_admin(ws, admin, reason)  # as it was: the full path decides
        return None
    own_commit.forget(admin)
    return drop_sync(ws, session.branch, tip)


async def retire(
    ws: Workspace,
    session: SessionWorktree,
    *,
    force: bool,
    pool_it: bool,
    forget: Forget | None = None,
    before: Callable[[], Awaitable[None]] | None = None,
) -> RemovalResult:
    """Save the session's work, then remove or pool its worktree and maybe drop its branch.

    The usual case (merged, clean, nobody inside, no pool, no copied files) takes a fast
    path of three git processes; anything else, or any doubt, takes the full path. With
    ``forget``, the fast path's removal, when its first try makes it, runs in the call that
    deletes the session's record right after (one worker-thread call for both); the caller
    deletes it otherwise. ``before``: what the caller has done before anything here when
    ``forget`` is not used (it carries it first otherwise: a claim's release)."""
    git = ws.git
    sid = session.session_id
    fast = not ws.settings.copy_files and not (pool_it and not force and ws.pool.size > 0)
    common = ws.layout.common_dir
    if before is not None and not (fast and forget is not None):
        await before()

    def look() -> tuple[bool, str | None]:
        """Whether the checkout is stranded; when it is not, the fast path's merged tip."""
        if stranded_admin(session.path, common) is not None:
            return True, None
        return False, _merged_tip(ws, session, check_busy=not force) if fast else None

    def look_and_remove() -> _Looked:
        """``look``, then the fast path's removal when it found a merged tip: the usual case
        is one worker-thread call, the metadata lock's first try included (``MetaLock.run``).
        The tip is read under the lock, right before the removal it decides."""
        stranded, tip = look()
        return stranded, tip, _remove_clean(ws, session, tip) if tip is not None else None

    deleted: bool | None = None
    if fast:
        carry = None
        if forget is not None:
            given = forget

            async def carry(
                first: Callable[[], tuple[bool, _Looked | None]],
            ) -> tuple[bool, _Looked | None]:
                return await given(first, _removed)

        stranded, tip, deleted = await ws.meta.run(look_and_remove, carry)
    else:
        stranded, tip = await anyio.to_thread.run_sync(look)
    if deleted is not None:
        assert tip is not None
        return _fast_removed(session, tip, deleted)
    if stranded:
        # A checkout whose admin directory a CLI deleted is git's again first: its edits are
        # then committed and kept like any others, not left as loose files.
        await restore_stranded(ws, session)
        if fast:
            tip = await anyio.to_thread.run_sync(
                lambda: _merged_tip(ws, session, check_busy=not force)
            )
    if stranded and tip is not None:
        merged_tip = tip
        # The lock's first try and the removal in one worker-thread call (``MetaLock.run``).
        deleted = await ws.meta.run(lambda: _remove_clean(ws, session, merged_tip))
        if deleted is not None:
            return _fast_removed(session, tip, deleted)

    def save_and_look() -> tuple[Saved | None, str | None, bool]:
        saved = _save_work(ws, session, check_busy=not force)
        if saved is not None:
            tip = saved.tip
        else:
            ref = f"refs/heads/{session.branch}^{{commit}}"
            found = git.run_sync("rev-parse", "--verify", "--quiet", ref, check=False)
            tip = found.out if found.ok else None
        return saved, tip, tip is None or _contains(git, ws.base_ref, tip)

    # One worker-thread call: the rescue commit, the tip, and whether the base contains it.
    saved, tip, merged = await anyio.to_thread.run_sync(save_and_look)
    present = saved is not None
    rescue_commit: str | None = None
    needs_force = False
    on_branch = True
    if saved is not None:
        rescue_commit, needs_force = saved.rescue_commit, saved.needs_force
        on_branch = saved.branch == session.branch
    saved_ref = None
    if not merged and tip is not None:
        saved_ref = rescue_ref(sid)
        await keep_tip(git, saved_ref, tip, owner=sid, reason=f"council: rescue {sid}")
    # The branch goes only when the base contains its tip (decided before anything is
    # removed: removing the worktree does not move the branch).
    branch_tip = tip if on_branch else await git.rev_parse(f"refs/heads/{session.branch}")
    drop = branch_tip is not None and (
        merged if branch_tip == tip else await git.is_ancestor(branch_tip, ws.base_ref)
    )

    # Every step from here is destructive; the tip is in the base or in the rescue ref.
    pooled = False
    deleted = False
    removed = False
    if present:
        # Cleaning for reuse is not done under force: a process still inside may be writing.
        pool_it = pool_it and not force and ws.pool.size > 0
        if pool_it or needs_force:
            await _refuse_nested(git.at(session.path), session.path)
        if pool_it:
            pooled = await ws.pool.give(session.path, await ws.base_tip())
    if not pooled:
        dropping = session.branch if drop else None
        deleted = await remove_and_drop(
            ws, session.path, force=present and needs_force, branch=dropping, tip=branch_tip
        )
        removed = True
    if drop and not removed and branch_tip is not None:
        deleted = await drop_branch(ws, session.branch, branch_tip)
    return RemovalResult(
        session_id=sid,
        branch=session.branch,
        tip=tip,
        merged=merged,
        rescue_commit=rescue_commit,
        rescue_ref=saved_ref,
        worktree_removed=present,
        pooled=pooled,
        branch_deleted=deleted,
    )


def _fast_removed(session: SessionWorktree, tip: str, deleted: bool) -> RemovalResult:
    """What the fast path did: the merged worktree removed, its branch maybe deleted."""
    return RemovalResult(
        session_id=session.session_id,
        branch=session.branch,
        tip=tip,
        merged=True,
        worktree_removed=True,
        branch_deleted=deleted,
    )


async def _refuse_nested(worktree: Git, path: Path) -> None:
    # Plain `worktree remove` refuses nested repositories itself; --force, and cleaning for
    # the pool, would delete their history, which no commit of ours holds.
    nested = await gitlinks(worktree)
    if nested:
        raise WorkspaceError(
            f"{path} holds nested repositories ({', '.join(nested)}) whose own history a "
            "commit here does not save; the worktree was kept (move them out, then remove it "
            "again)"
        )
