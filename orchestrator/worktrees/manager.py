"""Session worktrees: one git worktree per CLI session, created fast and never losing work.

``WorktreeManager`` is the coordination layer's view of a repository's worktrees:

- ``create_session_worktree`` makes ``<repo>/.council/worktrees/<session>`` on a new branch
  ``council/<task>/<n>`` (the next free attempt number; parallel sessions of one task each get
  their own) forked from the base branch's tip as it is right now, registered with
  ``git worktree add --lock`` (the reason names session, CLI and task, so ownership survives
  without a store), then copies files in and runs setup commands (``worktrees.setup``).
  Ownership is also recorded in the state store (namespace ``worktrees``, key = session id).
- ``commit_in_worktree`` commits everything with the orchestrator's identity and trailers
  (a stale ``index.lock`` a killed CLI left is moved aside first, one in use never);
  ``get_session_stats`` reports the branch's diff against its merge-base with the base
  (``session_work``).
- ``remove_session_worktree`` follows the safety rules: uncommitted and untracked work is
  committed first; unless the base branch already contains the tip, the tip is saved under
  ``refs/council/rescue/<session>``; only then is the worktree removed (or pooled), without
  ``--force`` unless git's only objection is the orchestrator's own copied files; the branch is
  deleted only when the base contains its tip (a compare-and-swap deletion, ``git.loose_refs``
  or ``update-ref -d``). A
  worktree in which processes still run is refused (``WorktreeBusy``) unless ``force=True``.
- ``list_worktrees``, ``reconcile`` and ``recreate_session_worktree`` (``reconcile``, ``making``)
  repair what a crash or a human left behind (a checkout whose admin directory a CLI deleted
  is given back to git first, ``stranded``, and so before ``remove_session_worktree``);
  ``adopt_orphans`` takes in the worktrees of a run whose state is gone (``orphans``);
  ``present`` is the cheap check (one stat) the scheduler makes every tick for the worktrees
  its CLIs work in.
- ``tamper_guard`` is the repository's check of what a CLI changed outside its worktree
  (``orchestrator.worktrees.tamper.guard``), which the workflow runs around every CLI session.

Git's worktree metadata steps (add, move, lock, unlock, remove, ref deletion) hold one
repository-level lock (``layout.MetaLock``); checkouts, setup and commits run outside
it. Every git command runs in a worker thread (``Git.run``), file work in ``to_thread``.
Safe to use from many tasks at once; across processes the metadata lock and git's own ref
compare-and-swap keep two orchestrators apart, but ``reconcile`` must only be told a session
is dead when no orchestrator is still creating it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from orchestrator.config.sections import WorktreeConfig
from orchestrator.errors import WorktreeBusy
from orchestrator.git import seal
from orchestrator.git.repo import Git
from orchestrator.ids import check_id
from orchestrator.models import utcnow
from orchestrator.sandbox.plan import GitReach
from orchestrator.state.claim_rules import ReleaseFirst
from orchestrator.state.deletions import Deletion
from orchestrator.state.protocol import StateStore
from orchestrator.worktrees.confine import adopt_left_objects, git_reach
from orchestrator.worktrees.layout import IDENTITY, MetaLock, RepoLayout
from orchestrator.worktrees.making import WorktreeMaker
from orchestrator.worktrees.models import (
    CommitResult,
    ReconcileReport,
    RemovalResult,
    Rewound,
    SessionStats,
    SessionWorktree,
    WorktreeInfo,
    WorktreeSettings,
)
from orchestrator.worktrees.ops import Workspace, share_worktree_config
from orchestrator.worktrees.orphans import Adoption, adopt_orphans
from orchestrator.worktrees.pool import WorktreePool
from orchestrator.worktrees.reconcile import Reconciler
from orchestrator.worktrees.session_work import SessionWork
from orchestrator.worktrees.sessions import NAMESPACE, SessionBook
from orchestrator.worktrees.tamper.guard import TamperGuard

__all__ = ["NAMESPACE", "STATS_ON_LOOP", "WorktreeBusy", "WorktreeManager"]

# ``present_all`` stats up to this many checkouts on the event loop (a stat opens nothing and
# is as quick as a dictionary look once the directory is cached); more go to a worker thread.
STATS_ON_LOOP = 32

T = TypeVar("T")


class WorktreeManager:
    """The repository's session worktrees; composed of the ``SessionBook`` (what is known and
    owned), the ``WorktreeMaker`` and ``SessionWork``, over one lazily prepared workspace."""

    def __init__(
        self,
        repo_path: Path | str,
        *,
        store: StateStore | None = None,
        base_branch: str = "main",
        settings: WorktreeConfig | WorktreeSettings | None = None,
        base_ref: str | None = None,
    ) -> None:
        self.repo_path = Path(repo_path)
        self.store = store
        self.base_branch = base_branch
        # Team mode forks from the remote's base as last fetched (``refs/remotes/<remote>/``).
        self._base_ref = base_ref or f"refs/heads/{base_branch}"
        if not isinstance(settings, WorktreeSettings):
            settings = WorktreeSettings(settings)
        self.settings: WorktreeSettings = settings
        self._ws: Workspace | None = None
        self._init_lock = anyio.Lock()
        self._book = SessionBook(store, self._workspace)
        self._maker = WorktreeMaker(self._book, self._workspace, settings)
        self._work = SessionWork(self._book, self._workspace, settings)
        self._guard: TamperGuard | None = None

    @property
    def base_ref(self) -> str:
        return self._base_ref

    async def layout(self) -> RepoLayout:
        """The repository's layout; the first call also prepares ``.council/``."""
        return (await self._workspace()).layout

    async def _workspace(self) -> Workspace:
        if self._ws is None:
            async with self._init_lock:
                if self._ws is None:
                    layout = await RepoLayout.discover(self.repo_path)
                    git = Git(layout.root, layout.hooks_dir, IDENTITY)

                    def ready() -> None:
                        # From here on, git's setup is the run's: checked before every git
                        # command (``orchestrator.git.seal``). Then what sandboxed CLIs of a
                        # run that died wrote, taken in before anything reads it.
                        seal.seal_repository(layout.root, layout.git_dir, layout.common_dir)
                        adopt_left_objects(layout, git)

                    sparse = bool(self.settings.sparse)
                    # ``.council/`` prepared, then (no sparse checkout to share first) the seal
                    # and the take-in, in that order: one worker-thread call, not three.
                    await layout.prepare(
                        self.settings.meta_lock_timeout, then=None if sparse else ready
                    )
                    meta = MetaLock(
                        layout.meta_lock_path, self.settings.meta_lock_timeout, layout.root
                    )
                    pool = WorktreePool(
                        git, layout.pool_dir, meta, self.settings.pool_size, self.settings.sparse
                    )
                    ws = Workspace(layout, git, meta, pool, self.settings, self.base_ref)
                    if sparse:
                        await share_worktree_config(ws)
                        await anyio.to_thread.run_sync(ready)
                    self._ws = ws
        return self._ws

    async def tamper_guard(self) -> TamperGuard:
        """The repository's check of what CLIs must not change
        (``orchestrator.worktrees.tamper``)."""
        if self._guard is None:
            ws = await self._workspace()
            layout, book = ws.layout, self._book
            self._guard = TamperGuard(
                ws.git,
                layout.git_dir,
                layout.common_dir,
                layout.worktrees_dir,
                ours=lambda: book.busy | book.known.keys(),
                # This clone's own base, even where new work forks from the remote's: the
                # remote-tracking ref is only a copy of the remote, fetched again before use.
                base_ref=f"refs/heads/{self.base_branch}",
                meta=ws.meta,
                sparse=bool(self.settings.sparse),
                kept=lambda: [s for sid, s in book.known.items() if sid not in book.busy],
            )
        return self._guard

    # --- a session's worktree --------------------------------------------------------------

    async def create_session_worktree(
        self,
        session_id: str,
        cli_name: str,
        task_id: str,
        *,
        at_least: int = 1,
        start: str | None = None,
        beside: Callable[[], None] | None = None,
    ) -> SessionWorktree:
        """A new worktree for ``session_id`` on branch ``council/<task>/<n>`` at the base tip
        (``n`` at least ``at_least``: in a team, the attempt's number, unique across clones),
        or at commit ``start`` (a stacked pull request's: the head below it, recorded).
        ``beside``: the caller's blocking work (it must not raise), done first in the call
        that forks the branch (one worker-thread call for both)."""
        root = (await self._workspace()).layout.root

        def sealed(made: SessionWorktree) -> None:  # in the call that marks it ready
            seal.expect_worktree(root, made.path)

        return await self._maker.create(
            session_id, cli_name, task_id, at_least, start, sealed, beside=beside
        )

    async def adopt_session_worktree(
        self, session_id: str, cli_name: str, task_id: str, branch: str
    ) -> SessionWorktree:
        """A worktree in this clone for a session another clone started: ``branch`` (fetched
        from the team's remote) checked out at this clone's path for ``session_id``, every
        commit on it kept."""
        ws = await self._workspace()
        merge_base = await ws.git.run("merge-base", ws.base_ref, f"refs/heads/{branch}")
        session = SessionWorktree(
            session_id=check_id(session_id, "session id"),
            cli=check_id(cli_name, "adapter name"),
            task_id=check_id(task_id, "task id"),
            path=ws.layout.session_path(session_id),
            branch=branch,
            base_commit=merge_base.out,
            created_at=utcnow(),
        )
        return await self._sealed(await self._maker.recreate(session))

    async def recreate_session_worktree(self, session: SessionWorktree | str) -> SessionWorktree:
        """Check a session's branch out again at its path, keeping every commit (after the
        directory was deleted by hand, say); returns the session unchanged if it is there."""
        return await self._sealed(await self._maker.recreate(session))

    async def sandbox_reach(self, session: SessionWorktree) -> GitReach:
        """What of the repository the session's CLI may reach under a sandbox
        (``orchestrator.worktrees.confine``)."""
        return await anyio.to_thread.run_sync(await self.sandbox_look(session))

    async def sandbox_look(self, session: SessionWorktree) -> Callable[[], GitReach]:
        """``sandbox_reach`` as a blocking look, for a ``PhaseCall.reach``: the runner makes it
        in the worker-thread call that builds the CLI's command (one hop for both)."""
        layout = (await self._workspace()).layout
        return partial(git_reach, layout, session.path, session.branch)

    async def _sealed(self, session: SessionWorktree) -> SessionWorktree:
        """``session`` with its ``.git`` file and admin pointers in the run's seal."""
        root = (await self._workspace()).layout.root
        await anyio.to_thread.run_sync(seal.expect_worktree, root, session.path)
        return session

    async def commit_in_worktree(
        self,
        session: SessionWorktree | str,
        message: str,
        *,
        diff: bool = False,
        parent: str | None = None,
    ) -> CommitResult:
        """Commit the files of the session's worktree on its branch, on ``parent`` (the
        commit the caller recorded before the CLI ran; None: the branch's tip), built by the
        orchestrator from the files alone (``own_commit``); ``committed=False`` if they are
        the parent's. With ``diff``, the commit's diff from its parent too
        (``CommitResult.diff``: what the work's facts can use instead of asking git again)."""
        return await self._work.commit(session, message, diff=diff, parent=parent)

    async def commit_then(
        self,
        session: SessionWorktree | str,
        message: str,
        then: Callable[[CommitResult], T],
        *,
        diff: bool = False,
        parent: str | None = None,
    ) -> tuple[CommitResult, T]:
        """``commit_in_worktree``, then ``then`` (blocking: it reads the commit just made, the
        work's facts) in the same worker-thread call; its answer beside the commit's."""
        return await self._work.commit_then(session, message, then, diff=diff, parent=parent)

    async def branch_holds(self, session: SessionWorktree, commit: str) -> bool:
        """The session's branch contains ``commit`` (False for a commit this clone lacks: a
        phase completed on another workstation whose work was never published)."""
        git = (await self._workspace()).git
        # One process: an unknown commit makes git exit 128, which is "no" here too.
        held = await git.run(
            "merge-base", "--is-ancestor", commit, f"refs/heads/{session.branch}", check=False
        )
        return held.returncode == 0

    async def rewind(self, session: SessionWorktree | str, commit: str, ref: str) -> Rewound:
        """Put the session back at ``commit``, keeping what was done since on ``ref``."""
        return await self._work.rewind(session, commit, ref)

    async def discard_uncommitted(self, session: SessionWorktree | str) -> list[str]:
        """Undo every uncommitted change in the session's worktree; the paths changed."""
        return await self._work.discard_uncommitted(session)

    async def get_session_stats(self, session: SessionWorktree | str) -> SessionStats:
        """The branch's committed diff against its merge-base with the base, and ``dirty``."""
        return await self._work.stats(session)

    async def remove_session_worktree(
        self,
        session: SessionWorktree | str,
        *,
        force: bool = False,
        also: Sequence[Deletion] = (),
        first: ReleaseFirst | None = None,
    ) -> RemovalResult:
        """Save the session's work, then remove (or pool) its worktree; see the module doc.

        ``force=True`` only skips the check for processes still running inside (whatever they
        write after the rescue commit is lost with the directory, and the worktree is not
        pooled); work is saved the same way, and a branch the base lacks is kept regardless.
        ``also``: other records of the session's end, deleted with the worktree's record once
        the worktree is gone (in the removal's own store call when it can be). ``first``: a
        claim's release made before anything else (in that call too, when it can be).
        """
        book = self._book
        found = await book.get(session)
        with book.making_or_removing(found.session_id):
            async with book.lock(found.session_id):
                removed = await book.retire(
                    found, force=force, pool_it=True, also=also, first=first
                )
        root = (await self._workspace()).layout.root
        seal.forget_worktree(root, found.path)
        return removed

    # --- finding and repair ----------------------------------------------------------------

    async def get_session(self, session: SessionWorktree | str) -> SessionWorktree:
        """The session's worktree, from memory, the store, or git's lock reason."""
        return await self._book.get(session)

    async def sessions(self) -> dict[str, SessionWorktree]:
        """Every session this manager or the store knows a worktree for."""
        return await self._book.all()

    async def list_worktrees(self) -> list[WorktreeInfo]:
        """Git's worktrees (ours marked, with their owners) plus recorded ones git lacks."""
        return await self._book.list_worktrees()

    async def reconcile(self, live_sessions: Collection[str] | None = None) -> ReconcileReport:
        """Repair after a crash: stale locks, vanished directories, dead sessions, the pool.

        Raises ``WorkspaceError`` when an ``index.lock`` is held by a running process.
        Sessions not in ``live_sessions`` (when given) are removed under the safety rules.
        """
        reconciler = Reconciler(await self._workspace(), skip=set(self._book.busy))
        return await reconciler.run(
            infos=await self.list_worktrees(),
            sessions=await self.sessions(),
            live=None if live_sessions is None else set(live_sessions),
            remove=self.remove_session_worktree,
        )

    async def adopt_orphans(
        self, *, claimed: Collection[str] = (), tasks: Collection[str] = ()
    ) -> list[Adoption]:
        """Take in the worktrees a run whose state is gone left (``orphans``): work committed
        on their branches, worktrees removed. Only while holding the repository's run lock."""
        return await adopt_orphans(
            self._book, await self._workspace(), claimed=claimed, tasks=tasks
        )

    async def present(self, session: SessionWorktree) -> bool:
        """The session's checkout is there (its `.git` file): False once it was deleted."""
        return await anyio.to_thread.run_sync((session.path / ".git").is_file)

    async def present_all(self, sessions: Sequence[SessionWorktree]) -> list[bool]:
        """``present`` for each of ``sessions``: a stat each (no file opened), on the event
        loop for a few (the reconcile's look each tick at the running sessions, no hop), in
        one worker-thread call for more."""
        paths = [session.path / ".git" for session in sessions]
        if len(paths) <= STATS_ON_LOOP:
            return [path.is_file() for path in paths]
        return await anyio.to_thread.run_sync(lambda: [path.is_file() for path in paths])
