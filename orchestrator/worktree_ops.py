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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import GitError, WorkspaceError
from orchestrator.git import Git
from orchestrator.worktree_commits import gitlinks, keep_tip, save_uncommitted
from orchestrator.worktree_models import RemovalResult, SessionWorktree, WorktreeSettings
from orchestrator.worktree_parse import read_gitfile
from orchestrator.worktree_pool import WorktreePool
from orchestrator.worktree_repo import MetaLock, RepoLayout, branch_name, rescue_ref
from orchestrator.worktree_safety import WorktreeBusy, processes_inside

__all__ = [
    "Workspace",
    "add_worktree",
    "drop_branch",
    "new_branch",
    "remove_registered",
    "retire",
    "share_worktree_config",
]


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


async def new_branch(ws: Workspace, task: str, tip: str, reserved: set[int]) -> str:
    """Create ``council/<task>/<n>`` at ``tip`` for the next free ``n``.

    ``reserved`` holds numbers this process is trying right now, so parallel sessions of one
    task try different numbers instead of colliding; the ref compare-and-swap settles races
    with other processes.
    """
    prefix = f"refs/heads/council/{task}/"
    listed = await ws.git.run("for-each-ref", "--format=%(refname)", prefix)
    taken = {
        int(suffix)
        for suffix in (ref.removeprefix(prefix) for ref in listed.out.splitlines())
        if suffix.isdigit() and not suffix.startswith("0")
    }
    while True:
        attempt = max(taken | reserved, default=0) + 1
        reserved.add(attempt)  # before any await
        try:
            branch = branch_name(task, attempt)
            if await ws.git.update_ref(f"refs/heads/{branch}", tip, None, "council: new session"):
                return branch
            taken.add(attempt)
        finally:
            reserved.discard(attempt)


async def share_worktree_config(ws: Workspace) -> None:
    """Turn on ``extensions.worktreeConfig`` once, up front, for sparse worktrees.

    The first ``sparse-checkout set`` in a worktree writes it to the shared config; in the
    middle of a run that change would look like a CLI's doing to the tamper check
    (``orchestrator.tamper``), which flags any change of the shared config during a session.
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
    args = ["worktree", "remove", *(["--force"] if force else []), str(path)]
    async with ws.meta.hold():
        await ws.git.run("worktree", "unlock", str(path), check=False)
        removed = await ws.git.run(*args, check=False)
    if not removed.ok and "is not a working tree" not in removed.stderr:
        raise GitError(args, removed.returncode, removed.stderr)


async def drop_branch(ws: Workspace, branch: str, expected: str) -> bool:
    """Delete ``branch`` if it still points at ``expected`` (never a branch that moved)."""
    async with ws.meta.hold():
        result = await ws.git.run("update-ref", "-d", f"refs/heads/{branch}", expected, check=False)
    return result.ok


async def retire(
    ws: Workspace, session: SessionWorktree, *, force: bool, pool_it: bool
) -> RemovalResult:
    """Save the session's work, then remove or pool its worktree and maybe drop its branch."""
    git = ws.git
    sid = session.session_id
    present = await anyio.to_thread.run_sync((session.path / ".git").is_file)
    if present and not force:
        inside = await anyio.to_thread.run_sync(processes_inside, session.path)
        if inside:
            raise WorktreeBusy(
                f"{session.path} was not removed: {inside[0]} (stop the session's processes "
                "first, or pass force=True)"
            )
    rescue_commit: str | None = None
    needs_force = False
    on_branch = True
    if present:
        saved = await save_uncommitted(
            git.at(session.path),
            await anyio.to_thread.run_sync(read_gitfile, session.path),
            task_id=session.task_id,
            session_id=sid,
            keep_out=ws.settings.copy_files,
            lock_age=ws.settings.stale_lock_age,
        )
        tip, rescue_commit, needs_force = saved.tip, saved.rescue_commit, saved.needs_force
        on_branch = saved.branch == session.branch
    else:
        tip = await git.rev_parse(f"refs/heads/{session.branch}")
    merged = tip is None or await git.is_ancestor(tip, ws.base_ref)
    saved_ref = None
    if not merged and tip is not None:
        saved_ref = rescue_ref(sid)
        await keep_tip(git, saved_ref, tip, owner=sid, reason=f"council: rescue {sid}")

    # Every step from here is destructive; the tip is in the base or in the rescue ref.
    pooled = False
    if present:
        # Cleaning for reuse is not done under force: a process still inside may be writing.
        pool_it = pool_it and not force and ws.pool.size > 0
        if pool_it or needs_force:
            await _refuse_nested(git.at(session.path), session.path)
        if pool_it:
            pooled = await ws.pool.give(session.path, await ws.base_tip())
        if not pooled:
            await remove_registered(ws, session.path, force=needs_force)
    else:
        await remove_registered(ws, session.path, force=False)
    branch_tip = tip if on_branch else await git.rev_parse(f"refs/heads/{session.branch}")
    deleted = False
    if branch_tip is not None and (
        merged if branch_tip == tip else await git.is_ancestor(branch_tip, ws.base_ref)
    ):
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
