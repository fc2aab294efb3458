"""The session's commit, built by the orchestrator from the worktree's files alone: a commit no
CLI can steer.

A CLI writes its worktree and, under the sandbox, its worktree's git dir (the admin dir under
``<common>/worktrees/``: HEAD, the index, ``MERGE_HEAD``, the sequencer, ``info/``) and its own
branch's ref. ``git commit`` honours all of that: a ``MERGE_HEAD`` naming a sibling's tip makes
the commit a merge whose tree lacks the sibling's files (the landing then deletes them from the
base), an index entry marked ``assume-unchanged`` or ``skip-worktree`` commits staged bytes that
are not the file a reviewer reads, and the branch the CLI moved becomes the commit's parent. So
the orchestrator never runs ``git commit`` on a session's worktree. ``build(...)`` (blocking):

1. an index of the orchestrator's own, ``<common>/council/index/<worktree>`` (the sandbox shows
   the common dir read-only, so no CLI writes it), set to ``parent``'s tree where it is not
   already (``read-tree -m`` keeps the file stats of entries that match, so ``add`` re-reads
   only changed files); a side file remembers which commit it was last made for;
2. the files that differ from it (``ls-files``: modified, deleted, new and not ignored) have
   the run's known secrets masked (``secret_scrub``) before git reads any of them, so no blob
   ever holds one; then ``git add -A --sparse`` of the worktree's files into the index
   (``GIT_INDEX_FILE``) and ``write-tree``: the tree is what the files say, nothing of the
   CLI's index;
3. the files that differ from ``parent``'s tree (one ``git diff``, the patch too when asked);
4. ``commit-tree <tree> -p <parent>`` with the orchestrator's identity and trailers, where the
   tree differs from ``parent``'s, and the branch moved to it (as ``update-ref`` moves it, from
   whatever the CLI left it at: ``git.loose_refs``, git where that cannot be exact); a tree
   equal to ``parent``'s moves the branch back to ``parent`` (commits the CLI made itself
   changed nothing, so nothing of them is lost);
5. the worktree made to agree: HEAD on the branch, the worktree's index replaced by the
   orchestrator's (so ``git status`` is clean and no flag the CLI set survives), and every
   in-progress operation the CLI left (``MERGE_HEAD``, ``CHERRY_PICK_HEAD``, ``REVERT_HEAD``,
   the sequencer, rebase directories, ``BISECT_*``) removed.

``parent`` is a commit the orchestrator recorded (the phase's start, its own last commit). A CLI
that commits by itself (aider does) moves its branch: its commits are kept as history only
where they are one chain of new commits on ``parent`` (each with one parent, down to
``parent``, none held by any other local ref: no merge, nothing of a sibling's or the base's
that a rebase or a merge brought in; a remote's branch may hold them, as a CLI's own push left
it, so that push stays the task's and fails it: ``scheduler.team.outside_push``), and they
are then checked at landing like any other (``merge.secret_gate``). Otherwise they are taken
as content only: the commit goes on ``parent`` with the files. Where a caller has no record
it passes the branch's current tip; the commit is still built from the files, with no state
the CLI left honoured.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.git import loose_objects, loose_refs, ref_book
from orchestrator.git.ref_files import loose_commit, read_refs
from orchestrator.git.repo import ZERO_SHA, Git
from orchestrator.safety import safe_write
from orchestrator.safety.secret_scrub import scrub_sync
from orchestrator.safety.untrusted_read import read_regular

__all__ = ["LEFT_BY_GIT", "Built", "adopt_checkout", "build", "forget", "private_index", "tip_of"]

# What a git command in progress leaves in a worktree's git dir, which a later git would
# continue or honour; none of it is ever the orchestrator's.
LEFT_BY_GIT = (
    "MERGE_HEAD", "MERGE_MSG", "MERGE_MODE", "MERGE_RR", "AUTO_MERGE", "CHERRY_PICK_HEAD",
    "REVERT_HEAD", "BISECT_LOG", "BISECT_START", "BISECT_TERMS", "BISECT_NAMES",
    "BISECT_EXPECTED_REV", "BISECT_ANCESTORS_OK", "SQUASH_MSG", "REBASE_HEAD",
    "sequencer", "rebase-merge", "rebase-apply",
)  # fmt: skip


@dataclass(frozen=True)
class Built:
    committed: bool
    sha: str | None  # the new commit; None when the files equal ``parent``'s tree
    head: str | None  # the branch's tip afterwards
    files: list[str] = field(default_factory=list)
    scrubbed: list[str] = field(default_factory=list)
    diff: str | None = None  # ``commits.PATCH`` from ``parent`` to the commit, when asked


def private_index(admin: Path) -> Path:
    """The orchestrator's own index for the worktree whose git dir is ``admin``
    (``<common>/worktrees/<name>``): ``<common>/council/index/<name>``."""
    return admin.parent.parent / "council" / "index" / admin.name


def adopt_checkout(admin: Path, commit: str) -> None:
    """Take the index of a worktree the orchestrator has just checked out at ``commit``, before
    any CLI or setup command ran in it, as its own: the first commit then re-reads only the
    files that changed, and a sparse checkout's entries outside the cone keep their
    skip-worktree bits (so files never written there are not taken for deleted)."""
    common = admin.parent.parent
    index = private_index(admin)
    safe_write.make_dirs(common, index.parent, mode=0o700)
    try:
        data = (admin / "index").read_bytes()
    except FileNotFoundError:
        return
    safe_write.write_atomic(common, index, data)
    safe_write.write_atomic(common, Path(f"{index}.for"), f"{commit} -\n".encode())


def forget(admin: Path | None) -> None:
    """Drop the orchestrator's index of a worktree that is removed (its admin dir)."""
    if admin is None:
        return
    index = private_index(admin)
    common = admin.parent.parent
    for path in (index, Path(f"{index}.for")):
        if os.path.lexists(path):
            safe_write.unlink(common, path)


