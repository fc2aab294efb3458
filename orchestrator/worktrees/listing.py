"""What the repository's worktrees are: git's list, ours marked with their owners (from git's lock
reason or the state store), plus the sessions recorded whose worktree git no longer lists."""

from __future__ import annotations

import os
from pathlib import Path

import anyio.to_thread

from orchestrator.git.parse import RawWorktree, parse_worktree_list
from orchestrator.git.repo import Git
from orchestrator.ids import is_safe_id
from orchestrator.worktrees.layout import RepoLayout
from orchestrator.worktrees.models import (
    SessionWorktree,
    WorktreeInfo,
    WorktreeKind,
)
from orchestrator.worktrees.names import parse_lock_reason

__all__ = ["list_worktrees"]


async def list_worktrees(
    git: Git, layout: RepoLayout, sessions: dict[str, SessionWorktree]
) -> list[WorktreeInfo]:
    listed = await git.run("worktree", "list", "--porcelain", "-z")
    raws = parse_worktree_list(listed.stdout)
    return await anyio.to_thread.run_sync(_describe, raws, layout, sessions)


def _describe(
    raws: list[RawWorktree], layout: RepoLayout, sessions: dict[str, SessionWorktree]
) -> list[WorktreeInfo]:
    by_path = {session.path: session for session in sessions.values()}
    infos = []
    for index, raw in enumerate(raws):
        path = Path(os.path.realpath(raw.path))
        kind: WorktreeKind = "main" if index == 0 else "linked"
        if layout.worktrees_dir in path.parents:
            kind = "session"
        elif layout.pool_dir in path.parents:
            kind = "pool"
        owner = by_path.pop(path, None)
        reason = parse_lock_reason(raw.lock_reason)
        session_id = cli = task_id = None
        if owner is not None:
            session_id, cli, task_id = owner.session_id, owner.cli, owner.task_id
        elif reason is not None:
            session_id, cli, task_id = reason
        elif kind == "session" and is_safe_id(path.name):
            session_id = path.name
        infos.append(
            WorktreeInfo(
                path=path,
                kind=kind,
                head=raw.head,
                branch=raw.branch_ref.removeprefix("refs/heads/") if raw.branch_ref else None,
                locked=raw.locked,
                lock_reason=raw.lock_reason,
                prunable=raw.prunable,
                registered=True,
                exists=path.is_dir(),
                session_id=session_id,
                cli=cli,
                task_id=task_id,
            )
        )
    for session in by_path.values():  # recorded, but git has no worktree for it
        infos.append(
            WorktreeInfo(
                path=session.path,
                kind="session",
                branch=session.branch,
                registered=False,
                exists=session.path.is_dir(),
                session_id=session.session_id,
                cli=session.cli,
                task_id=session.task_id,
            )
        )
    return infos
