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

Untracked files do not make a checkout "dirty": only one (or an ignored one) at a path the
landing creates is in the way, and ``inspect_checkout`` names it before git is asked (the
paths the landing adds, ``git diff-tree``, each looked at with one ``lstat``); a stray notes
file the merge never touches stalls nothing.

Every ``Blocked`` says what is in the way and where, and its way out, in one line
(``Blocked.message``: ``rebase in progress in /repo: finish it (git rebase --continue) or abort
it (git rebase --abort)``): the state of a git operation is read from the checkout's admin
directory (``rebase-merge``, ``rebase-apply``, ``MERGE_HEAD``, ``CHERRY_PICK_HEAD``,
``REVERT_HEAD``, ``BISECT_LOG``), never guessed from git's refusal; a checkout bisecting from
the base (HEAD detached, ``BISECT_START`` naming it) counts as holding it, like a rebase of it.
That line is what the run prints, what its ``merge.waiting`` event says and what ``council
status`` shows for the task.

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
from orchestrator.git.index_files import clean
from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.ref_files import loose_commit
from orchestrator.git.tree_files import TreeMoves, added_and_deleted

__all__ = [
    "Blocked",
    "Checkout",
    "CheckoutFinder",
    "Ready",
    "checkout_lock",
    "fast_forward",
    "in_progress",
    "inspect_checkout",
    "refusal_cause",
    "untracked_in_the_way",
]

# The git operations a checkout can be in the middle of: the file of its admin directory that
# says so, its name, and the way out. The first found is named.
_REBASE = "finish it (git rebase --continue) or abort it (git rebase --abort)"
_IN_PROGRESS = (
    ("BISECT_LOG", "bisect", "end it there (git bisect reset)"),
    ("rebase-merge", "rebase", _REBASE),
    (
        "rebase-apply/applying",
        "git am",
        "finish it (git am --continue) or abort it (git am --abort)",
    ),
    ("rebase-apply", "rebase", _REBASE),
    ("MERGE_HEAD", "merge", "finish it (git commit) or abort it (git merge --abort)"),
    (
        "CHERRY_PICK_HEAD",
        "cherry-pick",
        "finish it (git cherry-pick --continue) or abort it (git cherry-pick --abort)",
    ),
    ("REVERT_HEAD", "revert", "finish it (git revert --continue) or abort it (git revert --abort)"),
)
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
    """Why a checkout cannot be fast-forwarded now: ``what`` is in the way and where, ``fix``
    the way out (a command, or what to move), ``details`` everything in the way."""

    what: str
    fix: str
    details: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """The wait's one line: what, where and the way out (module doc)."""
        return f"{self.what}: {self.fix}"


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
        # Plain strings: every landing reads a few files of every worktree's admin dir.
        admins = [os.fspath(common)]
        try:
            with os.scandir(common / "worktrees") as entries:
                admins += [e.path for e in entries if e.is_dir()]
        except FileNotFoundError:
            pass
        held: set[tuple[Path, bool]] = set()
        short = self.base_ref.removeprefix("refs/heads/")
        head = f"ref: {self.base_ref}"
        for admin in admins:
            if _read(f"{admin}/HEAD") == head:
                held.add((Path(admin), False))
            elif any(
                _read(f"{admin}/{d}/head-name") == self.base_ref
                for d in ("rebase-merge", "rebase-apply")
            ) or _read(f"{admin}/BISECT_START") in (short, self.base_ref):
                held.add((Path(admin), True))  # detached by a rebase or bisect of the base
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
    calls: GitCalls,
    checkout: Checkout,
    base_branch: str,
    tree: str,
    base: str | None = None,
    common_dir: Path | None = None,
) -> Blocked | Ready:
    """Whether ``checkout`` may be fast-forwarded to a commit of ``tree`` now, and if not why
    (module doc). With ``base``, the commit it would be fast-forwarded from, an untracked
    file at a path the landing creates is looked for too (``untracked_in_the_way``; with
    ``common_dir``, the trees read from git's files where they tell it)."""
    where = checkout.path
    if not where.is_dir():
        return Blocked(
            f"base branch {base_branch!r} is checked out in {where}, which no longer exists",
            f"run `git worktree prune` in {where.parent}",
        )
    operation = in_progress(checkout.admin)
    if operation is not None:
        name, fix = operation
        return Blocked(f"{name} in progress in {where}", fix)
    if checkout.rebasing:  # its files are gone, yet HEAD still names the base only through it
        return Blocked(f"rebase of {base_branch!r} in progress in {where}", _REBASE)
    # Clean as git's index shows it, without a process (``git.index_files``); git's status
    # where that cannot tell, and always to say what is dirty.
    known_clean = common_dir is not None and clean(where, checkout.admin, common_dir, calls.git.env)
    dirty = [] if known_clean else _status_paths(calls.run(*_STATUS, cwd=where).stdout)
    if dirty:
        if _holds_tree(calls, checkout, dirty, tree):
            return Ready(cut_short=True)
        names = [entry[3:] for entry in dirty]
        more = f" and {len(names) - 1} more" if len(names) > 1 else ""
        return Blocked(
            f"uncommitted changes to {names[0]}{more} in {where}",
            "commit or stash them there (git stash)",
            dirty[:_MAX_LISTED],
        )
    if base is not None:
        in_the_way = untracked_in_the_way(calls, where, base, tree, common_dir)
        if in_the_way:
            first = where / in_the_way[0]
            more = f" and {len(in_the_way) - 1} more" if len(in_the_way) > 1 else ""
            return Blocked(
                f"untracked file at {first}{more}, where the landing puts a file of its own",
                f"move or delete {first}" + (" and the others listed" if more else ""),
                [str(where / path) for path in in_the_way[:_MAX_LISTED]],
            )
    return Ready()


