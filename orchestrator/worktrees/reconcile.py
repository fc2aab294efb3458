"""The repair run on start (``Reconciler``), over what ``listing`` found.

Reconcile, in this order, so each step sees the result of the one before:

1. ``index.lock`` files of the main checkout and of our worktrees: a stale one (no process has
   it open, no git process works in that checkout) is renamed aside; one in use raises
   ``WorkspaceError`` naming the lock and the pid, since every git step after it would fail.
2. Our sessions' checkouts whose admin directory is gone (a CLI deleted
   ``.git/worktrees/<name>``: ``stranded``) are given back to git first, on their branch, so
   their uncommitted edits are changes again: kept by the session (live) or committed and
   saved by its removal (dead), never left as loose files.
3. Our worktrees whose directory is gone (deleted by hand): git's metadata for exactly that
   worktree is dropped (unlock, then ``worktree remove``; a repository-wide ``worktree prune``
   would also prune the user's own worktrees on unmounted disks). Their branches stay, so
   ``recreate_session_worktree`` can check them out again with every commit.
4. Sessions: live ones without a worktree are reported as ``missing``; dead ones (not in
   ``live``, when given) are removed under the safety rules of removal, unless processes
   still run inside (``busy``).
5. The pool: worktrees pooled for another checkout shape, or beyond the pool's size, are
   removed (plainly: git refuses if anything appeared in them, and that is reported).
6. Directories under ``.council/worktrees`` or ``.council/pool`` that git does not know are
   reported as orphans and left for a human; they may hold someone's files.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import WorkspaceError, WorktreeBusy
from orchestrator.git.gitfile import read_gitfile
from orchestrator.git.parse import parse_worktree_list
from orchestrator.git.repo import Git
from orchestrator.process.path_users import move_stale_lock
from orchestrator.worktrees.layout import RepoLayout
from orchestrator.worktrees.models import (
    MovedLock,
    ReconcileReport,
    RemovalResult,
    SessionWorktree,
    WorktreeInfo,
)
from orchestrator.worktrees.ops import Workspace
from orchestrator.worktrees.pool import WorktreePool
from orchestrator.worktrees.stranded import restore_stranded

__all__ = ["Reconciler"]

Remover = Callable[[str], Awaitable[RemovalResult]]


@dataclass
class Reconciler:
    ws: Workspace
    skip: set[str] = field(default_factory=set)  # sessions this process is creating or removing

    @property
    def layout(self) -> RepoLayout:
        return self.ws.layout

    @property
    def git(self) -> Git:
        return self.ws.git

    @property
    def pool(self) -> WorktreePool:
        return self.ws.pool

    async def run(
        self,
        *,
        infos: list[WorktreeInfo],
        sessions: dict[str, SessionWorktree],
        live: set[str] | None,
        remove: Remover,
    ) -> ReconcileReport:
        infos = [info for info in infos if info.session_id not in self.skip]
        moved, young = await self._settle_locks(infos)
        recovered, lost = await self._recover_stranded(sessions)
        pruned, problems = await self._drop_vanished(infos)
        problems = young + lost + problems
        missing: list[str] = []
        removed: list[RemovalResult] = []
        busy: list[str] = []
        known = set(sessions) | {
            info.session_id for info in infos if info.kind == "session" and info.session_id
        }
        for sid in sorted(known - self.skip):
            if live is None or sid in live:
                session = sessions.get(sid)
                if session is not None and not await _has_checkout(session.path):
                    missing.append(sid)
                continue
            try:
                removed.append(await remove(sid))
            except WorktreeBusy:
                busy.append(sid)
            except WorkspaceError as exc:
                problems.append(f"session {sid} was not cleaned up: {exc}")
        trimmed = await self._trim_pool(problems)
        listed = await self.git.run("worktree", "list", "--porcelain", "-z")
        raws = parse_worktree_list(listed.stdout)
        orphans = await anyio.to_thread.run_sync(self._orphans, [raw.path for raw in raws])
        return ReconcileReport(
            moved_locks=moved,
            recovered=recovered,
            pruned=pruned,
            missing=missing,
            removed=removed,
            busy=busy,
            pool_trimmed=trimmed,
            orphans=orphans,
            problems=problems,
        )

    async def _settle_locks(self, infos: list[WorktreeInfo]) -> tuple[list[MovedLock], list[str]]:
        layout = self.layout
        targets = [(layout.git_dir / "index.lock", [layout.root, layout.git_dir], [layout.council])]
        for info in infos:
            if info.kind in ("session", "pool") and info.registered and info.exists:
                admin = await anyio.to_thread.run_sync(read_gitfile, info.path)
                if admin is not None:
                    targets.append((admin / "index.lock", [info.path, admin], []))
        moved: list[MovedLock] = []
        young: list[str] = []
        min_age = self.ws.settings.stale_lock_age
        for lock, places, outside in targets:
            verdict, moved_to = await anyio.to_thread.run_sync(
                partial(move_stale_lock, lock, places, outside, min_age=min_age)
            )
            if moved_to is not None:
                moved.append(MovedLock(path=lock, moved_to=moved_to))
            elif verdict == "young":
                young.append(f"{lock} is only seconds old and was left in place")
        return moved, young

    async def _recover_stranded(
        self, sessions: dict[str, SessionWorktree]
    ) -> tuple[list[str], list[str]]:
        recovered: list[str] = []
        problems: list[str] = []
        for sid in sorted(set(sessions) - self.skip):
            try:
                done = await restore_stranded(self.ws, sessions[sid])
            except WorkspaceError as exc:  # its branch is gone too: its files stay
                problems.append(f"session {sid}: {exc}")
                continue
            if done is not None:
                recovered.append(f"session {sid} ({sessions[sid].path}): {done}")
        return recovered, problems

    async def _drop_vanished(self, infos: list[WorktreeInfo]) -> tuple[list[Path], list[str]]:
        pruned: list[Path] = []
        problems: list[str] = []
        for info in infos:
            if not (info.kind in ("session", "pool") and info.registered and not info.exists):
                continue
            async with self.ws.meta.hold():
                if await anyio.to_thread.run_sync(info.path.exists):
                    continue  # it came back meanwhile
                await self.git.run("worktree", "unlock", str(info.path), check=False)
                result = await self.git.run("worktree", "remove", str(info.path), check=False)
            if result.ok:
                pruned.append(info.path)
            else:
                detail = result.stderr.strip()
                problems.append(f"{info.path}: could not drop its metadata: {detail}")
        return pruned, problems

    async def _trim_pool(self, problems: list[str]) -> list[Path]:
        every = await anyio.to_thread.run_sync(lambda: self.pool.entries(matching=False))
        keep = set((await anyio.to_thread.run_sync(self.pool.entries))[: self.pool.size])
        trimmed = []
        for entry in every:
            if entry in keep:
                continue
            async with self.ws.meta.hold():
                result = await self.git.run("worktree", "remove", str(entry), check=False)
            if result.ok:
                trimmed.append(entry)
            else:
                problems.append(f"pooled {entry} was kept: {result.stderr.strip()}")
        return trimmed

    def _orphans(self, registered_paths: list[Path]) -> list[Path]:
        registered = {Path(os.path.realpath(path)) for path in registered_paths}
        found = []
        for parent in (self.layout.worktrees_dir, self.layout.pool_dir):
            try:
                children = sorted(parent.iterdir())
            except FileNotFoundError:
                continue
            for child in children:
                if child.is_dir() and Path(os.path.realpath(child)) not in registered:
                    found.append(child)
        return found


async def _has_checkout(path: Path) -> bool:
    return await anyio.to_thread.run_sync((path / ".git").is_file)
