"""Work in a session's worktree, done by the orchestrator (never the CLI): committing everything
with its identity and trailers, rewinding to a phase's start, undoing a verify command's
by-products, and the branch's statistics against the base.

Every git step of one call runs in one worker-thread hop, under the session's lock. A stale
``index.lock`` a killed CLI left is moved aside first (one in use never), and a checkout a crash cut
short is finished before anything is committed: a commit of it would record every file as deleted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio.to_thread

from orchestrator.errors import SecretInWork, WorkspaceError
from orchestrator.git import ref_book
from orchestrator.git.gitfile import read_gitfile
from orchestrator.git.parse import parse_numstat
from orchestrator.worktrees.commits import (
    commit_all_sync,
    discard_uncommitted_sync,
    finish_checkout_sync,
    keep_tip,
    read_status,
    save_uncommitted_sync,
    settle_index_lock_sync,
)
from orchestrator.worktrees.models import (
    CommitResult,
    Rewound,
    SessionStats,
    SessionWorktree,
    WorktreeSettings,
)
from orchestrator.worktrees.ops import Workspace
from orchestrator.worktrees.sessions import SessionBook

__all__ = ["SessionWork"]

T = TypeVar("T")


class SessionWork:
    def __init__(
        self,
        book: SessionBook,
        workspace: Callable[[], Awaitable[Workspace]],
        settings: WorktreeSettings,
    ) -> None:
        self._book = book
        self._workspace = workspace
        self._settings = settings

    async def commit(
        self,
        session: SessionWorktree | str,
        message: str,
        *,
        diff: bool = False,
        parent: str | None = None,
    ) -> CommitResult:
        """``commit_then`` with nothing after it."""
        done, _ = await self.commit_then(session, message, _nothing, diff=diff, parent=parent)
        return done

    async def commit_then(
        self,
        session: SessionWorktree | str,
        message: str,
        then: Callable[[CommitResult], T],
        *,
        diff: bool = False,
        parent: str | None = None,
    ) -> tuple[CommitResult, T]:
        """Commit the files of the session's worktree on its branch; ``committed=False`` when
        they are ``parent``'s.

        ``parent`` is the commit the caller recorded before the CLI ran (the phase's start,
        the orchestrator's own last commit): the new commit's one parent, whatever the CLI
        did to its branch, HEAD or index meanwhile (``own_commit``); None takes the branch's
        tip. The result's ``head`` is the branch's tip afterwards either way. With ``diff``,
        the new commit's diff from its parent comes with it, for the work's facts to use.
        ``then`` (blocking) is given the result in the same worker-thread call, once the
        commit is made (never when it was refused for a secret: ``SecretInWork``); what it
        returns comes back beside it."""
        found = await self._book.get(session)
        if not message.strip():
            raise WorkspaceError("a commit message must not be empty")
        ws = await self._workspace()
        worktree = ws.git.at(found.path)
        keep_out, lock_age = self._settings.copy_files, self._settings.stale_lock_age
        branch = f"refs/heads/{found.branch}"

        def commit() -> CommitResult:
            if not (found.path / ".git").is_file():
                raise WorkspaceError(
                    f"the worktree of session {found.session_id} ({found.path}) is gone; "
                    "run reconcile and recreate_session_worktree"
                )
            admin = read_gitfile(found.path)
            settle_index_lock_sync(found.path, admin, lock_age)
            # Never a commit of a checkout a crash cut short: it would delete every file.
            finish_checkout_sync(worktree, admin)
            return commit_all_sync(
                worktree,
                message,
                task_id=found.task_id,
                session_id=found.session_id,
                keep_out=keep_out,
                parent=parent,
                branch=branch,
                diff=diff,
            )

        def commit_and_then() -> tuple[CommitResult, T]:
            done = commit()
            if done.scrubbed:  # refused: nothing reads a commit whose work held a secret
                raise SecretInWork(found.branch, done.scrubbed)
            return done, then(done)  # what reads the commit just made rides in this call

        async with self._book.lock(found.session_id):
            return await anyio.to_thread.run_sync(commit_and_then)

    async def rewind(self, session: SessionWorktree | str, commit: str, ref: str) -> Rewound:
        """Put the session's worktree and branch back at ``commit`` (a phase's start), keeping
        whatever was done since on ``ref`` first: uncommitted work committed, then ``ref``
        pointed at the tip. A branch that does not hold ``commit`` (taken over as published
        before that phase started, so none of its work is on it) is left where it is, its
        uncommitted work committed."""
        found = await self._book.get(session)
        ws = await self._workspace()
        worktree = ws.git.at(found.path)
        keep_out, lock_age = self._settings.copy_files, self._settings.stale_lock_age

        def save() -> tuple[str, bool]:
            saved = save_uncommitted_sync(
                worktree,
                read_gitfile(found.path),
                task_id=found.task_id,
                session_id=found.session_id,
                keep_out=keep_out,
                lock_age=lock_age,
            )
            tip = saved.tip or commit  # None only for a branch without commits
            held = worktree.run_sync("merge-base", "--is-ancestor", commit, tip, check=False)
            return tip, held.returncode == 0

        def reset(tip: str) -> None:
            with ref_book.writing():  # the branch's move is noted with it, for the tamper check
                worktree.run_sync("reset", "--hard", "--quiet", commit)
                ref_book.note(f"refs/heads/{found.branch}", tip, commit)

        async with self._book.lock(found.session_id):
            tip, held = await anyio.to_thread.run_sync(save)
            if not held:
                return Rewound(head=tip, kept=None, held=False)
            if tip == commit:
                return Rewound(head=commit, kept=None, held=True)
            await keep_tip(ws.git, ref, tip, owner=found.session_id, reason="council: rewind")
            await anyio.to_thread.run_sync(reset, tip)
        return Rewound(head=commit, kept=tip, held=True)

    async def discard_uncommitted(self, session: SessionWorktree | str) -> list[str]:
        """Undo every uncommitted change in the session's worktree (``discard_uncommitted_sync``:
        for a verify command's by-products); the paths that were changed."""
        found = await self._book.get(session)
        worktree = (await self._workspace()).git.at(found.path)
        keep_out = self._settings.copy_files
        async with self._book.lock(found.session_id):
            return await anyio.to_thread.run_sync(discard_uncommitted_sync, worktree, keep_out)

    async def stats(self, session: SessionWorktree | str) -> SessionStats:
        """The branch's committed diff against its merge-base with the base, and ``dirty``."""
        found = await self._book.get(session)
        ws = await self._workspace()
        git, base_ref = ws.git, ws.base_ref
        tip = await git.rev_parse(f"refs/heads/{found.branch}")
        if tip is None:
            raise WorkspaceError(f"branch {found.branch} of session {found.session_id} is gone")
        merge_base = (await git.run("merge-base", base_ref, tip, check=False)).out or None
        files = insertions = deletions = ahead = 0
        if merge_base is not None:
            numstat = await git.run("diff", "--numstat", "--no-renames", "-z", merge_base, tip)
            files, insertions, deletions = parse_numstat(numstat.stdout)
            counted = await git.run("rev-list", "--count", f"{base_ref}..{tip}")
            ahead = int(counted.out or 0)
        dirty = False
        if await anyio.to_thread.run_sync((found.path / ".git").is_file):
            status = await read_status(git.at(found.path))
            dirty = bool(status.work(self._settings.copy_files))
        return SessionStats(
            session_id=found.session_id,
            branch=found.branch,
            tip=tip,
            merge_base=merge_base,
            commits_ahead=ahead,
            files_changed=files,
            insertions=insertions,
            deletions=deletions,
            dirty=dirty,
        )


def _nothing(done: CommitResult) -> None:
    """Nothing read after a commit."""
