"""The git steps of a session worktree's life: a branch, a checkout, and a safe removal.

``Workspace`` bundles what every step needs (layout, git, the metadata lock, the pool and
the settings); the manager holds one per repository and adds the bookkeeping (ownership
records, events, per-session locks) around these functions.

Rules kept here:
- a session branch is created with a compare-and-swap ``update-ref`` (never ``-B``, which
  would reset someone's branch), so two orchestrators can never both take an attempt number;
- metadata steps (``worktree add --no-checkout``, ``remove``, ``lock``/``unlock``, branch
  deletion) hold the ``MetaLock``; the checkout (``reset --hard``) runs outside it;
- ``retire`` is the removal order of the design: save work, save the tip unless the base has
  it, then the destructive steps; a branch is deleted only when the base contains its tip, and
  only if it still points where it was checked (``update-ref -d <ref> <old>``).

Git processes are what a session costs most, so the steps are shaped to need few, and each
group of them runs in one worker-thread call: ``fork_branch`` reads the base tip and the
task's branches with one ``for-each-ref``; a merged, clean worktree nobody runs in is removed
by a fast path of three processes (``for-each-ref --merged=<base> --points-at=HEAD``, a plain
``worktree remove``, which git itself refuses while anything is uncommitted or untracked, and
the compare-and-swap branch deletion); any doubt takes the full path. A worktree is unlocked
by removing the ``locked`` file of its admin directory (what ``git worktree unlock`` does),
and locked again the same way when git then refuses to remove it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import GitError, WorkspaceError
from orchestrator.git import ref_book
from orchestrator.git.parse import read_gitfile
from orchestrator.git.repo import ZERO_SHA, Git
from orchestrator.process.path_users import WorktreeBusy, processes_inside
from orchestrator.safety.safe_write import unlink, write_atomic
from orchestrator.worktrees.commits import Saved, gitlinks, keep_tip, save_uncommitted_sync
from orchestrator.worktrees.layout import MetaLock, RepoLayout, branch_name, rescue_ref
from orchestrator.worktrees.models import RemovalResult, SessionWorktree, WorktreeSettings
from orchestrator.worktrees.pool import WorktreePool

__all__ = [
    "Fork",
    "Workspace",
    "add_worktree",
    "drop_branch",
    "fork_branch",
    "remove_and_drop",
    "remove_registered",
    "retire",
    "share_worktree_config",
]


_VANISHED_TRIES = 8  # a branch number seen taken, then free again: looked at again this often


@dataclass(frozen=True)
class Workspace:
    layout: RepoLayout
    git: Git
    meta: MetaLock
    pool: WorktreePool
    settings: WorktreeSettings
    base_ref: str

    async def base_tip(self) -> str:
        tip = await self.git.rev_parse(self.base_ref)
        if tip is None:
            name = self.base_ref.removeprefix("refs/heads/")
            raise WorkspaceError(f"base branch {name!r} does not exist in {self.layout.root}")
        return tip


def fork_branch(ws: Workspace, task: str, reserved: set[int], lock: threading.Lock) -> Fork:
    """Create ``council/<task>/<n>`` at the base tip as it is now, for the next free ``n``
    (blocking: run it in a worker thread; two git processes).

    One ``for-each-ref`` reads the base tip and the task's existing branches together.
    ``reserved`` (guarded by ``lock``) holds numbers this process is trying right now, so
    parallel sessions of one task try different numbers instead of colliding; the ref
    compare-and-swap (``update-ref <ref> <tip> <zero>``) settles races with other processes.
    """
    prefix = f"refs/heads/council/{task}/"
    listed = ws.git.run_sync(
        "for-each-ref", "--format=%(objecttype) %(objectname) %(refname)", ws.base_ref, prefix
    )
    tip: str | None = None
    taken: set[int] = set()
    for line in listed.out.splitlines():
        kind, sha, ref = line.split(" ", 2)
        if ref == ws.base_ref:
            tip = sha if kind == "commit" else None
        elif ref.startswith(prefix):
            suffix = ref.removeprefix(prefix)
            if suffix.isdigit() and not suffix.startswith("0"):
                taken.add(int(suffix))
    if tip is None:
        peeled = ws.git.run_sync(
            "rev-parse", "--verify", "--quiet", f"{ws.base_ref}^{{commit}}", check=False
        )
        if not peeled.ok:
            name = ws.base_ref.removeprefix("refs/heads/")
            raise WorkspaceError(f"base branch {name!r} does not exist in {ws.layout.root}")
        tip = peeled.out
    vanished = 0
    while True:
        with lock:
            attempt = max(taken | reserved, default=0) + 1
            reserved.add(attempt)
        try:
            branch = branch_name(task, attempt)
            ref = f"refs/heads/{branch}"
            with ref_book.writing():
                created = ws.git.run_sync(
                    "update-ref", "-m", "council: new session", ref, tip, ZERO_SHA, check=False
                )
                if created.ok:
                    ref_book.note(ref, None, tip)
            if created.ok:
                return Fork(branch, tip)
            if ws.git.run_sync("rev-parse", "--verify", "--quiet", ref, check=False).ok:
                taken.add(attempt)  # someone else took this number: try the next
                continue
            if "already exists" in created.stderr and vanished < _VANISHED_TRIES:
                # Taken and dropped again meanwhile (a racer's worktree failed and was
                # cleaned up): the number is free after all, so look again.
                vanished += 1
                continue
            raise GitError(["update-ref", ref, tip], created.returncode, created.stderr)
        finally:
            with lock:
                reserved.discard(attempt)


@dataclass(frozen=True)
class Fork:
    """A new session branch and the base commit it starts from."""

    branch: str
    base: str


async def share_worktree_config(ws: Workspace) -> None:
    """Turn on ``extensions.worktreeConfig`` once, up front, for sparse worktrees.

    The first ``sparse-checkout set`` in a worktree writes it to the shared config; in the middle of
    a run that change would look like a CLI's doing to the tamper check
    (``orchestrator.worktrees.tamper.guard``), which flags any change of the shared config during a
    session.
    """
    current = await ws.git.run("config", "--bool", "extensions.worktreeConfig", check=False)
    if current.out != "true":
        async with ws.meta.hold():
            await ws.git.run("config", "extensions.worktreeConfig", "true")


async def add_worktree(ws: Workspace, session: SessionWorktree, reason: str) -> None:
    """Register the worktree (under the lock), then check it out (outside it)."""
    worktree = ws.git.at(session.path)
    async with ws.meta.hold():
        await ws.git.run(
            "worktree", "add", "--quiet", "--no-checkout", "--lock", "--reason", reason,
            str(session.path), session.branch,
        )  # fmt: skip
        if ws.settings.sparse:
            # Writes the worktree's own config.worktree (share_worktree_config ran first).
            await worktree.run("sparse-checkout", "set", "--cone", *ws.settings.sparse)
    await worktree.run("reset", "--hard", "--quiet")


async def remove_registered(ws: Workspace, path: Path, *, force: bool) -> None:
    """Drop git's record of the worktree at ``path`` and its directory, if there is one.

    ``force`` is only passed when the caller verified that all git would object to is the
    orchestrator's own copied files, not session work.
    """
    await remove_and_drop(ws, path, force=force)


async def remove_and_drop(
    ws: Workspace, path: Path, *, force: bool, branch: str | None = None, tip: str | None = None
) -> bool:
    """``remove_registered``, then (if ``branch`` is given) ``drop_branch(branch, tip)``: one
    hold of the metadata lock and one worker-thread call for all of it. Whether the branch
    was deleted."""
    args = ["worktree", "remove", *(["--force"] if force else []), str(path)]

    def steps() -> bool:
        admin = read_gitfile(path)
        if admin is None:  # no checkout left to find the admin directory by: ask git
            ws.git.run_sync("worktree", "unlock", str(path), check=False)
        reason = _unlock(ws, admin)
        removed = ws.git.run_sync(*args, check=False)
        if not removed.ok and "is not a working tree" not in removed.stderr:
            _relock(ws, admin, reason)  # kept: so is the record of whose it is
            raise GitError(args, removed.returncode, removed.stderr)
        if branch is None or tip is None:
            return False
        return _drop_sync(ws, branch, tip)

    async with ws.meta.hold():
        return await anyio.to_thread.run_sync(steps)


def _unlock(ws: Workspace, admin: Path | None) -> str | None:
    """Unlock a worktree by its admin directory: remove its ``locked`` file, which is all
    ``git worktree unlock`` does (git-worktree(1), DETAILS), without starting a process. The
    lock's reason, for ``_relock``; None when it was not locked.

    The admin directory is read from the worktree's ``.git`` file, which the CLI can rewrite:
    it is only ever written under git's common directory (``PathEscapeError`` otherwise)."""
    if admin is None:
        return None
    locked = admin / "locked"
    try:
        reason = locked.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    unlink(ws.layout.common_dir, locked)
    return reason


