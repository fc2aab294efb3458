"""A pool of clean worktrees kept for reuse, because reusing one beats a fresh checkout.

On a large repository a fresh ``git worktree add`` checks out every file (2 s for 20,000
files), and right after worktrees were deleted ext4 made it up to 7x slower still. Reusing a
finished session's worktree only rewrites the files that differ.

- ``give``: a finished session's worktree (already rescued and verified safe by the caller)
  is detached at the base tip, cleaned (``clean -ffdx``), unlocked and moved to
  ``.council/pool/<key>-<token>``, if the pool has room.
- ``take``: a pooled worktree is moved to the new session's path and locked for it; then,
  outside the metadata lock, ``prepare_taken`` saves anything that appeared in it meanwhile
  (a rescue commit kept under ``refs/council/rescue-pool/<sha>``: the safety rules hold for
  reuse too), checks out the session's new branch and cleans it, so nothing of the previous
  session is left.

``key`` encodes the sparse-checkout patterns, so a worktree is only reused by a run that wants
the same checkout shape; the pool is simply what sits under ``.council/pool/`` (no extra
state, and it survives restarts). Moves, locks and unlocks hold the ``MetaLock``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import GitError, WorkspaceError
from orchestrator.git.gitfile import read_gitfile
from orchestrator.git.repo import Git
from orchestrator.worktrees.commits import gitlinks, keep_tip, save_uncommitted_sync
from orchestrator.worktrees.layout import MetaLock
from orchestrator.worktrees.names import check_inside

__all__ = ["WorktreePool", "pool_key"]


def pool_key(sparse: Sequence[str]) -> str:
    if not sparse:
        return "full"
    digest = hashlib.sha256("\n".join(sorted(sparse)).encode()).hexdigest()[:10]
    return f"sparse{digest}"


class WorktreePool:
    def __init__(
        self, git: Git, pool_dir: Path, meta: MetaLock, size: int, sparse: Sequence[str]
    ) -> None:
        self.git = git
        self.pool_dir = pool_dir
        self.meta = meta
        self.size = size
        self.key = pool_key(sparse)

    def entries(self, *, matching: bool = True) -> list[Path]:
        """Pooled worktrees on disk (blocking); only this key's when ``matching``."""
        try:
            children = sorted(self.pool_dir.iterdir())
        except FileNotFoundError:
            return []
        prefix = f"{self.key}-"
        return [
            child
            for child in children
            if (child / ".git").is_file() and (not matching or child.name.startswith(prefix))
        ]

    async def take(self, dest: Path, reason: str) -> bool:
        """Move a pooled worktree to ``dest`` and lock it with ``reason``; False if none."""
        if self.size <= 0:
            return False
        async with self.meta.hold():
            for entry in await anyio.to_thread.run_sync(self.entries):
                moved = await self.git.run("worktree", "move", str(entry), str(dest), check=False)
                if not moved.ok:
                    continue  # not a registered worktree any more: reconcile reports it
                await self.git.run("worktree", "lock", "--reason", reason, str(dest))
                return True
        return False

    async def prepare_taken(self, path: Path, branch: str) -> None:
        """Put a taken worktree on ``branch`` (which the caller created), clean."""
        worktree = self.git.at(path)
        admin = await anyio.to_thread.run_sync(read_gitfile, path)
        saved = await anyio.to_thread.run_sync(
            partial(save_uncommitted_sync, worktree, admin, task_id="pool", session_id="pool")
        )
        if saved.rescue_commit is not None:
            await keep_tip(
                self.git,
                f"refs/council/rescue-pool/{saved.rescue_commit}",
                saved.rescue_commit,
                owner="pool",
                reason="council: work found in a pooled worktree",
            )
        nested = await gitlinks(worktree)
        if nested:
            raise WorkspaceError(
                f"{path} came out of the pool holding nested repositories ({', '.join(nested)}); "
                "it was not cleaned for reuse"
            )
        await worktree.run("checkout", "--force", "--quiet", branch)
        await worktree.run("clean", "-ffdxq")

    async def give(self, path: Path, base_tip: str) -> bool:
        """Detach, clean and pool a worktree whose work is safe; False when the pool is full
        (the worktree is then left clean and detached, for the caller to remove). The caller
        has checked it holds no nested repositories, which cleaning would destroy."""
        if self.size <= 0 or len(await anyio.to_thread.run_sync(self.entries)) >= self.size:
            return False
        worktree = self.git.at(path)
        await worktree.run("checkout", "--force", "--quiet", "--detach", base_tip)
        await worktree.run("clean", "-ffdxq")
        target = check_inside(self.pool_dir, Path(f"{self.key}-{secrets.token_hex(6)}"))
        async with self.meta.hold():
            if len(await anyio.to_thread.run_sync(self.entries)) >= self.size:
                return False
            await self.git.run("worktree", "unlock", str(path), check=False)
            try:
                await self.git.run("worktree", "move", str(path), str(target))
            except GitError:
                return False
        return True
