"""The git of stacked pull requests (``landing.pulls: stacked``, ``scheduler.pulls.stack``):
where a task stacked on others starts, and how a change below is carried up.

Every step works on exact commits, the ones the store recorded: a branch on the remote may
have been moved by someone else since, so its tip is never what a stack is built on. A commit
not in this clone (pushed by another workstation) is fetched from the pull request's head
branch and must then be there, exactly; otherwise the step refuses. No working tree is
touched: merges are ``git merge-tree --write-tree``, commits ``commit-tree``, and the one ref
this moves (a task's kept branch) moves by compare-and-swap. Blocking: run in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import WorkspaceError
from orchestrator.git import ref_book
from orchestrator.git.merge_tree import GitCalls, branch_ref, merge_trees
from orchestrator.git.remote_refs import check_remote_name, fetch_ref
from orchestrator.ids import is_commit_id

__all__ = ["Carried", "carry_up", "have_commit", "merge_heads", "move_branch", "unresolved"]

_PATHS_SAID = 20  # of a conflict's paths, in an error


def _sha(value: str, what: str) -> str:
    if not is_commit_id(value):
        raise WorkspaceError(f"{what} {value!r} is not a commit id")
    return value


def have_commit(calls: GitCalls, remote: str, branch: str, sha: str) -> None:
    """Make sure commit ``sha`` (recorded as ``branch``'s head) is in this clone: fetched
    from the remote's ``branch`` when it is not; a remote whose branch no longer holds it
    (moved by someone else) is refused, never followed."""
    _sha(sha, f"the recorded head of {branch}")
    if calls.rev_parse(sha) == sha:
        return
    check_remote_name(remote)
    tracking = f"refs/council/stack/{branch_ref(branch).removeprefix('refs/heads/')}"
    fetch_ref(calls, remote, branch_ref(branch), tracking)
    if calls.rev_parse(sha) != sha:
        raise WorkspaceError(
            f"commit {sha[:12]} recorded as the head of {branch} is not on {remote} any more "
            "(the branch was moved by someone else); the stack is not built on what it shows now"
        )


def merge_heads(calls: GitCalls, heads: Sequence[str], message: str) -> str:
    """One commit whose parents are ``heads`` (in order) and whose tree merges them all: the
    start of a task stacked on several pull requests. A conflict between them is refused,
    naming the paths."""
    if len(heads) < 2:
        raise WorkspaceError("a merge of the heads below needs at least two of them")
    tree_of = heads[0]
    tree = ""
    for index, head in enumerate(heads[1:], start=1):
        merged = merge_trees(calls, tree_of, _sha(head, "a head below"))
        if not merged.clean:
            paths = ", ".join(merged.conflicts[:_PATHS_SAID])
            raise WorkspaceError(f"the pull requests below conflict with each other in: {paths}")
        tree = merged.tree
        if index < len(heads) - 1:  # the next merge starts from this one
            tree_of = _commit(calls, tree, heads[: index + 1], message)
    return _commit(calls, tree, heads, message)


@dataclass(frozen=True)
class Carried:
    """A change below merged into the work above it: the new ``commit`` (parents: the work's
    tip, then the new head below) and the paths that conflicted (their files then hold git's
    conflict markers, for the task's CLI to resolve)."""

    commit: str
    conflicts: tuple[str, ...]


def carry_up(calls: GitCalls, tip: str, below: str, message: str) -> Carried:
    """``below`` (the pull request below, as it is now) merged into ``tip`` (the work above
    it), by git's merge of the two at their merge base: clean where it applies, else with
    conflict markers in the conflicted files."""
    merged = merge_trees(calls, _sha(tip, "the work's tip"), _sha(below, "the new head below"))
    return Carried(_commit(calls, merged.tree, [tip, below], message), tuple(merged.conflicts))


# A line git's merge writes around a conflict (``<<<<<<< ours`` ... ``>>>>>>> theirs``).
_MARKERS = r"^(<<<<<<<|>>>>>>>)( |$)"


def unresolved(calls: GitCalls, commit: str, paths: Sequence[str]) -> list[str]:
    """Which of ``paths`` still hold git's conflict markers in ``commit`` (a path gone from
    it holds none)."""
    if not paths:
        return []
    args = ("grep", "-l", "-I", "-E", _MARKERS, _sha(commit, "commit"), "--", *paths)
    found = calls.run(*args, check=False)
    if found.returncode not in (0, 1):
        raise WorkspaceError(f"could not look for conflict markers: {found.stderr.strip()}")
    prefix = f"{commit}:"
    return [line.removeprefix(prefix) for line in found.stdout.splitlines() if line]


def move_branch(calls: GitCalls, branch: str, new: str, old: str) -> None:
    """``branch`` from ``old`` to ``new``, only if it still holds ``old``."""
    ref = branch_ref(branch)
    with ref_book.writing():
        moved = calls.run(
            "update-ref", "-m", "council: carried up", ref, _sha(new, "commit"), old, check=False
        )
        if moved.ok:
            ref_book.note(ref, old, new)
    if not moved.ok:
        raise WorkspaceError(f"branch {branch} moved meanwhile: {moved.stderr.strip()}")


def _commit(calls: GitCalls, tree: str, parents: Sequence[str], message: str) -> str:
    args = ["commit-tree", "--no-gpg-sign", tree]
    for parent in parents:
        args += ["-p", parent]
    return calls.run(*args, "-m", message).out
