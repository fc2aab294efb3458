"""Session worktrees: one git worktree per CLI session, created fast and never losing work.

``WorktreeManager`` is the coordination layer's view of a repository's worktrees:

- ``create_session_worktree`` makes ``<repo>/.council/worktrees/<session>`` on a new branch
  ``council/<task>/<n>`` (the next free attempt number; parallel sessions of one task each get
  their own) forked from the base branch's tip as it is right now, registered with
  ``git worktree add --lock`` (the reason names session, CLI and task, so ownership survives
  without a store), then copies files in and runs setup commands (``worktree_setup``).
  Ownership is also recorded in the state store (namespace ``worktrees``, key = session id).
- ``commit_in_worktree`` commits everything with the orchestrator's identity and trailers
  (a stale ``index.lock`` a killed CLI left is moved aside first, one in use never);
  ``get_session_stats`` reports the branch's diff against its merge-base with the base.
- ``remove_session_worktree`` follows the safety rules: uncommitted and untracked work is
  committed first; unless the base branch already contains the tip, the tip is saved under
  ``refs/council/rescue/<session>``; only then is the worktree removed (or pooled), without
  ``--force`` unless git's only objection is the orchestrator's own copied files; the branch is
  deleted only when the base contains its tip (a compare-and-swap ``update-ref -d``). A
  worktree in which processes still run is refused (``WorktreeBusy``) unless ``force=True``.
- ``list_worktrees``, ``reconcile`` and ``recreate_session_worktree`` (``worktree_reconcile``)
  repair what a crash or a human left behind; ``present`` is the cheap check (one stat) the
  scheduler makes every tick for the worktrees its CLIs work in.
- ``tamper_guard`` is the repository's check of what a CLI changed outside its worktree
  (``orchestrator.worktrees.tamper.guard``), which the workflow runs around every CLI session.

Git's worktree metadata steps (add, move, lock, unlock, remove, ref deletion) hold one
repository-level lock (``worktree_repo.MetaLock``); checkouts, setup and commits run outside
it. Every git command runs in a worker thread (``Git.run``), file work in ``to_thread``.
Safe to use from many tasks at once; across processes the metadata lock and git's own ref
compare-and-swap keep two orchestrators apart, but ``reconcile`` must only be told a session
is dead when no orchestrator is still creating it.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from orchestrator.config.sections import WorktreeConfig
from orchestrator.errors import SecretInWork, VersionConflict, WorkspaceError
from orchestrator.events import Event
from orchestrator.git import ref_book
from orchestrator.git.parse import parse_numstat, read_gitfile
from orchestrator.git.repo import Git
from orchestrator.ids import check_id
from orchestrator.models import utcnow
from orchestrator.process.path_users import WorktreeBusy
from orchestrator.safety.safe_write import unlink, write_atomic
from orchestrator.state.protocol import StateStore
from orchestrator.worktrees.commits import (
    commit_all_sync,
    discard_uncommitted_sync,
    finish_checkout_sync,
    keep_tip,
    read_status,
    read_status_sync,
    save_uncommitted_sync,
    settle_index_lock_sync,
)
from orchestrator.worktrees.layout import (
    IDENTITY,
    MetaLock,
    RepoLayout,
    check_ref_id,
    lock_reason,
    rescue_ref,
)
from orchestrator.worktrees.models import (
    CommitResult,
    ReconcileReport,
    RemovalResult,
    SessionStats,
    SessionWorktree,
    WorktreeInfo,
    WorktreeSettings,
)
from orchestrator.worktrees.ops import (
    Fork,
    Workspace,
    add_worktree,
    drop_branch,
    fork_branch,
    remove_registered,
    retire,
    share_worktree_config,
)
from orchestrator.worktrees.pool import WorktreePool
from orchestrator.worktrees.reconcile import Reconciler, list_worktrees
from orchestrator.worktrees.setup import prepare_worktree
from orchestrator.worktrees.tamper.guard import TamperGuard

__all__ = ["NAMESPACE", "WorktreeBusy", "WorktreeManager"]

NAMESPACE = "worktrees"
log = logging.getLogger(__name__)


class WorktreeManager:
    def __init__(
        self,
        repo_path: Path | str,
        *,
        store: StateStore | None = None,
        base_branch: str = "main",
        settings: WorktreeConfig | None = None,
    ) -> None:
        self.repo_path = Path(repo_path)
        self.store = store
        self.base_branch = base_branch
        if settings is None:
            settings = WorktreeSettings()
        elif not isinstance(settings, WorktreeSettings):
            settings = WorktreeSettings.from_config(settings)
        self.settings: WorktreeSettings = settings
        self._ws: Workspace | None = None
        self._init_lock = anyio.Lock()
        self._known: dict[str, SessionWorktree] = {}
        self._busy: set[str] = set()  # sessions being created or removed by this manager
        self._reserved: defaultdict[str, set[int]] = defaultdict(set)
        self._reserved_lock = threading.Lock()  # branch numbers are picked in worker threads
        self._session_locks: dict[str, anyio.Lock] = {}
        self._guard: TamperGuard | None = None

    @property
    def base_ref(self) -> str:
        return f"refs/heads/{self.base_branch}"

    async def layout(self) -> RepoLayout:
        """The repository's layout; the first call also prepares ``.council/``."""
        return (await self._workspace()).layout

    async def _workspace(self) -> Workspace:
        if self._ws is None:
            async with self._init_lock:
                if self._ws is None:
                    layout = await RepoLayout.discover(self.repo_path)
                    await layout.prepare(self.settings.meta_lock_timeout)
                    git = Git(layout.root, layout.hooks_dir, IDENTITY)
                    meta = MetaLock(
                        layout.meta_lock_path, self.settings.meta_lock_timeout, layout.root
                    )
                    pool = WorktreePool(
                        git, layout.pool_dir, meta, self.settings.pool_size, self.settings.sparse
                    )
                    ws = Workspace(layout, git, meta, pool, self.settings, self.base_ref)
                    if self.settings.sparse:
                        await share_worktree_config(ws)
                    self._ws = ws
        return self._ws

    async def tamper_guard(self) -> TamperGuard:
        """The repository's check of what CLIs must not change
        (``orchestrator.worktrees.tamper.guard``)."""
        if self._guard is None:
            ws = await self._workspace()
            layout = ws.layout
            self._guard = TamperGuard(
                ws.git,
                layout.git_dir,
                layout.common_dir,
                layout.worktrees_dir,
                ours=lambda: self._busy | self._known.keys(),
                base_ref=self.base_ref,
            )
        return self._guard

    # --- create ------------------------------------------------------------------------------

    async def create_session_worktree(
        self, session_id: str, cli_name: str, task_id: str
    ) -> SessionWorktree:
        """A new worktree for ``session_id`` on branch ``council/<task>/<n>`` at the base tip."""
        sid = check_ref_id(session_id, "session id")
        cli = check_id(cli_name, "adapter name")
        task = check_ref_id(task_id, "task id")
        ws = await self._workspace()
        path = ws.layout.session_path(sid)
        if sid in self._busy or sid in self._known:
            raise WorkspaceError(f"session {sid!r} already has a worktree in this orchestrator")
        self._busy.add(sid)
        try:

            def fork() -> Fork:
                if path.exists():
                    raise WorkspaceError(
                        f"{path} already exists; remove that session or run reconcile first"
                    )
                return fork_branch(ws, task, self._reserved[task], self._reserved_lock)

            forked = await anyio.to_thread.run_sync(fork)
            branch, base_tip = forked.branch, forked.base
            session = SessionWorktree(
                session_id=sid,
                cli=cli,
                task_id=task,
                path=path,
                branch=branch,
                base_commit=base_tip,
                created_at=utcnow(),
            )
            try:
                await self._put_record(session, expected_version=0)
            except BaseException as exc:
                with anyio.CancelScope(shield=True):
                    await drop_branch(ws, branch, base_tip)  # unused, still at the base tip
                if isinstance(exc, VersionConflict):
                    raise WorkspaceError(
                        f"session {sid!r} already owns a worktree record; remove it or reconcile"
                    ) from None
                raise
            async with self._session_lock(sid):
                await self._materialize(ws, session, recreating=False)
                self._known[sid] = session
        finally:
            self._busy.discard(sid)
        await self._emit("worktree.created", session.model_dump(mode="json"))
        return session

    async def _materialize(
        self, ws: Workspace, session: SessionWorktree, *, recreating: bool
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
            else:
                await add_worktree(ws, session, reason)
            await self._set_up(ws, session)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                try:
                    await self._retire(session, force=True, pool_it=False, forget=not recreating)
                except Exception as cleanup:
                    log.warning("cleaning up %s failed: %s", session.path, cleanup)
                    exc.add_note(f"cleaning up {session.path} failed too: {cleanup}")
            raise

    async def _set_up(self, ws: Workspace, session: SessionWorktree) -> None:
        """Copy files and run setup in a checked-out worktree, then mark it ready: the last of
        its multi-step making, so a worktree without the mark was cut short (``_finish``)."""
        await prepare_worktree(
            repo_root=ws.layout.root,
            worktree=session.path,
            session_id=session.session_id,
            task_id=session.task_id,
            copy_files=self.settings.copy_files,
            setup=self.settings.setup,
            timeout=self.settings.setup_timeout,
            log_path=ws.layout.setup_log(session.session_id),
            passthrough=self.settings.passthrough_env,
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

    # --- work in a session ---------------------------------------------------------------------

    async def commit_in_worktree(
        self, session: SessionWorktree | str, message: str
    ) -> CommitResult:
        """Commit all of the session's work on its branch; ``committed=False`` if none.

        The result's ``head`` is the worktree's HEAD afterwards either way. Every git step
        (status, add, commit, ...) runs in one worker-thread call."""
        found = await self.get_session(session)
        if not message.strip():
            raise WorkspaceError("a commit message must not be empty")
        worktree = (await self._workspace()).git.at(found.path)
        keep_out = self.settings.copy_files

        def commit() -> CommitResult:
            if not (found.path / ".git").is_file():
                raise WorkspaceError(
                    f"the worktree of session {found.session_id} ({found.path}) is gone; "
                    "run reconcile and recreate_session_worktree"
                )
            admin = read_gitfile(found.path)
            settle_index_lock_sync(found.path, admin, self.settings.stale_lock_age)
            # Never a commit of a checkout a crash cut short: it would delete every file.
            finish_checkout_sync(worktree, admin)
            status = read_status_sync(worktree)
            if status.branch != found.branch:
                where = f"branch {status.branch}" if status.branch else "a detached HEAD"
                raise WorkspaceError(
                    f"{found.path} is on {where}, not on the session's branch {found.branch}; "
                    "nothing was committed"
                )
            work = status.work(keep_out)
            if not work:
                return CommitResult(committed=False, head=status.head)
            return commit_all_sync(
                worktree,
                message,
                task_id=found.task_id,
                session_id=found.session_id,
                keep_out=keep_out,
                work=work,
            )

        async with self._session_lock(found.session_id):
            done = await anyio.to_thread.run_sync(commit)
        if done.scrubbed:
            raise SecretInWork(found.branch, done.scrubbed)
        return done

    async def rewind(self, session: SessionWorktree | str, commit: str, ref: str) -> str | None:
        """Put the session's worktree and branch back at ``commit`` (a phase's start), keeping
        whatever was done since on ``ref`` first: uncommitted work committed, then ``ref``
        pointed at the tip. The tip kept, or None when there was nothing since ``commit``."""
        found = await self.get_session(session)
        ws = await self._workspace()
        worktree = ws.git.at(found.path)
        keep_out = self.settings.copy_files

        def save() -> str | None:
            saved = save_uncommitted_sync(
                worktree,
                read_gitfile(found.path),
                task_id=found.task_id,
                session_id=found.session_id,
                keep_out=keep_out,
                lock_age=self.settings.stale_lock_age,
            )
            return None if saved.tip == commit else saved.tip

        def reset(tip: str) -> None:
            with ref_book.writing():  # the branch's move is noted with it, for the tamper check
                worktree.run_sync("reset", "--hard", "--quiet", commit)
                ref_book.note(f"refs/heads/{found.branch}", tip, commit)

        async with self._session_lock(found.session_id):
            tip = await anyio.to_thread.run_sync(save)
            if tip is None:
                return None
            await keep_tip(ws.git, ref, tip, owner=found.session_id, reason="council: rewind")
            await anyio.to_thread.run_sync(reset, tip)
        return tip

    async def discard_uncommitted(self, session: SessionWorktree | str) -> list[str]:
        """Undo every uncommitted change in the session's worktree (``discard_uncommitted_sync``:
        for a verify command's by-products); the paths that were changed."""
        found = await self.get_session(session)
        worktree = (await self._workspace()).git.at(found.path)
        keep_out = self.settings.copy_files
        async with self._session_lock(found.session_id):
            return await anyio.to_thread.run_sync(discard_uncommitted_sync, worktree, keep_out)

    async def get_session_stats(self, session: SessionWorktree | str) -> SessionStats:
        """The branch's committed diff against its merge-base with the base, and ``dirty``."""
        found = await self.get_session(session)
        git = (await self._workspace()).git
        tip = await git.rev_parse(f"refs/heads/{found.branch}")
        if tip is None:
            raise WorkspaceError(f"branch {found.branch} of session {found.session_id} is gone")
        merge_base = (await git.run("merge-base", self.base_ref, tip, check=False)).out or None
        files = insertions = deletions = ahead = 0
        if merge_base is not None:
            numstat = await git.run("diff", "--numstat", "--no-renames", "-z", merge_base, tip)
            files, insertions, deletions = parse_numstat(numstat.stdout)
            counted = await git.run("rev-list", "--count", f"{self.base_ref}..{tip}")
            ahead = int(counted.out or 0)
        dirty = False
        if await self.present(found):
            status = await read_status(git.at(found.path))
            dirty = bool(status.work(self.settings.copy_files))
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

    # --- removal -------------------------------------------------------------------------------

    async def remove_session_worktree(
        self, session: SessionWorktree | str, *, force: bool = False
    ) -> RemovalResult:
        """Save the session's work, then remove (or pool) its worktree; see the module doc.

        ``force=True`` only skips the check for processes still running inside (whatever they
        write after the rescue commit is lost with the directory, and the worktree is not
        pooled); work is saved the same way, and a branch the base lacks is kept regardless.
        """
        found = await self.get_session(session)
        if found.session_id in self._busy:
            raise WorkspaceError(f"session {found.session_id!r} is being created or removed")
        self._busy.add(found.session_id)
        try:
            async with self._session_lock(found.session_id):
                return await self._retire(found, force=force, pool_it=True)
        finally:
            self._busy.discard(found.session_id)

    async def _retire(
        self, session: SessionWorktree, *, force: bool, pool_it: bool, forget: bool = True
    ) -> RemovalResult:
        """``retire`` plus the bookkeeping; the caller holds the session's lock."""
        sid = session.session_id
        result = await retire(await self._workspace(), session, force=force, pool_it=pool_it)
        if forget:
            await self._delete_record(sid)
            self._known.pop(sid, None)
        if result.rescue_commit is not None:
            await self._emit(
                "worktree.rescued", {"session_id": sid, "commit": result.rescue_commit}
            )
        await self._emit("worktree.removed", result.model_dump(mode="json"))
        return result

    # --- finding sessions ----------------------------------------------------------------------

    async def get_session(self, session: SessionWorktree | str) -> SessionWorktree:
        """The session's worktree, from memory, the store, or git's lock reason."""
        if isinstance(session, SessionWorktree):
            return session
        sid = check_id(session, "session id")
        if sid in self._known:
            return self._known[sid]
        if self.store is not None:
            record = await self.store.get_record(NAMESPACE, sid)
            if record is not None:
                return SessionWorktree.model_validate(record.data)
        ws = await self._workspace()
        for info in await self.list_worktrees():
            if info.kind == "session" and info.session_id == sid and info.branch:
                return SessionWorktree(
                    session_id=sid,
                    cli=info.cli or "unknown",
                    task_id=info.task_id or "unknown",
                    path=info.path,
                    branch=info.branch,
                    base_commit=(await ws.git.run("merge-base", self.base_ref, info.branch)).out,
                    created_at=utcnow(),
                )
        raise WorkspaceError(f"no worktree is known for session {sid!r} in {ws.layout.root}")

    async def sessions(self) -> dict[str, SessionWorktree]:
        """Every session this manager or the store knows a worktree for."""
        found = dict(self._known)
        if self.store is not None:
            for record in await self.store.list_records(NAMESPACE):
                try:
                    found.setdefault(record.key, SessionWorktree.model_validate(record.data))
                except ValueError as exc:
                    log.warning("worktree record %s is not readable: %s", record.key, exc)
        return found

    async def list_worktrees(self) -> list[WorktreeInfo]:
        """Git's worktrees (ours marked, with their owners) plus recorded ones git lacks."""
        ws = await self._workspace()
        return await list_worktrees(ws.git, ws.layout, await self.sessions())

    # --- repair --------------------------------------------------------------------------------

    async def reconcile(self, live_sessions: Collection[str] | None = None) -> ReconcileReport:
        """Repair after a crash: stale locks, vanished directories, dead sessions, the pool.

        Raises ``WorkspaceError`` when an ``index.lock`` is held by a running process.
        Sessions not in ``live_sessions`` (when given) are removed under the safety rules.
        """
        reconciler = Reconciler(await self._workspace(), skip=set(self._busy))
        return await reconciler.run(
            infos=await self.list_worktrees(),
            sessions=await self.sessions(),
            live=None if live_sessions is None else set(live_sessions),
            remove=self.remove_session_worktree,
        )

    async def recreate_session_worktree(self, session: SessionWorktree | str) -> SessionWorktree:
        """Check a session's branch out again at its path, keeping every commit (after the
        directory was deleted by hand, say); returns the session unchanged if it is there."""
        found = await self.get_session(session)
        ws = await self._workspace()
        git = ws.git
        sid = found.session_id
        if sid in self._busy:
            raise WorkspaceError(f"session {sid!r} is being created or removed")
        self._busy.add(sid)
        try:
            async with self._session_lock(sid):
                if await self.present(found):
                    if await self._finish(ws, found):
                        await self._emit("worktree.finished", {"session_id": sid})
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
                await self._put_record(recreated, expected_version=None)
                await self._materialize(ws, recreated, recreating=True)
                self._known[sid] = recreated
        finally:
            self._busy.discard(sid)
        await self._emit("worktree.recreated", recreated.model_dump(mode="json"))
        return recreated

    # --- small helpers -------------------------------------------------------------------------

    @asynccontextmanager
    async def _session_lock(self, session_id: str) -> AsyncIterator[None]:
        """One git operation on a session's worktree at a time (not reentrant)."""
        lock = self._session_locks.setdefault(session_id, anyio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._session_locks.pop(session_id, None)

    async def present(self, session: SessionWorktree) -> bool:
        """The session's checkout is there (its `.git` file): False once it was deleted."""
        return await anyio.to_thread.run_sync((session.path / ".git").is_file)

    async def present_all(self, sessions: Sequence[SessionWorktree]) -> list[bool]:
        """``present`` for each of ``sessions``, in one worker-thread call."""
        paths = [session.path / ".git" for session in sessions]
        return await anyio.to_thread.run_sync(lambda: [path.is_file() for path in paths])

    async def _put_record(self, session: SessionWorktree, expected_version: int | None) -> None:
        if self.store is not None:
            await self.store.put_record(
                NAMESPACE, session.session_id, session.model_dump(mode="json"), expected_version
            )

    async def _delete_record(self, session_id: str) -> None:
        if self.store is not None:
            await self.store.delete_record(NAMESPACE, session_id)

    async def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self.store is None:
            return
        try:
            await self.store.emit(Event(type=kind, data=data))
        except Exception as exc:  # the audit trail must not undo work that already happened
            log.warning("could not record event %s: %s", kind, exc)


_READY = "council-ready"  # in the worktree's admin directory: its making is complete


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
