"""The git steps of a session worktree's life: a branch, a checkout, and the removal steps
``retire`` puts in the safe order.

``Workspace`` bundles what every step needs (layout, git, the metadata lock, the pool and
the settings); the manager holds one per repository and adds the bookkeeping (ownership
records, events, per-session locks) around these functions.

Rules kept here:
- a session branch is created only where none is (a hard link on git's files,
  ``git.loose_refs``, or a compare-and-swap ``update-ref``; never ``-B``, which would reset
  someone's branch), so two orchestrators can never both take an attempt number;
- metadata steps (``worktree add --no-checkout``, ``remove``, ``lock``/``unlock``, branch
  deletion) hold the ``MetaLock``; the checkout (``reset --hard``) runs outside it;
- removal happens only in the order ``retire`` keeps (save work, save the tip, then destroy).

Git processes are what a session costs most, so the steps are shaped to need few, and each group
of them runs in one worker-thread call: ``fork_branch`` reads the base tip and the task's branches
from git's ref files (``git.ref_files``), or with one ``for-each-ref`` where those cannot be read
exactly. A worktree is unlocked by removing the ``locked`` file of its admin directory (what
``git worktree unlock`` does), and locked again the same way when git then refuses to remove it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import GitError, WorkspaceError
from orchestrator.git import loose_refs, ref_book
from orchestrator.git.gitfile import read_gitfile
from orchestrator.git.ref_files import read_refs
from orchestrator.git.repo import ZERO_SHA, Git
from orchestrator.safety.safe_write import unlink, write_atomic
from orchestrator.worktrees import own_commit
from orchestrator.worktrees.layout import MetaLock, RepoLayout
from orchestrator.worktrees.models import SessionWorktree, WorktreeSettings
from orchestrator.worktrees.names import branch_name
from orchestrator.worktrees.pool import WorktreePool

__all__ = [
    "Fork",
    "Workspace",
    "add_worktree",
    "checkout_steps",
    "drop_branch",
    "drop_sync",
    "fork_branch",
    "relock_admin",
    "remove_and_drop",
    "remove_registered",
    "share_worktree_config",
    "unlock_admin",
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


def fork_branch(
    ws: Workspace,
    task: str,
    reserved: set[int],
    lock: threading.Lock,
    at_least: int = 1,
    start: str | None = None,
) -> Fork:
    """Create ``council/<task>/<n>`` at the base tip as it is now (or at commit ``start``: a
    stacked pull request's work starts on the one below), for the next free ``n``
    (blocking: run it in a worker thread; no git process where git's files tell).

    The base tip and the task's existing branches are read together (git's ref files, else one
    ``for-each-ref``). ``reserved`` (guarded by ``lock``) holds numbers this process is trying
    right now, so parallel sessions of one task try different numbers instead of colliding;
    the branch made only where none is (a hard link, ``git.loose_refs``, or
    ``update-ref <ref> <tip> <zero>``) settles races with other processes.
    """
    prefix = f"refs/heads/council/{task}/"
    tip: str | None = None
    taken: set[int] = set()
    for kind, sha, ref in _base_and_branches(ws, prefix):
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
    if start is not None:
        peeled = ws.git.run_sync(
            "rev-parse", "--verify", "--quiet", f"{start}^{{commit}}", check=False
        )
        if not peeled.ok or peeled.out != start:
            raise WorkspaceError(f"commit {start!r} to start task {task!r} from is not here")
        tip = start
    vanished = 0
    while True:
        with lock:
            # ``at_least``: the team's attempt number, so workstations never pick one name.
            attempt = max(max(taken | reserved, default=0) + 1, at_least)
            reserved.add(attempt)
        try:
            branch = branch_name(task, attempt)
            ref = f"refs/heads/{branch}"
            with ref_book.writing():
                # Made on git's files, no process and no lock file (``git.loose_refs``); where
                # that cannot be done exactly, by git.
                message = "council: new session"
                wrote = loose_refs.write_branch(
                    ws.layout.common_dir, ref, tip, None, message, ws.git.env
                )
                if wrote is not None:
                    if wrote:
                        ref_book.note(ref, None, tip)
                        return Fork(branch, tip)
                    taken.add(attempt)  # the ref exists: someone else took this number
                    continue
                created = ws.git.run_sync(
                    "update-ref", "-m", message, ref, tip, ZERO_SHA, check=False
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


def _base_and_branches(ws: Workspace, prefix: str) -> list[tuple[str, str, str]]:
    """(object type, id, ref) of the base and of the task's branches under ``prefix``: from
    git's ref files when they can be read exactly (no process), else one ``for-each-ref``.
    A branch (``refs/heads/``, ``refs/remotes/``) holds a commit unless something outside git's
    commands wrote it; any other base is asked of git, which tells its object type."""
    branch_like = ws.base_ref.startswith(("refs/heads/", "refs/remotes/"))
    found = read_refs(ws.layout.common_dir, (ws.base_ref, prefix)) if branch_like else None
    if found is not None:
        return [("commit", sha, ref) for ref, sha in found.items()]
    listed = ws.git.run_sync(
        "for-each-ref", "--format=%(objecttype) %(objectname) %(refname)", ws.base_ref, prefix
    )
    return [tuple(line.split(" ", 2)) for line in listed.out.splitlines()]  # type: ignore[misc]


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


async def add_worktree(
    ws: Workspace, session: SessionWorktree, reason: str, then: Callable[[], None] | None = None
) -> None:
    """Register the worktree and check it out; ``then``: the caller's next step on the fresh
    checkout, if any. Without a sparse cone, ``worktree add`` checks the files out itself
    (git's own ``reset --hard``, a child of it): the lock's try, the registration with its
    checkout, the index taken and ``then`` in one worker-thread call (``MetaLock.run``), one
    git process of ours. A sparse worktree is registered without its files and its cone set
    under the lock, then checked out outside it in a second call. Either way the index git
    wrote is taken as the orchestrator's own before anything else runs there."""
    worktree = ws.git.at(session.path)
    sparse = ws.settings.sparse
    if not sparse:
        await ws.meta.run(checkout_steps(ws, session, reason, then))
        return
    add: tuple[str, ...] = ("worktree", "add", "--quiet", "--no-checkout", "--lock")
    add += ("--reason", reason, str(session.path), session.branch)

    def adopted() -> None:
        # The index git just wrote, before anything else ran there: the orchestrator's own.
        _adopt_index(ws, session)
        if then is not None:
            then()

    def register() -> None:
        ws.git.run_sync(*add)
        # Writes the worktree's own config.worktree (share_worktree_config ran first).
        worktree.run_sync("sparse-checkout", "set", "--cone", *sparse)

    def check_out() -> None:
        worktree.run_sync("reset", "--hard", "--quiet")
        adopted()

    await ws.meta.run(register)
    await anyio.to_thread.run_sync(check_out)


def checkout_steps(
    ws: Workspace, session: SessionWorktree, reason: str, then: Callable[[], None] | None = None
) -> Callable[[], None]:
    """``add_worktree``'s steps under the repository's ``MetaLock`` for a worktree without a
    sparse cone (blocking): registered and checked out by one ``worktree add``, its index
    taken as the orchestrator's own, then ``then``. For ``MetaLock.run``, or ``try_run`` in a
    caller's own worker-thread call."""
    if ws.settings.sparse:
        raise WorkspaceError("a sparse worktree is checked out in two steps: add_worktree")
    add: tuple[str, ...] = ("worktree", "add", "--quiet", "--lock", "--reason", reason)
    add += (str(session.path), session.branch)

    def add_checked_out() -> None:
        ws.git.run_sync(*add)
        # The index git just wrote, before anything else ran there: the orchestrator's own.
        _adopt_index(ws, session)
        if then is not None:
            then()

    return add_checked_out


def _adopt_index(ws: Workspace, session: SessionWorktree) -> None:
    admin = read_gitfile(session.path)
    if admin is None or admin.parent != ws.layout.common_dir / "worktrees":
        return
    ref = f"refs/heads/{session.branch}"
    tip = own_commit.tip_of(ws.git.at(session.path), ws.layout.common_dir, ref)
    own_commit.adopt_checkout(admin, tip)


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
        reason = unlock_admin(ws, admin)
        removed = ws.git.run_sync(*args, check=False)
        if not removed.ok and "is not a working tree" not in removed.stderr:
            relock_admin(ws, admin, reason)  # kept: so is the record of whose it is
            raise GitError(args, removed.returncode, removed.stderr)
        own_commit.forget(admin)
        if branch is None or tip is None:
            return False
        return drop_sync(ws, branch, tip)

    return await ws.meta.run(steps)


def unlock_admin(ws: Workspace, admin: Path | None) -> str | None:
    """Unlock a worktree by its admin directory: remove its ``locked`` file, which is all
    ``git worktree unlock`` does (git-worktree(1), DETAILS), without starting a process. The
    lock's reason, for ``relock_admin``; None when it was not locked.

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


def relock_admin(ws: Workspace, admin: Path | None, reason: str | None) -> None:
    """Put back the lock ``unlock_admin`` took off (the worktree stays, and so does its owner)."""
    if admin is not None and reason is not None and admin.is_dir():
        write_atomic(ws.layout.common_dir, admin / "locked", reason.encode())


async def drop_branch(ws: Workspace, branch: str, expected: str) -> bool:
    """Delete ``branch`` if it still points at ``expected`` (never a branch that moved)."""
    async with ws.meta.hold():
        return await anyio.to_thread.run_sync(drop_sync, ws, branch, expected)


def drop_sync(ws: Workspace, branch: str, expected: str) -> bool:
    ref = f"refs/heads/{branch}"
    with ref_book.writing():
        # Deleted on git's files, no process and no lock file (``git.loose_refs``); a packed
        # ref, or anything it cannot do exactly, by git.
        done = loose_refs.delete_branch(ws.layout.common_dir, ref, expected)
        if done is None:
            done = ws.git.run_sync("update-ref", "-d", ref, expected, check=False).ok
        dropped = done
        if dropped:
            ref_book.note(ref, expected, None)
    return dropped
