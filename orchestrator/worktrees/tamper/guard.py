"""What a CLI must not change outside its worktree: looked at before its session, checked after.

A CLI runs in its own worktree, but nothing stops it from writing elsewhere. ``TamperGuard``
(one per repository, ``WorktreeManager.tamper_guard``) takes a ``Watch`` before every CLI
session and ``finish(watch)`` compares after it. Each change found is blamed on the sessions
whose name or reach it carries (``blame``: a sandboxed session is suspected only of what its
sandbox reaches, a ref in a task's namespace only of that task's sessions and the unconfined
ones): a change traced to the session checked, or made while it was the only suspect, is a
``Tampering`` that fails the attempt with its message, not retryable, so the work does not
land (the branch and worktree are kept); one traced to another running session is handed to
that session's own check, and the checked one is not blamed; one that cannot be traced among
several suspects is a retryable ``Tampering`` for each of them (rechecked: the phase runs
again), so no innocent session fails for good; one no session could have made (all of them
sandboxed, none reaching it) is undone and said, and blames nobody.

What is watched, and why these (each is cheap, and only the CLI should be writing there):

- **git's shared setup**, byte for byte (``setup``): the common ``config``, the main
  checkout's and the session's own ``config.worktree``, ``hooks/`` and ``info/``, which decide
  what *every* later git command runs. The orchestrator's own git already ignores hooks
  (``orchestrator.git.repo`` points ``core.hooksPath`` at an empty directory), but not
  filters, and the user's git honours all of it. So a change found here is also **undone**
  before any other git command of the orchestrator runs. A session's own ``config.worktree``
  is traced to it; the rest is everyone's, so every other session running then is told at its
  own check (``blame``: the compare alone would no longer show it). The orchestrator's own
  one change there, ``extensions.worktreeConfig`` for sparse worktrees, is made before any
  session (``worktree_ops.share_worktree_config``).
- **the sessions' checkouts cut off from git** (``cutoff``): a kept worktree whose admin
  directory a CLI deleted is given back to git at once, on its branch, at every check and
  before every session starts; who deleted it cannot be told.
- **the shared refs and the base's checkouts** (``refs``, when the guard is given the
  base ref): the base, every session's branch but those of the sessions running (their CLIs'
  to move: a commit of aider's is its session's work), and the rescue refs
  under ``refs/council/``, compared by value and followed through the orchestrator's own
  writes (``ref_book``); a change nobody noted is undone (the moved-to commit kept under
  ``refs/council/tampered/``), and a linked worktree that took the base branch is detached,
  its uncommitted work committed and kept, so no merge waits for it and no cleanup commits
  onto the base. Such a checkout is traced to the session whose worktree it is (its admin
  directory), and so is a base moved meanwhile; one added elsewhere cannot be traced. A
  branch made in a task's namespace (``refs/heads/council/<task>/``) is moved aside the
  same way, and is that task's sessions' doing.
- **a task's reflogs** (``reflogs``): the session's task's reflog directory, which its
  sandboxed CLI reaches beside its own branch: a reflog of no ref removed, lines added since
  the watch that are no reflog line or name a missing commit dropped (``git fsck`` reads every
  reflog).
- **the main checkout**, as ``git status`` lists it (``checkout``): a file created, changed
  or deleted there. Reported only: the user's checkout is never modified, and never looked at
  while the merge queue fast-forwards it.
- **``.council/worktrees/``**: a new entry that is not a worktree (a CLI writing ``../x``).

Limits, on purpose: files ignored by git in the main checkout (``node_modules/``, ``.council/``
itself, so the orchestrator's own state too), other sessions' worktrees (their own CLIs write
there at the same time, and a ``git status`` of each would cost a process per worktree),
submodules' git dirs (``modules/``), and anything outside the repository (the CLI's HOME is
private, so its ``git config --global`` lands there; the rest of the disk takes a sandbox) are
not watched. A change made and reverted within one session is not seen, nor what another
session's git commands ran between a CLI's change and its session's end. Tracing goes by
where a change lands, not by which process wrote it: a CLI that switches *another* session's
worktree to the base, or writes its ``config.worktree``, gets that session blocked (a
sandbox, where the machine has one, keeps a CLI out of other worktrees altogether). A
change nobody can be traced to, a *human* editing the main checkout included, rechecks every
session that ran then, a retry each (bounded by ``retry.max_retries``). Two orchestrators on
one repository do not share their sessions' windows.

Cost per session: a few small file reads, two ``git for-each-ref`` and two ``git status`` of
the main checkout (one before, one after; sessions starting or ending together share one),
about 20 ms on a small repository; ``git status`` grows with the checkout, as it does for the user.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from orchestrator.git import seal
from orchestrator.git.ref_files import read_refs
from orchestrator.git.repo import Git
from orchestrator.worktrees.commits import head_branch
from orchestrator.worktrees.layout import MetaLock
from orchestrator.worktrees.models import SessionWorktree
from orchestrator.worktrees.tamper import reflogs
from orchestrator.worktrees.tamper.blame import NAMESPACE, Finding, Ledger, Window, namespace_of
from orchestrator.worktrees.tamper.checkout import MainStatus, checkout_changes
from orchestrator.worktrees.tamper.cutoff import CutOff, Owner, admin_of
from orchestrator.worktrees.tamper.files import FileState
from orchestrator.worktrees.tamper.refs import SharedRefs
from orchestrator.worktrees.tamper.setup import setup_files, undo_setup
from orchestrator.worktrees.tamper.watch import FinishLook, Snapshot, Tampering, Watch

__all__ = ["RECHECKED", "Arming", "Finishing", "TamperGuard", "Tampering", "Watch"]

RECHECKED = "rechecked"  # the outcome kind of an attempt a retryable ``Tampering`` ended

log = logging.getLogger(__name__)


class TamperGuard:
    """The repository's watcher: ``watch(worktree)`` before a session, ``finish`` after."""

    def __init__(
        self,
        git: Git,
        git_dir: Path,
        common_dir: Path,
        worktrees_dir: Path,
        ours: Callable[[], Collection[str]] = frozenset,
        base_ref: str | None = None,
        meta: MetaLock | None = None,
        sparse: bool = False,
        kept: Callable[[], Collection[SessionWorktree]] = tuple,
    ) -> None:
        self.git = git  # runs in the main checkout
        self.root = git.cwd
        self.git_dir = git_dir
        self.common_dir = common_dir
        self.worktrees_dir = worktrees_dir
        # The worktrees the orchestrator made or is making: never a CLI's doing, however
        # slowly git gets to writing their .git on a loaded machine.
        self._ours = ours
        self._refs = SharedRefs(git, common_dir, base_ref) if base_ref else None
        self._ledger = Ledger()
        # The worktrees it keeps (``kept``: running or not, but those it is making or removing
        # right now), checked for an admin directory a CLI deleted, given back under ``meta``.
        self._cutoff = CutOff(git, common_dir, self._ledger, self._show, meta, sparse, kept)
        self._status = MainStatus(git)
        self._sealed_seen: set[tuple[float, Path]] = set()  # the seal's restores judged already
        self._cli_from: dict[int, float] = {}  # when each running session's watch was done
        self._watches: dict[int, Watch] = {}  # the sessions running, by serial
        self._serials = itertools.count(1)

    async def watch(
        self, worktree: Path, branch: str | None = None, *, confined: bool = False
    ) -> Watch:
        """Look before a session in ``worktree``, on its own ``branch`` (short name; read from
        the worktree when not given). ``confined``: the kernel keeps its CLI inside its reach
        (a sandbox: its worktree, admin directory, object store, its task's ref directory), so
        it is suspected of nothing outside it (``blame``), and the main checkout's status is
        not read before and after this CLI (other sessions' windows still read it for
        theirs). ``arming`` in three steps, its look in a worker-thread call of its own."""
        arming = self.arming(worktree, branch, confined=confined)
        try:
            looked = await anyio.to_thread.run_sync(arming.look)
        except BaseException:
            arming.abandon()
            raise
        return await arming.armed(looked)

    def arming(
        self, worktree: Path, branch: str | None = None, *, confined: bool = False
    ) -> Arming:
        """``watch`` begun: the session's window opened (on the event loop); its blocking
        look (``Arming.look``) is the caller's to run in a worker-thread call (with other
        blocking work before its CLI starts), then ``Arming.armed`` gives the ``Watch``; or
        ``Arming.abandon`` when the CLI is not started after all."""
        started = time.monotonic()
        serial = next(self._serials)
        own = f"refs/heads/{branch}" if branch else head_branch(worktree)
        # A checkout cut off from git since the last check is given back before this session
        # starts; the sessions running now are the ones that could have done it. One
        # worker-thread call looks for them and, when there is none (the usual case), reads
        # this worktree's admin directory and takes the snapshot too.
        owners = self._cutoff.owners()
        window = Window(serial, worktree, None, own, None, None, started, confined=confined)
        # Open before the snapshot: a check ending meanwhile counts this session among those
        # that ran beside it. Its admin directory is filled in by the call that reads it
        # (until then ``looked`` is False, and no other check takes its lock or mark).
        self._ledger.open(window)
        return Arming(self, window, owners)

    async def _armed(self, arming: Arming, looked: tuple[list[Path], Snapshot | None]) -> Watch:
        window, owners = arming.window, arming.owners
        worktree, confined = window.worktree, window.confined
        try:
            cut, snapshot = looked
            if snapshot is None:  # a checkout was given back: this window has not looked
                # yet, so nothing found here is its doing (``Ledger.notice``)
                found = await self._cutoff.restore(cut, owners)
                for finding in found:
                    log.warning("before a session in %s: %s", self._show(worktree), finding.what)
                for line in self._ledger.notice(found):
                    log.warning("before a session in %s: %s", self._show(worktree), line)
                snapshot = await anyio.to_thread.run_sync(self._look_then_snapshot, window)
            files, entries, refs, logs = snapshot
            listed = None if confined else await self._status.read()
        except BaseException:
            self._ledger.close(window)
            raise
        serial = window.serial
        watch = Watch(
            serial,
            worktree,
            window.started,
            files,
            listed,
            entries,
            refs,
            window.own,
            window,
            confined,
            logs,
        )
        self._watches[serial] = watch
        self._cli_from[serial] = time.monotonic()  # its CLI starts after this
        return watch

    async def finish(self, watch: Watch) -> Tampering | None:
        """Compare with ``watch``, undo what can be, and say what of it is this session's
        (``tamper.blame``); ``None`` when nothing is. ``finishing`` in three steps, its look
        in a worker-thread call of its own."""
        finishing = self.finishing(watch)
        try:
            looked = await anyio.to_thread.run_sync(finishing.look)
        except BaseException:
            finishing.abandon()
            raise
        return await finishing.judged(looked)

    def finishing(self, watch: Watch) -> Finishing:
        """``finish`` begun, once the session's CLI is gone: its blocking look
        (``Finishing.look``: git's setup put back, the checkouts cut off, and for a confined
        session the refs and entries) is the caller's to run in a worker-thread call (with
        other blocking work after the CLI), then ``Finishing.judged`` says what it found; or
        ``Finishing.abandon`` when that call failed."""
        self._watches.pop(watch.serial, None)
        others = list(self._watches.values())
        self._cli_from.pop(watch.serial, None)
        # Git's setup first, undone before any git command runs (a planted filter would):
        # what the run's seal holds, as the run sealed it (``_sealed`` says what it did),
        # then the rest of it as this session's watch saw it.
        # Then the sessions' checkouts a CLI cut off from git, given back before anything
        # else touches them. The three looks in one worker-thread call.
        return Finishing(self, watch, others, self._cutoff.owners())

    def _setup_then_cut(
        self, watch: Watch, others: list[Watch], kept: dict[Path, Owner]
    ) -> FinishLook:
        seal.check(watch.worktree)
        undone = self._undo_setup(watch, others)
        cut = self._cutoff.cut(kept)
        if cut or not watch.confined:
            return undone, cut, None
        # Nothing cut and no status to read between (a confined session): the refs and
        # entries in the same worker-thread call, the windows read here as the event loop
        # would read them now (``Ledger.overlapping``).
        return undone, cut, self._refs_then_entries(watch, *self._overlap(watch.window))

    async def _judged(self, finishing: Finishing, looked: FinishLook) -> Tampering | None:
        watch, kept = finishing.watch, finishing.kept
        window = watch.window
        try:
            found, cut, seen = looked
            found += await self._cutoff.restore(cut, kept)
            # Then the base's checkouts (before the refs: a base put back under a checkout
            # still holding it would turn its files into reversed changes), then the refs.
            if seen is not None:
                refs_found, moved = seen
                found += refs_found
            elif watch.confined:  # no status between the two looks: one worker-thread call
                refs_found, moved = await anyio.to_thread.run_sync(
                    self._refs_then_entries, watch, *self._overlap(window)
                )
                found += refs_found
            else:
                owners, admins = self._overlap(window)
                found += await anyio.to_thread.run_sync(self._undo_refs, watch, owners, admins)
                listed = await self._status.read()
                moved = checkout_changes(watch.listed, listed)
                moved += await anyio.to_thread.run_sync(self._new_entries, watch.entries)
            found += [Finding(what, undone=False) for what in moved]
            found += self._sealed(window)
        except BaseException:
            self._ledger.close(window)
            raise
        verdict = self._ledger.judge(window, found)
        for line in verdict.noted:
            log.warning("after a session in %s: %s", self._show(watch.worktree), line)
        if not verdict.blocked and not verdict.rechecked:
            return None
        return Tampering(verdict.blocked + verdict.rechecked, retryable=not verdict.blocked)

    def _look_then_snapshot(self, window: Window) -> Snapshot:
        """Read the window's admin directory into it (its lock reason and ready mark first:
        a reader that sees the directory sees them), then take its session's snapshot
        (blocking)."""
        admin, lock, ready = admin_of(window.worktree)
        window.lock, window.ready = lock, ready
        window.admin = admin
        window.looked = True  # last: a reader that sees it sees the three above
        return self._snapshot(window.worktree, window.task)

    def _sealed(self, window: Window) -> list[Finding]:
        """What the run's seal put back before a git command (``orchestrator.git.seal``) since
        ``window`` opened, each judged once: a worktree's own ``.git`` file or admin pointers
        are that session's doing; the shared setup is nobody's in particular, but not of a
        session whose CLI had not started when it was put back."""
        found = []
        live = self._ledger.live()
        for entry in seal.restored_since(window.started):
            key = (entry.when, entry.path)
            if key in self._sealed_seen:
                continue
            self._sealed_seen.add(key)
            owner = next((w for w in live if w.worktree == entry.worktree), None)
            if entry.worktree is not None and entry.worktree == window.worktree:
                owner = window
            # A session whose CLI had not started yet when it was put back did not do it.
            later = frozenset(
                w.serial for w in live if self._cli_from.get(w.serial, math.inf) > entry.when
            )
            traced = owner.serial if owner is not None else None
            what = f"{entry.what} (by the run's seal, before a git command)"
            found.append(Finding(what, traced, cleared=later))
        # Only a window open now can still ask for an entry: forget those older than them all.
        oldest = min((w.started for w in live), default=window.started)
        self._sealed_seen = {key for key in self._sealed_seen if key[0] >= oldest}
        return found

    # --- the pieces; all but git status run in a worker thread ---------------------------

    def _snapshot(self, worktree: Path, task: str | None) -> Snapshot:
        """A watch's looks in one worker-thread call: git's setup, ``.council/worktrees/``'s
        entries, the shared refs (None: the guard watches none), then the reflogs of the
        session's task (``reflogs``)."""
        files = {path: FileState.read(path) for path in self._files(worktree)}
        entries = self._entries()
        refs = self._refs.snapshot() if self._refs is not None else None
        logs = reflogs.read(self.common_dir, task) if task is not None else {}
        return files, entries, refs, logs

    def _files(self, worktree: Path) -> set[Path]:
        return setup_files(self.common_dir, self.git_dir, worktree)

    def _undo_setup(self, watch: Watch, others: list[Watch]) -> list[Finding]:
        """Git's setup put back as ``watch`` saw it (``setup.undo_setup``); the snapshots of
        the sessions running beside it (``others``) that saw the change set to what was put
        back."""
        own = None if watch.window.admin is None else watch.window.admin / "config.worktree"
        beside = {other.serial: other.files for other in others}
        paths = self._files(watch.worktree)
        return undo_setup(
            self.common_dir, paths, watch.files, own, watch.serial, beside, _stamp(), self._show
        )

    def _overlap(self, window: Window) -> tuple[dict[str, int], list[tuple[Path, int]]]:
        """The own branches and admin directories of the sessions whose windows overlap
        ``window``: theirs to move and to hold a checkout of the base (any thread)."""
        overlapping = self._ledger.overlapping(window)
        owners = {w.own: w.serial for w in overlapping if w.own}
        admins = [(w.admin, w.serial) for w in overlapping if w.admin is not None]
        return owners, admins

    def _refs_then_entries(
        self, watch: Watch, owners: dict[str, int], admins: list[tuple[Path, int]]
    ) -> tuple[list[Finding], list[str]]:
        """``_undo_refs`` then ``_new_entries`` (blocking), for a confined session's check."""
        found = self._undo_refs(watch, owners, admins)
        return found, self._new_entries(watch.entries)

    def _undo_refs(
        self, watch: Watch, owners: dict[str, int], admins: list[tuple[Path, int]]
    ) -> list[Finding]:
        """The base's checkouts released and the refs put back (``refs``), each traced where
        it can be: a checkout of the base to the session whose worktree it is (its admin
        directory, ``admins``: each overlapping session's), the base moved meanwhile to that
        same session. The admin directories are resolved only when a checkout is released
        (rarely), and here, off the event loop: resolving one looks at every directory on the
        way."""
        if self._refs is None or watch.refs is None:
            return []
        stamp = _stamp()
        found = []
        holders = set()
        real: dict[Path, int] | None = None
        for admin, what in self._refs.release_base(watch.refs, stamp):
            if real is None:
                real = {_real(path): serial for path, serial in admins}
            traced = real.get(_real(admin))
            holders.add(traced)
            found.append(Finding(what, traced))
        base_by = holders.pop() if len(holders) == 1 else None
        # Each task's ref directory is in the reach of its sessions' CLIs (``blame``).
        tasks: dict[str, set[int]] = {}
        for own, serial in owners.items():
            task = namespace_of(own)
            if task is not None:
                tasks.setdefault(task, set()).add(serial)
        for ref, what in self._refs.check(watch.refs, owners.keys(), stamp):
            # A ref in a task's namespace (a branch its CLI made beside its own, its own
            # deleted): that task's sessions' doing, or an unconfined one's. The base moved
            # meanwhile: the session that held it checked out.
            task = namespace_of(ref)
            within = frozenset(tasks.get(task, ())) if task is not None else frozenset()
            traced = base_by if ref == self._refs.base_ref else None
            found.append(Finding(what, traced, within=within))
        task = watch.window.task
        if task is not None:  # its task's reflogs: in its reach, read by every ``git fsck``
            present = self._namespace_refs(task)
            within = frozenset(tasks.get(task, ()))
            for _ref, what in reflogs.check(self.git, self.common_dir, task, watch.logs, present):
                found.append(Finding(what, within=within))
        return found

    def _namespace_refs(self, task: str) -> set[str]:
        """The refs in ``task``'s namespace now (from git's ref files, else one git process)."""
        prefix = f"{NAMESPACE}{task}"
        found = read_refs(self.common_dir, (prefix,))
        if found is not None:
            return set(found)
        listed = self.git.run_sync("for-each-ref", "--format=%(refname)", prefix, check=False)
        return set(listed.out.split())

    def _entries(self) -> frozenset[str]:
        try:
            return frozenset(os.listdir(self.worktrees_dir))
        except OSError:
            return frozenset()

    def _new_entries(self, before: frozenset[str]) -> list[str]:
        found = []
        for name in sorted(self._entries() - before - set(self._ours())):
            path = self.worktrees_dir / name
            # A worktree the orchestrator is adding right now gets its .git within
            # milliseconds; anything else a CLI wrote there (``../x``) never does.
            if os.path.isdir(path) and not os.path.lexists(path / ".git"):
                time.sleep(0.5)
            if not os.path.isfile(path / ".git"):
                found.append(f"{self._show(path)}: created")
        return found

    def _show(self, path: Path) -> str:
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