def build(
    git: Git,
    admin: Path,
    branch: str | None,
    parent: str,
    message: str,
    *,
    keep_out: Sequence[str] = (),
    patch: Sequence[str] | None = None,
) -> Built:
    """The session's commit of its worktree's files on ``branch`` (``refs/heads/...``; None:
    a detached HEAD) with the one parent ``parent`` (module doc); ``patch``: the diff command
    whose output ``Built.diff`` carries (its files are read from it), else only the names
    are read."""
    common = admin.parent.parent
    if branch is not None:
        parent = _history_on(git, common, branch, parent)
    index = private_index(admin)
    env = {"GIT_INDEX_FILE": str(index)}
    safe_write.make_dirs(common, index.parent, mode=0o700)
    made_for, parent_tree = _made_for(index)
    if made_for != parent:
        # --reset: the index set to the tree whatever the files say (``-m`` would refuse a
        # changed file), keeping the stats of the entries that match.
        git.run_sync("read-tree", "--reset", parent, env=env)
        parent_tree = None
    # Known secrets masked in the files before git reads any of them: a blob, once written,
    # is in the store whatever the commit then holds.
    changed = ("ls-files", "-z", "--modified", "--deleted", "--others", "--exclude-standard")
    listed = git.run_sync(*changed, "--", ".", *_excluded(keep_out), env=env)
    scrubbed = scrub_sync(git.cwd, sorted({path for path in listed.stdout.split("\0") if path}))
    git.run_sync("add", "-A", "--sparse", "--", ".", *_excluded(keep_out), env=env)
    tree = git.run_sync("write-tree", env=env, strip_stdout=True).stdout
    if parent_tree is None:
        parent_tree = _tree_of(git, common, parent)
    files: list[str] = []
    diff: str | None = None
    if tree != parent_tree:
        files, diff = _changes(git, parent_tree, tree, patch)
    sha: str | None = None
    head = parent
    if tree != parent_tree:
        # Written as ``commit-tree`` writes it, without a process (``git.loose_objects``);
        # by git where that cannot be exact.
        sha = loose_objects.write_commit(common, tree, [parent], message, git.env)
        if sha is None:
            sha = git.run_sync(
                *("commit-tree", "--no-gpg-sign", tree, "-p", parent, "-m", message),
                strip_stdout=True,
            ).stdout
        head = sha
    if branch is not None:
        _move_branch(git, common, admin, branch, head)
    _settle_worktree(admin, common, branch, index, head, tree)
    return Built(sha is not None, sha, head, files, scrubbed, diff if sha else None)


_MOST_COMMITS = 1000  # a CLI's own commits kept as history at most, per commit of ours


def _history_on(git: Git, common: Path, branch: str, parent: str) -> str:
    """The commit the session's commit goes on: the branch's tip when the CLI committed on it
    and its commits are history that can be kept (one chain of commits with one parent each,
    down to ``parent``, none of them held by any other local ref: nothing of anyone else's, no
    merge), else ``parent``, and the CLI's commits are taken as content only."""
    found = read_refs(common, (branch,))
    tip = None if found is None else found.get(branch)
    if tip is None:
        tip = git.run_sync("rev-parse", "-q", "--verify", branch, check=False).stdout.strip()
    if not tip or tip == parent:
        return parent
    most = f"--max-count={_MOST_COMMITS + 1}"
    listed = git.run_sync("rev-list", "--topo-order", "--parents", most, tip, f"^{parent}",
                          check=False)  # fmt: skip
    lines = [line.split() for line in listed.stdout.splitlines()]
    if not listed.ok or not lines or len(lines) > _MOST_COMMITS:
        return parent
    for (_commit, *parents), below in zip(lines, [*lines[1:], [parent]], strict=True):
        if parents != [below[0]]:
            return parent  # a merge, a root, or a commit that does not lead to ``parent``
    holders = git.run_sync("for-each-ref", "--format=%(refname)", f"--contains={lines[-1][0]}",
                           check=False)  # fmt: skip
    others = set(holders.stdout.split()) - {branch}
    # Another ref holds them: someone else's history, taken as content only. A remote's
    # branch is the exception: the CLI pushed them (a push moves the tracking ref too), and
    # they stay its history, so the task is blamed for the push (``outside_push``).
    if not holders.ok or any(not ref.startswith("refs/remotes/") for ref in others):
        return parent
    return tip


