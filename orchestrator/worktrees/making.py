"""Making a session's worktree: a new branch ``council/<task>/<n>`` forked from the base tip as it
is right now (the next free attempt number; parallel sessions of one task each get their own),
checked out at ``<repo>/.council/worktrees/<session>`` (from the pool when one is free), files
copied in and setup commands run (``setup``), and only then marked ready.

A worktree without the ready mark was cut short by a crash: its checkout and setup are finished
before anyone works in it (``finish``). A recreated worktree (its directory deleted by hand, say) is
checked out again from its branch, or from its rescue ref when the branch is gone, keeping every
commit.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass

import anyio
import anyio.to_thread

from orchestrator.errors import VersionConflict, WorkspaceError
from orchestrator.events.worktrees import WorktreeCreated, WorktreeFinished, WorktreeRecreated
from orchestrator.git.gitfile import read_gitfile
from orchestrator.ids import check_id
from orchestrator.models import utcnow
from orchestrator.safety.safe_write import unlink, write_atomic
from orchestrator.sandbox.commands import CommandPlace
from orchestrator.sandbox.plan import Sandbox
from orchestrator.worktrees.commits import finish_checkout_sync
from orchestrator.worktrees.confine import git_reach
from orchestrator.worktrees.models import SessionWorktree, WorktreeSettings
from orchestrator.worktrees.names import check_ref_id, lock_reason, rescue_ref
from orchestrator.worktrees.ops import (
    Fork,
    Workspace,
    add_worktree,
    checkout_steps,
    drop_branch,
    fork_branch,
    remove_registered,
)
from orchestrator.worktrees.sessions import SessionBook
from orchestrator.worktrees.setup import prepare_worktree
from orchestrator.worktrees.stranded import READY, restore_stranded

__all__ = ["WorktreeMaker"]

log = logging.getLogger(__name__)

_READY = READY  # in the worktree's admin directory: its making is complete


class WorktreeMaker:
    def __init__(
        self,
        book: SessionBook,
        workspace: Callable[[], Awaitable[Workspace]],
        settings: WorktreeSettings,
    ) -> None:
        self._book = book
        self._workspace = workspace
        self._settings = settings
        self._reserved: defaultdict[str, set[int]] = defaultdict(set)
        self._reserved_lock = threading.Lock()  # branch numbers are picked in worker threads

    async def create(
        self,
        session_id: str,
        cli_name: str,
        task_id: str,
        at_least: int = 1,
        start: str | None = None,
        whole: Callable[[SessionWorktree], None] | None = None,
        *,
        beside: Callable[[], None] | None = None,
    ) -> SessionWorktree:
        """A new worktree for ``session_id`` on branch ``council/<task>/<n>`` at the base tip
        (``n`` at least ``at_least``), or at commit ``start``. ``whole`` (blocking: the seal's
        snapshot of its pointers) runs once it is whole, in the call that marks it ready where
        one does; if it raises, the worktree is removed as any half-made one is. ``beside``
        (blocking, the caller's own; it must not raise) runs first in the call that forks the
        branch, before anything of the worktree is made or written."""
        book = self._book
        sid = check_ref_id(session_id, "session id")
        cli = check_id(cli_name, "adapter name")
        task = check_ref_id(task_id, "task id")
        ws = await self._workspace()
        path = ws.layout.session_path(sid)
        if sid in book.busy or sid in book.known:
            raise WorkspaceError(f"session {sid!r} already has a worktree in this orchestrator")
        with book.making_or_removing(sid):
            forks: list[Fork] = []

            def fork() -> SessionWorktree:
                if beside is not None:
                    beside()
                if path.exists():
                    raise WorkspaceError(
                        f"{path} already exists; remove that session or run reconcile first"
                    )
                forked = fork_branch(
                    ws, task, self._reserved[task], self._reserved_lock, at_least, start
                )
                forks.append(forked)
                return SessionWorktree(
                    session_id=sid,
                    cli=cli,
                    task_id=task,
                    path=path,
                    branch=forked.branch,
                    base_commit=forked.base,
                    created_at=utcnow(),
                )

            rides = self._rides_with_record(ws)
            checkouts: list[_Checkout] = []

            def check_out(made: SessionWorktree) -> _Checkout:
                """The worktree checked out behind its record, in the record's call, when
                nothing is to be done first (no pooled one to take, no set-up, no sparse
                cone) and nobody holds the repository's ``MetaLock`` now; else later, as
                ``_materialize`` does."""
                if not rides:
                    return _Checkout(made, False)
                steps = checkout_steps(
                    ws, made, lock_reason(sid, cli, task), _ready(ws, whole)(made)
                )
                try:
                    took, _ = ws.meta.try_run(steps)
                except Exception as exc:  # undone below, as a half-made one is
                    checkouts.append(_Checkout(made, True, exc))
                else:
                    checkouts.append(_Checkout(made, took))
                return checkouts[-1]

            try:
                # The branch forked, then its record written ahead of the worktree, then the
                # worktree where it can: one store call (the fork and the checkout ride in the
                # record's worker-thread call on the file store). In line with this process's
                # other holders of the metadata lock (``MetaLock.turn``), so the checkout's try
                # finds it busy only when another process holds it.
                async with ws.meta.turn() if rides else nullcontext():
                    session, checkout = await book.put_made(
                        sid, fork, check_out, expected_version=0
                    )
            except BaseException as exc:
                if checkouts and checkouts[0].took:  # written and checked out: cancelled after
                    await self._undo(checkouts[0].session, exc, recreating=False)
                    raise
                if not forks:
                    raise  # nothing forked (the fork itself refused, or never ran)
                with anyio.CancelScope(shield=True):  # unused, still at the base tip
                    await drop_branch(ws, forks[0].branch, forks[0].base)
                if isinstance(exc, VersionConflict):
                    raise WorkspaceError(
                        f"session {sid!r} already owns a worktree record; remove it or reconcile"
                    ) from None
                raise
            async with book.lock(sid):
                if checkout.error is not None:
                    await self._undo(session, checkout.error, recreating=False)
                    raise checkout.error
                if not checkout.took:
                    await self._materialize(ws, session, recreating=False, whole=whole)
                book.known[sid] = session
        await book.emit(WorktreeCreated(**session.model_dump(mode="json")))
        return session

    async def recreate(self, session: SessionWorktree | str) -> SessionWorktree:
        """Check a session's branch out again at its path, keeping every commit (after the
        directory was deleted by hand, say); returns the session unchanged if it is there."""
        book = self._book
        found = await book.get(session)
        ws = await self._workspace()
        git = ws.git
        sid = found.session_id
        with book.making_or_removing(sid):
            async with book.lock(sid):
                if await anyio.to_thread.run_sync((found.path / ".git").is_file):
                    await restore_stranded(ws, found)  # before anything else touches it
                    if await self._finish(ws, found):
                        finished = WorktreeFinished(task_id=found.task_id, session_id=sid)
                        await book.emit(finished)
                    return found
                if await anyio.to_thread.run_sync(found.path.exists):
                    raise WorkspaceError(
                        f"{found.path} exists but is not a git worktree; move it away first"
                    )
                ref = f"refs/heads/{found.branch}"
                if await git.rev_parse(ref) is None:
                    saved = await git.rev_parse(rescue_ref(sid))
                    if saved is None:
                        raise WorkspaceError(
                            f"cannot recreate session {sid!r}: branch {found.branch} and "
                            f"{rescue_ref(sid)} are both gone"
                        )
                    await git.update_ref(ref, saved, None, "council: branch from rescue ref")
                await remove_registered(ws, found.path, force=False)
                recreated = found.model_copy(update={"created_at": utcnow()})
                await book.put(recreated, expected_version=None)
                await self._materialize(ws, recreated, recreating=True)
                book.known[sid] = recreated
        await book.emit(WorktreeRecreated(**recreated.model_dump(mode="json")))
        return recreated

    async def _materialize(
        self,
        ws: Workspace,
        session: SessionWorktree,
        *,
        recreating: bool,
        whole: Callable[[SessionWorktree], None] | None = None,
    ) -> None:
        """Check the session's branch out at its path and set it up; on any failure the
        half-made worktree is removed under the safety rules and the error re-raised (a
        recreated session keeps its ownership record, so it can be recreated again).
        The caller holds the session's lock."""
        reason = lock_reason(session.session_id, session.cli, session.task_id)
        try:
            if await ws.pool.take(session.path, reason):
                # Its mark is its last session's: this making has not finished.
                await anyio.to_thread.run_sync(_unmark_ready, ws, session)
                await ws.pool.prepare_taken(session.path, session.branch)
            elif self._nothing_to_set_up():
                # Marked ready in the call that checks it out: nothing else makes it.
                await add_worktree(ws, session, reason, _ready(ws, whole)(session))
                return
            else:
                await add_worktree(ws, session, reason)
            await self._set_up(ws, session)
            if whole is not None:
                await anyio.to_thread.run_sync(whole, session)
        except BaseException as exc:
            await self._undo(session, exc, recreating=recreating)
            raise

    async def _undo(
        self, session: SessionWorktree, exc: BaseException, *, recreating: bool
    ) -> None:
        """A half-made worktree removed under the safety rules (``exc``: why; a failure of
        the removal is noted on it)."""
        with anyio.CancelScope(shield=True):
            try:
                await self._book.retire(session, force=True, pool_it=False, forget=not recreating)
            except Exception as cleanup:
                log.warning("cleaning up %s failed: %s", session.path, cleanup)
                exc.add_note(f"cleaning up {session.path} failed too: {cleanup}")

    def _nothing_to_set_up(self) -> bool:
        """No files to copy in and no setup command: a checkout is ready as made."""
        return not self._settings.copy_files and not self._settings.setup

    def _rides_with_record(self, ws: Workspace) -> bool:
        """Whether a new worktree can be checked out in its record's call: no pooled one to
        take first, nothing to set up after, no sparse cone (two steps)."""
        return ws.pool.size <= 0 and self._nothing_to_set_up() and not ws.settings.sparse

    async def _set_up(self, ws: Workspace, session: SessionWorktree) -> None:
        """Copy files and run setup in a checked-out worktree, then mark it ready: the last of
        its multi-step making, so a worktree without the mark was cut short (``_finish``)."""
        settings = self._settings
        confining = settings.sandbox_for(session.cli)
        sandbox = None
        if settings.setup and confining is not None and confining.binary is not None:
            reach = await anyio.to_thread.run_sync(
                git_reach, ws.layout, session.path, session.branch
            )
            sandbox = Sandbox(confining, reach)
        home = ws.layout.command_home(session.session_id)
        await prepare_worktree(
            repo_root=ws.layout.root,
            place=CommandPlace(session.path, home, sandbox),
            session_id=session.session_id,
            task_id=session.task_id,
            copy_files=settings.copy_files,
            setup=settings.setup,
            timeout=settings.setup_timeout,
            log_path=ws.layout.setup_log(session.session_id),
            passthrough=settings.passthrough_env,
        )
        await anyio.to_thread.run_sync(_mark_ready, ws, session)

    async def _finish(self, ws: Workspace, session: SessionWorktree) -> bool:
        """Finish the making of a worktree a crash cut short (its checkout, its setup);
        False when it was whole already."""
        admin = await anyio.to_thread.run_sync(read_gitfile, session.path)
        if admin is not None and await anyio.to_thread.run_sync((admin / _READY).is_file):
            return False
        git = ws.git.at(session.path)
        await anyio.to_thread.run_sync(finish_checkout_sync, git, admin)
        await self._set_up(ws, session)
        return True