def in_progress(admin: Path) -> tuple[str, str] | None:
    """The git operation the checkout whose admin directory is ``admin`` is in the middle of,
    and its way out (``_IN_PROGRESS``); None when none is. A few stats, no process."""
    for marker, name, fix in _IN_PROGRESS:
        if os.path.lexists(admin / marker):
            return name, fix
    return None


def untracked_in_the_way(
    calls: GitCalls, checkout: Path, base: str, tree: str, common_dir: Path | None = None
) -> list[str]:
    """The paths (relative to ``checkout``) that a fast-forward from ``base`` to ``tree``
    would create where something untracked already is: a file (or directory) at a path it
    adds, or a file where it needs a directory. One ``git diff-tree`` and an ``lstat`` each;
    with ``common_dir``, no process where git's loose objects tell what it adds and deletes
    (``git.tree_files``: a landing's trees, which ``merge-tree`` wrote)."""
    moves = _moves_from_files(common_dir, base, tree)
    if moves is not None:
        added, deleted = moves.added, set(moves.deleted)
    else:
        listed = calls.run(
            *("diff-tree", "-r", "-z", "--no-renames", "--name-status", "--diff-filter=AD"),
            *(base, tree),
            check=False,
        )
        if not listed.ok:
            return []  # git will say itself why it cannot; ``refusal_cause`` names it then
        fields = listed.stdout.split("\0")
        added = []
        deleted = set()
        for status, path in zip(fields[0::2], fields[1::2], strict=False):
            if status == "A":
                added.append(path)
            else:
                deleted.add(path)
    found: list[str] = []
    seen: set[str] = set()
    for path in added:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent in seen or parent in deleted:
                continue
            seen.add(parent)
            full = checkout / parent
            if os.path.lexists(full) and (full.is_symlink() or not full.is_dir()):
                found.append(parent)
        if path not in deleted and os.path.lexists(checkout / path):
            found.append(path)
    return found


def _moves_from_files(common_dir: Path | None, base: str, tree: str) -> TreeMoves | None:
    """What a fast-forward from commit ``base`` to ``tree`` adds and deletes, from git's loose
    objects; None where they cannot tell (then git is asked)."""
    if common_dir is None:
        return None
    commit = loose_commit(common_dir, base)
    if commit is None:
        return None
    return added_and_deleted(common_dir, commit[0], tree)


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


def _read(path: Path | str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read().strip()
    except OSError:
        return ""