@dataclass
class Arming:
    """A session's watch begun (``TamperGuard.arming``): ``look`` (blocking, once, in a
    worker-thread call, before the session's CLI starts), then ``armed``; or ``abandon``."""

    guard: TamperGuard
    window: Window
    owners: dict[Path, Owner]

    def look(self) -> tuple[list[Path], Snapshot | None]:
        """The checkouts cut off from git, and when there is none, the session's snapshot."""
        guard, window = self.guard, self.window
        return guard._cutoff.cut_then(self.owners, lambda: guard._look_then_snapshot(window))

    async def armed(self, looked: tuple[list[Path], Snapshot | None]) -> Watch:
        """The ``Watch`` from what ``look`` gave (a worker-thread call more only when a
        checkout was given back, or for the main checkout's status of an unconfined one)."""
        return await self.guard._armed(self, looked)

    def abandon(self) -> None:
        """The session's CLI is not started: its window closes."""
        self.guard._ledger.close(self.window)


@dataclass
class Finishing:
    """A session's check begun after its CLI (``TamperGuard.finishing``): ``look`` (blocking,
    once, in a worker-thread call), then ``judged``; or ``abandon`` when that call failed."""

    guard: TamperGuard
    watch: Watch
    others: list[Watch]
    kept: dict[Path, Owner]

    def look(self) -> FinishLook:
        return self.guard._setup_then_cut(self.watch, self.others, self.kept)

    async def judged(self, looked: FinishLook) -> Tampering | None:
        """What of it is the session's (``None``: nothing), undoing what can be."""
        return await self.guard._judged(self, looked)

    def abandon(self) -> None:
        self.guard._ledger.close(self.watch.window)