def _relock(ws: Workspace, admin: Path | None, reason: str | None) -> None:
    """Put back the lock ``_unlock`` took off (the worktree stays, and so does its owner)."""
    if admin is not None and reason is not None and admin.is_dir():
        write_atomic(ws.layout.common_dir, admin / "locked", reason.encode())


async def drop_branch(ws: Workspace, branch: str, expected: str) -> bool:
    """Delete ``branch`` if it still points at ``expected`` (never a branch that moved)."""
    async with ws.meta.hold():
        return await anyio.to_thread.run_sync(_drop_sync, ws, branch, expected)


def _drop_sync(ws: Workspace, branch: str, expected: str) -> bool:
    ref = f"refs/heads/{branch}"
    with ref_book.writing():
        dropped = ws.git.run_sync("update-ref", "-d", ref, expected, check=False).ok
        if dropped:
            ref_book.note(ref, expected, None)
    return dropped


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
    None (the full path then finds out what is what). One git process answers the last
    three questions: ``for-each-ref --merged=<base> --points-at=HEAD <branch>``."""
    if not (session.path / ".git").is_file():
        return None
    admin = read_gitfile(session.path)
    if admin is None or not (admin / "index").exists():
        return None  # a checkout a crash left half made: the full path finishes it
    if check_busy and processes_inside(session.path):
        return None  # the full path names the process
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


def _remove_clean(ws: Workspace, session: SessionWorktree, tip: str) -> bool | None:
    """The rest of the fast path (blocking; the metadata lock held): remove the worktree
    without force, so that git itself refuses if it holds any change or untracked file, and
    delete the branch (still at ``tip``). Whether the branch was deleted; None when git
    refused (nothing was changed: the lock is put back) and the full path must run."""
    admin = read_gitfile(session.path)
    reason = _unlock(ws, admin)
    removed = ws.git.run_sync("worktree", "remove", str(session.path), check=False)
    if not removed.ok:
        _relock(ws, admin, reason)  # as it was: the full path decides
        return None
    return _drop_sync(ws, session.branch, tip)


async def retire(
    ws: Workspace, session: SessionWorktree, *, force: bool, pool_it: bool
) -> RemovalResult:
    """Save the session's work, then remove or pool its worktree and maybe drop its branch.

    The usual case (merged, clean, nobody inside, no pool, no copied files) takes a fast
    path of three git processes; anything else, or any doubt, takes the full path."""
    git = ws.git
    sid = session.session_id
    fast = not ws.settings.copy_files and not (pool_it and not force and ws.pool.size > 0)
    tip = None
    if fast:
        tip = await anyio.to_thread.run_sync(lambda: _merged_tip(ws, session, check_busy=not force))
    if tip is not None:
        merged_tip = tip
        async with ws.meta.hold():
            deleted = await anyio.to_thread.run_sync(lambda: _remove_clean(ws, session, merged_tip))
        if deleted is not None:
            return RemovalResult(
                session_id=sid,
                branch=session.branch,
                tip=tip,
                merged=True,
                worktree_removed=True,
                branch_deleted=deleted,
            )

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