@dataclass(frozen=True)
class _Checkout:
    """A new session's worktree in its record's call: ``took`` (checked out, or tried and
    failed with ``error``), or not tried there (its ``MetaLock`` was busy, or it needs more)."""

    session: SessionWorktree
    took: bool
    error: Exception | None = None


def _ready(
    ws: Workspace, whole: Callable[[SessionWorktree], None] | None
) -> Callable[[SessionWorktree], Callable[[], None]]:
    """The last step of a checkout that needs nothing more (blocking): the worktree marked
    ready, then ``whole``."""

    def for_session(session: SessionWorktree) -> Callable[[], None]:
        def ready() -> None:
            _mark_ready(ws, session)
            if whole is not None:
                whole(session)

        return ready

    return for_session


def _mark_ready(ws: Workspace, session: SessionWorktree) -> None:
    # The admin directory comes from the worktree's .git file, which its CLI can rewrite:
    # written only under git's common directory.
    admin = read_gitfile(session.path)
    if admin is None:
        raise WorkspaceError(f"{session.path} has no .git file after its checkout")
    write_atomic(ws.layout.common_dir, admin / _READY, f"{session.session_id}\n".encode())


def _unmark_ready(ws: Workspace, session: SessionWorktree) -> None:
    admin = read_gitfile(session.path)
    if admin is not None and (admin / _READY).exists():
        unlink(ws.layout.common_dir, admin / _READY)
