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

The ref move is the commit point. Git writes the index and the files first and moves the ref
last, so a ref it cannot lock (a ``<ref>.lock`` or ``HEAD.lock`` that appeared after the queue
looked for them, ``merge.git_locks``) leaves the merge staged with the ref unmoved. The
checkout then follows only a moved ref: ``fast_forward`` puts such a half-done fast-forward
back exactly (``git read-tree -m -u <new> <old>``, the same two-tree step in reverse, which
refuses to overwrite anything that changed meanwhile) before it reports git's refusal. A
checkout found holding exactly the tree about to land, staged and checked out with the ref
behind (what a fast-forward killed between its index and its ref leaves), is not the user's
work: ``inspect_checkout`` calls it ``cut_short`` and the fast-forward finishes it.

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

from orchestrator.errors import WorkspaceError
from orchestrator.git import ref_book
from orchestrator.git.merge_tree import GitCalls

__all__ = [
    "Blocked",
    "Checkout",
    "CheckoutFinder",
    "Ready",
    "checkout_lock",
    "fast_forward",
    "inspect_checkout",
]

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


@dataclass(frozen=True)
class Ready:
    """The checkout may be fast-forwarded: it is clean, or ``cut_short`` (it already holds the
    tree about to land, staged, with the ref behind)."""

    cut_short: bool = False


class CheckoutFinder:
    def __init__(self, base_ref: str) -> None:
        self.base_ref = base_ref
        self._common: Path | None = None
        self._holders: frozenset[tuple[Path, bool]] | None = None
        self._owners: list[Checkout] = []
        self._lock = threading.Lock()

    def owners(self, calls: GitCalls) -> list[Checkout]:
        """The checkouts holding the base branch now (normally none or one)."""
        common = self.common_dir(calls)
        with self._lock:
            holders = self._scan(common)
            if holders != self._holders:
                self._owners = self._resolve(calls, common, holders)
                self._holders = holders
            return self._owners

    def common_dir(self, calls: GitCalls) -> Path:
        """The repository's common git directory (asked once)."""
        with self._lock:
            if self._common is None:
                out = calls.run("rev-parse", "--path-format=absolute", "--git-common-dir").out
                self._common = Path(out)
            return self._common

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


def inspect_checkout(
    calls: GitCalls, checkout: Checkout, base_branch: str, tree: str
) -> Blocked | Ready:
    """Whether ``checkout`` may be fast-forwarded to a commit of ``tree`` now, and if not why."""
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
    if not dirty:
        return Ready()
    if _holds_tree(calls, checkout, dirty, tree):
        return Ready(cut_short=True)
    names = [entry[3:] for entry in dirty]
    more = f" and {len(names) - 1} more" if len(names) > 1 else ""
    return Blocked(
        f"{where} with uncommitted changes to {names[0]}{more}; commit or stash them there",
        dirty[:_MAX_LISTED],
    )


def _holds_tree(calls: GitCalls, checkout: Checkout, dirty: list[str], tree: str) -> bool:
    """Every change is staged (the files match the index) and the index is exactly ``tree``."""
    return all(entry[1] == " " for entry in dirty) and _index_is(calls, checkout, tree)


def _index_is(calls: GitCalls, checkout: Checkout, tree: str) -> bool:
    """The checkout's index holds exactly ``tree`` (a commit's tree, or a tree)."""
    args = ("diff-index", "--cached", "--quiet", tree, "--")
    return calls.run(*args, cwd=checkout.path, check=False).returncode == 0


def fast_forward(
    calls: GitCalls, checkout: Checkout, ref: str, old: str, new: str, *, clean: bool
) -> str | None:
    """Fast-forward the checkout (ref, index and files) from ``old`` to ``new``; git's refusal,
    or None. A refusal that came after git had updated the index and files (``clean``: they
    were at ``old`` before) puts them back first, so the checkout follows only a moved ref.
    The move of ``ref`` is noted in ``ref_book`` with it, for the tamper check."""
    with checkout_lock(checkout.path):
        with ref_book.writing():
            result = calls.run(*_FAST_FORWARD, new, cwd=checkout.path, check=False)
            if result.ok:
                ref_book.note(ref, old, new)
        if result.ok:
            return None
        refusal = result.stderr.strip() or result.stdout.strip() or "refused"
        if clean:
            _put_back(calls, checkout, old, new, refusal)
    return refusal


def refusal_cause(refusal: str) -> str:
    """What git's refusal to fast-forward a checkout names, and the way out, in one line:
    the first file in the way (and how many more), or git's own first line."""
    paths = [line.strip() for line in refusal.splitlines() if line.startswith("\t")]
    more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
    if "untracked working tree files would be" in refusal and paths:
        return (
            f"the untracked file {paths[0]}{more} is where the landing puts a file of its "
            "own; move or remove it there (or commit it)"
        )
    if "local changes to the following files would be" in refusal and paths:
        return f"uncommitted changes to {paths[0]}{more}; commit or stash them there"
    first = next((line.strip() for line in refusal.splitlines() if line.strip()), "refused")
    return f"git said: {first.removeprefix('error: ').removeprefix('fatal: ')}"


def _put_back(calls: GitCalls, checkout: Checkout, old: str, new: str, refusal: str) -> None:
    """Undo a fast-forward git left half done: its HEAD still ``old``, its index ``new``'s."""
    head = calls.run("rev-parse", "--verify", "--quiet", "HEAD", cwd=checkout.path, check=False)
    if head.out != old:
        return  # the ref moved after all, or someone else moved it: nothing of ours to undo
    if not _index_is(calls, checkout, new):
        return  # git refused before it touched the index (local changes, an index.lock)
    undo = calls.run("read-tree", "-m", "-u", new, old, cwd=checkout.path, check=False)
    if not undo.ok:
        raise WorkspaceError(
            f"the merge could not move the base in {checkout.path} ({refusal.splitlines()[0]}) "
            f"after git had already updated its index and files, and putting them back failed "
            f"({undo.stderr.strip() or 'no output'}); nothing is lost: commit {new} holds the "
            f"merge. There, `git read-tree -m -u {new} {old}` undoes it, or `git merge "
            f"--ff-only {new}` finishes it"
        )


_checkout_locks: dict[str, threading.Lock] = {}
_checkout_locks_guard = threading.Lock()


def checkout_lock(path: Path) -> threading.Lock:
    """The lock held while a fast-forward changes the checkout at ``path`` (one per path, in
    this process): whoever must not see its files half moved (the tamper check's ``git status``,
    ``orchestrator.worktrees.tamper.guard``) takes it too. A threading lock, since both sides
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