def _made_for(index: Path) -> tuple[str | None, str | None]:
    """The commit the private index was last made to match and its tree (its side file)."""
    try:
        if not index.exists():
            return None, None
        words = Path(f"{index}.for").read_text(encoding="ascii").split()
    except OSError:
        return None, None
    if len(words) != 2:
        return None, None
    return words[0], (None if words[1] == "-" else words[1])


def _tree_of(git: Git, common: Path, commit: str) -> str:
    """``commit``'s tree: from its loose object when it is one, else asked of git."""
    loose = loose_commit(common, commit)
    if loose is not None and loose[0]:
        return loose[0]
    return git.run_sync("rev-parse", "--verify", f"{commit}^{{tree}}", strip_stdout=True).stdout


def tip_of(git: Git, common: Path, ref: str) -> str:
    """The commit ``ref`` (``refs/heads/...`` or ``HEAD``) names: from git's ref files where
    they tell it exactly, else asked of git (which fails when there is none)."""
    if ref.startswith("refs/"):
        found = read_refs(common, (ref,))
        if found is not None and found.get(ref):
            return found[ref]
    return git.run_sync("rev-parse", "--verify", f"{ref}^{{commit}}", strip_stdout=True).stdout


def _excluded(keep_out: Sequence[str]) -> list[str]:
    return [f":(top,exclude,literal){path}" for path in keep_out]


def _changes(
    git: Git, old: str, new: str, patch: Sequence[str] | None
) -> tuple[list[str], str | None]:
    """The paths that differ between two trees, and the patch when ``patch`` is given."""
    if patch is not None:
        text = git.run_sync(*patch, old, new, "--").stdout
        numstat = text.partition("\0\0")[0]
        names = [e.split("\t", 2)[2] for e in numstat.split("\0") if e.count("\t") >= 2]
        return names, text
    shown = git.run_sync("diff-tree", "-r", "-z", "--name-only", "--no-renames", old, new)
    return [name for name in shown.stdout.split("\0") if name], None


def _move_branch(git: Git, common: Path, admin: Path, branch: str, head: str) -> None:
    """``branch`` at ``head`` whatever the CLI left it at (noted, for the tamper check):
    written on git's files, no process and no lock file (``git.loose_refs``), or by git where
    that cannot be done exactly (and where the branch moved meanwhile, so git refuses as
    before)."""
    with ref_book.writing():
        found = read_refs(common, (branch,))
        if found is None:
            read = git.run_sync("rev-parse", "-q", "--verify", branch, check=False)
            current = read.stdout.strip()
        else:
            current = found.get(branch) or ""
        if current == head:
            return
        message = "council: commit"
        wrote = loose_refs.write_branch(
            common, branch, head, current or None, message, git.env, worktree_admin=admin
        )
        if not wrote:
            git.run_sync("update-ref", "-m", message, branch, head, current or ZERO_SHA)
        ref_book.note(branch, current or None, head)


def _settle_worktree(
    admin: Path, common: Path, branch: str | None, index: Path, head: str, tree: str
) -> None:
    """HEAD on ``branch`` (at ``head`` when detached), the worktree's index the
    orchestrator's, and nothing in progress."""
    head_file = admin / "HEAD"
    want = f"ref: {branch}\n".encode() if branch is not None else f"{head}\n".encode()
    try:  # a file of the CLI's admin dir (``untrusted_read``): anything else is rewritten
        current = read_regular(head_file, len(want)) or b""
    except OSError:
        current = b""
    if current != want:
        safe_write.write_atomic(common, head_file, want)
    for name in LEFT_BY_GIT:
        _remove(common, admin / name)
    safe_write.write_atomic(common, admin / "index", index.read_bytes())
    safe_write.write_atomic(common, Path(f"{index}.for"), f"{head} {tree}\n".encode())


def _remove(root: Path, path: Path) -> None:
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        for inner in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if inner.is_dir() and not inner.is_symlink():
                safe_write.rmdir(root, inner)
            else:
                safe_write.unlink(root, inner)
        safe_write.rmdir(root, path)
    else:
        safe_write.unlink(root, path)
