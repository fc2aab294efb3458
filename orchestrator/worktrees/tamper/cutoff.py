"""The sessions' checkouts a CLI cut off from git, found and given back at every check.

A worktree of the orchestrator's (a running session's, or one kept for a retry or a human)
whose admin directory a CLI deleted (``.git/worktrees/<name>``) is given back to git at once,
on its branch (``worktrees.stranded``, under the metadata lock), before its edits are
committed or anything else touches it, at every check and before every session starts (then
the sessions running are the ones told). Who deleted it cannot be told from what is left,
but under a sandbox only its own session's CLI reaches that directory (``Finding.within``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from orchestrator.errors import WorkspaceError
from orchestrator.git.gitfile import read_gitfile
from orchestrator.git.repo import Git
from orchestrator.worktrees.layout import MetaLock
from orchestrator.worktrees.models import SessionWorktree
from orchestrator.worktrees.names import lock_reason
from orchestrator.worktrees.stranded import READY, restore_admin_sync, stranded_admin
from orchestrator.worktrees.tamper.blame import Finding, Ledger

__all__ = ["CutOff", "Owner", "admin_of"]

# A kept worktree's branch (a ref), lock reason and ready mark, as a stranded one is restored.
Owner = tuple[str | None, str | None, str | None]
T = TypeVar("T")


class CutOff:
    """The repository's kept worktrees, checked for an admin directory a CLI deleted."""

    def __init__(
        self,
        git: Git,
        common_dir: Path,
        ledger: Ledger,
        show: Callable[[Path], str],
        meta: MetaLock | None = None,
        sparse: bool = False,
        kept: Callable[[], Collection[SessionWorktree]] = tuple,
    ) -> None:
        self.git = git
        self.common_dir = common_dir
        self._ledger = ledger
        self._show = show
        self._meta = meta  # held while a stranded worktree's admin directory is recreated
        self._sparse = sparse
        # The sessions whose worktrees the orchestrator keeps (running or not), but those it
        # is making or removing right now: a CLI must not cut any of them off from git.
        self._kept = kept

    def owners(self) -> dict[Path, Owner]:
        """The worktrees whose checkouts must stay git's, each with its branch (a ref), lock
        reason and ready mark: every one the orchestrator keeps, as it was at its session's
        watch when one runs in it."""
        owners: dict[Path, Owner] = {}
        for session in self._kept():
            reason = lock_reason(session.session_id, session.cli, session.task_id)
            owners[session.path] = (f"refs/heads/{session.branch}", reason, session.session_id)
        for window in self._ledger.live():  # as they were at its watch, when known
            if window.looked:
                owners[window.worktree] = (window.own, window.lock, window.ready)
        return owners

    def cut(self, owners: dict[Path, Owner]) -> list[Path]:
        """Those of ``owners`` a CLI cut off from git (blocking)."""
        return [path for path in owners if stranded_admin(path, self.common_dir) is not None]

    def cut_then(
        self, owners: dict[Path, Owner], then: Callable[[], T]
    ) -> tuple[list[Path], T | None]:
        """``cut``, and ``then()`` when nothing was cut (blocking: one worker-thread call)."""
        cut = self.cut(owners)
        return cut, None if cut else then()

    async def restore(self, cut: list[Path], owners: dict[Path, Owner]) -> list[Finding]:
        """Recreate the admin directory of every session's worktree a CLI deleted
        (``worktrees.stranded``): who did it cannot be told from what is left, but only its
        own session's CLI reaches that directory under a sandbox (``within``)."""
        found = []
        live = {w.worktree: w.serial for w in self._ledger.live() if w.looked}
        for path in cut:
            own, lock, ready = owners[path]
            what = f"{self._show(path)}: its git admin directory was deleted"
            within = frozenset({live[path]}) if path in live else frozenset()
            if own is None:
                found.append(
                    Finding(f"{what} (not restored: its branch is not known)", within=within)
                )
                continue
            branch = own.removeprefix("refs/heads/")
            try:
                if self._meta is None:
                    done = await anyio.to_thread.run_sync(
                        self._restore_admin, path, branch, lock, ready
                    )
                else:
                    async with self._meta.hold():
                        done = await anyio.to_thread.run_sync(
                            self._restore_admin, path, branch, lock, ready
                        )
            except WorkspaceError as exc:
                done = f"could not be restored: {exc}"
            if done is not None:
                found.append(Finding(f"{what} ({done})", within=within))
        return found

    def _restore_admin(
        self, worktree: Path, branch: str, lock: str | None, ready: str | None
    ) -> str | None:
        if stranded_admin(worktree, self.common_dir) is None:
            return None  # restored meanwhile, by another session's check
        return restore_admin_sync(
            self.git,
            self.common_dir,
            worktree,
            branch,
            lock_reason=lock,
            ready=ready,
            sparse=self._sparse,
        )


def admin_of(worktree: Path) -> tuple[Path | None, str | None, str | None]:
    """A worktree's admin directory, its lock reason and its ready mark (blocking)."""
    admin = read_gitfile(worktree)
    if admin is None:
        return None, None, None
    return admin, _text(admin / "locked"), _text(admin / READY)


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
