"""The checkout that has the base branch checked out, and fast-forwarding it only when clean.

A merge normally moves the base ref with a compare-and-swap and touches no files. When the
base is checked out in a worktree (the user's main checkout or a linked one), moving the ref
alone would leave that checkout's index and files describing the old commit, so the user
would see the merge as reversed, uncommitted changes. There the queue instead:

- refuses (``waiting_for_checkout``) while the checkout has staged or unstaged changes to
  tracked files, a merge/cherry-pick/revert in progress, or a rebase of the base under way;
- otherwise fast-forwards it with ``git merge --ff-only`` run *in* that checkout, which moves
  the ref, the index and the files together, refuses to overwrite local changes or untracked
  files (``--no-overwrite-ignore``: ignored ones too), and only moves HEAD if it is still the
  commit it read.

Untracked files do not make a checkout "dirty": the fast-forward refuses by itself to
overwrite one, and the merge then waits naming it. Ignoring them avoids stalling every merge
on a stray notes file the merge never touches.

Finding the owner costs no git process on the hot path: each merge reads the ``HEAD`` (and
rebase ``head-name``) files of the repository's worktree admin directories, a few small
reads, and only when the set of admin directories holding the base changes is
``git worktree list`` run again to map them to checkouts.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.merge_tree import GitCalls

__all__ = ["Blocked", "Checkout", "CheckoutFinder", "blocked", "checkout_lock", "fast_forward"]

_IN_PROGRESS = {
    "MERGE_HEAD": "a merge",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase or git am",
}
_MAX_LISTED = 20
# --no-optional-locks: looking must not rewrite the user's index (status refreshes it).
_STATUS = ("--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=no")
# The user's merge config must not change what a fast-forward does: no signature policy, no
# autostash, no background gc, no silently replaced ignored files.
_FAST_FORWARD = (
    *("-c", "gc.auto=0", "-c", "maintenance.auto=false", "merge", "--ff-only", "--quiet"),
    *("--no-stat", "--no-verify-signatures", "--no-autostash", "--no-overwrite-ignore"),
)


@dataclass(frozen=True)
class Checkout:
    """A worktree holding the base: its directory and its own git (admin) directory."""

    path: Path
    admin: Path
    rebasing: bool = False


@dataclass(frozen=True)
class Blocked:
    """Why a checkout cannot be fast-forwarded now, and what exactly is in the way."""

    message: str
    details: list[str] = field(default_factory=list)


class CheckoutFinder:
    def __init__(self, base_ref: str) -> None:
        self.base_ref = base_ref
        self._common: Path | None = None
        self._holders: frozenset[tuple[Path, bool]] | None = None
        self._owners: list[Checkout] = []
        self._lock = threading.Lock()

    def owners(self, calls: GitCalls) -> list[Checkout]:
        """The checkouts holding the base branch now (normally none or one)."""
        with self._lock:
            if self._common is None:
                out = calls.run("rev-parse", "--path-format=absolute", "--git-common-dir").out
                self._common = Path(out)
            holders = self._scan(self._common)
            if holders != self._holders:
                self._owners = self._resolve(calls, self._common, holders)
                self._holders = holders
            return self._owners

    def still_holds(self, checkout: Checkout) -> bool:
        """Re-read the checkout's HEAD right before touching it (the user may have switched)."""
        return _read(checkout.admin / "HEAD") == f"ref: {self.base_ref}"

    def _scan(self, common: Path) -> frozenset[tuple[Path, bool]]:
        admins = [common]
        try:
            with os.scandir(common / "worktrees") as entries:
                admins += [Path(e.path) for e in entries if e.is_dir()]
        except FileNotFoundError:
            pass
        held: set[tuple[Path, bool]] = set()
        for admin in admins:
            if _read(admin / "HEAD") == f"ref: {self.base_ref}":
                held.add((admin, False))
            elif any(
                _read(admin / d / "head-name") == self.base_ref
                for d in ("rebase-merge", "rebase-apply")
            ):
                held.add((admin, True))
        return frozenset(held)

    def _resolve(
        self, calls: GitCalls, common: Path, holders: frozenset[tuple[Path, bool]]
    ) -> list[Checkout]:
        if not holders:
            return []
        # The main worktree is always listed first; a bare repository has none.
        first = calls.run("worktree", "list", "--porcelain").stdout.split("\n\n", 1)[0]
        lines = first.splitlines()
        main = None if "bare" in lines else Path(lines[0].removeprefix("worktree "))
        found: list[Checkout] = []
        for admin, rebasing in sorted(holders):
            if admin == common:
                if main is None:
                    continue
                path = main
            else:
                # ``gitdir`` names <checkout>/.git (absolute, or relative to the admin dir); an
                # admin dir without it is a broken worktree, reported as gone, never guessed.
                gitdir = _read(admin / "gitdir")
                path = (admin / gitdir).parent if gitdir else admin / "missing-checkout"
            found.append(Checkout(path, admin, rebasing))
        return found


def blocked(calls: GitCalls, checkout: Checkout, base_branch: str) -> Blocked | None:
    """Why ``checkout`` must not be fast-forwarded now, or None when it is clean."""
    where = f"base branch {base_branch!r} is checked out in {checkout.path}"
    if not checkout.path.is_dir():
        return Blocked(f"{where}, which no longer exists; run `git worktree prune` there")
    if checkout.rebasing:
        return Blocked(f"a rebase of {base_branch!r} is in progress in {checkout.path}")
    for name, what in _IN_PROGRESS.items():
        if (checkout.admin / name).exists():
            return Blocked(f"{where} with {what} in progress; finish or abort it there")
    out = calls.run(*_STATUS, cwd=checkout.path).stdout
    dirty = _status_paths(out)
    if dirty:
        return Blocked(
            f"{where} with uncommitted changes ({len(dirty)} path(s)); commit or stash them "
            "there and merge again",
            dirty[:_MAX_LISTED],
        )
    return None


def fast_forward(calls: GitCalls, checkout: Checkout, commit: str) -> str | None:
    """Fast-forward the checkout (ref, index and files) to ``commit``; git's refusal, or None."""
    with checkout_lock(checkout.path):
        result = calls.run(*_FAST_FORWARD, commit, cwd=checkout.path, check=False)
    return None if result.ok else (result.stderr.strip() or result.stdout.strip() or "refused")


_checkout_locks: dict[str, threading.Lock] = {}
_checkout_locks_guard = threading.Lock()


def checkout_lock(path: Path) -> threading.Lock:
    """The lock held while a fast-forward changes the checkout at ``path`` (one per path, in
    this process): whoever must not see its files half moved (the tamper check's
    ``git status``, ``orchestrator.tamper``) takes it too. A threading lock, since both sides
    run git in worker threads."""
    key = os.path.realpath(path)
    with _checkout_locks_guard:
        return _checkout_locks.setdefault(key, threading.Lock())


def _status_paths(porcelain_z: str) -> list[str]:
    fields = porcelain_z.split("\0")
    paths: list[str] = []
    index = 0
    while index < len(fields):
        entry = fields[index]
        index += 1
        if len(entry) < 4:
            continue
        paths.append(f"{entry[:2]} {entry[3:]}")
        if entry[0] in "RC":
            index += 1  # a rename or copy is followed by its source path
    return paths


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
