"""The merge queue's git steps that need no working tree: names, tips, merged trees, commits.

Everything here is synchronous and runs in a worker thread, one thread hop per merge attempt
rather than one per git call (each git process costs 2-5 ms here, and a hop per call would add
about a tenth of that again). Every git call goes through ``GitCalls`` so a merge can
report how many processes it started.

``git merge-tree --write-tree`` (git >= 2.38) computes the merge entirely in the object
database: it writes the merged tree's objects and prints the tree id, then, only on conflict
(exit code 1), the conflicted paths and git's CONFLICT messages. No ref, index or file moves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import GitError, WorkspaceError
from orchestrator.git.loose_objects import write_commit
from orchestrator.git.ref_files import loose_commit, read_refs
from orchestrator.git.repo import Git, GitResult

__all__ = [
    "GitCalls",
    "Tips",
    "TreeMerge",
    "branch_ref",
    "commit_merge",
    "commit_message",
    "merge_trees",
    "missing_branch",
    "parse_merge_tree",
    "read_tips",
]

TASK_TRAILER = "Council-Task"
SESSION_TRAILER = "Council-Session"

# The parts of git-check-ref-format(1) that matter here: we prefix refs/heads/ ourselves, so a
# name can never turn into an option, but revision syntax (``x@{1}``, ``x^``, ``x~2``, ``a:b``)
# would make rev-parse resolve something other than the branch.
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(/|$)|^[/.-]|[/.]$")


def branch_ref(name: str, what: str = "branch") -> str:
    """``refs/heads/<name>`` (or ``name`` itself if it already is a full ref), checked."""
    ref = name if name.startswith("refs/") else f"refs/heads/{name}"
    short = ref.removeprefix("refs/")
    if not name or name == "@" or _BAD_REF.search(short) or _BAD_REF.search(name):
        raise WorkspaceError(f"{what} name {name!r} is not a valid git branch name")
    return ref


class GitCalls:
    """Runs git (synchronously) for one merge and counts the processes it started."""

    def __init__(self, git: Git) -> None:
        self.git = git
        self.count = 0

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> GitResult:
        self.count += 1
        runner = self.git if cwd is None else self.git.at(cwd)
        return runner.run_sync(*args, check=check, env=env)

    def rev_parse(self, ref: str) -> str | None:
        result = self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        return result.out if result.ok else None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        args = ("merge-base", "--is-ancestor", ancestor, descendant)
        result = self.run(*args, check=False)
        if result.returncode not in (0, 1):
            raise GitError(args, result.returncode, result.stderr)
        return result.returncode == 0


@dataclass(frozen=True)
class Tips:
    base: str
    base_tree: str
    branch: str


def read_tips(calls: GitCalls, base_ref: str, ref: str, common_dir: Path | None = None) -> Tips:
    """The base tip, its tree and the branch tip: from git's files when they tell exactly (the
    refs, and the base tip a loose commit, as a merge the orchestrator just made is), else in
    one process."""
    if common_dir is not None and base_ref.startswith(("refs/heads/", "refs/remotes/")):
        refs = read_refs(common_dir, (base_ref, ref))
        if refs is not None and base_ref in refs and ref in refs:
            base = loose_commit(common_dir, refs[base_ref])
            if base is not None and loose_commit(common_dir, refs[ref]) is not None:
                return Tips(refs[base_ref], base[0], refs[ref])
    # The trailing "--" keeps a file that happens to be named like a ref from making the
    # arguments ambiguous; rev-parse echoes it as a last line, which is ignored.
    args = ("rev-parse", f"{base_ref}^{{commit}}", f"{base_ref}^{{tree}}", f"{ref}^{{commit}}")
    result = calls.run(*args, "--", check=False)
    lines = result.stdout.split()
    if result.ok and len(lines) >= 3:
        return Tips(lines[0], lines[1], lines[2])
    for name, what in ((base_ref, "base branch"), (ref, "branch")):
        if calls.rev_parse(name) is None:
            raise missing_branch(calls, name, what)
    raise GitError(args, result.returncode, result.stderr)


def missing_branch(calls: GitCalls, ref: str, what: str) -> WorkspaceError:
    return WorkspaceError(
        f"{what} {ref.removeprefix('refs/heads/')!r} does not exist in {calls.git.cwd}"
    )


@dataclass(frozen=True)
class TreeMerge:
    """The merged tree of two commits, and what conflicted (empty when the merge is clean)."""

    tree: str
    conflicts: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.conflicts


def merge_trees(calls: GitCalls, ours: str, theirs: str) -> TreeMerge:
    """Merge two commits at their merge base(s) without touching any ref, index or file."""
    args = ("merge-tree", "--write-tree", "-z", "--name-only", ours, theirs)
    result = calls.run(*args, check=False)
    if result.returncode not in (0, 1):
        raise GitError(args, result.returncode, result.stderr)
    merged = parse_merge_tree(result.stdout)
    if result.returncode == 1 and not merged.conflicts:
        # Exit 1 always means "not clean"; name the merge rather than report zero paths.
        return TreeMerge(merged.tree, [f"{ours}..{theirs}"], merged.messages)
    return merged


def parse_merge_tree(stdout: str) -> TreeMerge:
    """Parse ``merge-tree --write-tree -z --name-only`` output.

    Layout: ``<tree>NUL``, then on conflict each conflicted path ``NUL``-terminated, an empty
    entry, and the messages as ``<n>NUL<path>NUL...<type>NUL<message>NUL``.
    """
    fields = stdout.split("\0")
    tree = fields[0].strip()
    if not re.fullmatch(r"[0-9a-f]{40,64}", tree):
        raise GitError(["merge-tree"], 0, f"unexpected merge-tree output: {stdout[:200]!r}")
    paths: list[str] = []
    index = 1
    while index < len(fields) and fields[index]:
        paths.append(fields[index])
        index += 1
    messages: list[str] = []
    index += 1
    while index < len(fields) and fields[index].isdigit():
        index += int(fields[index]) + 1  # skip the count and the paths it announces
        if index + 1 >= len(fields):
            break
        messages.append(fields[index + 1].strip())  # fields[index] is the conflict type
        index += 2
    return TreeMerge(tree, list(dict.fromkeys(paths)), messages)


def commit_message(branch: str, task_id: str, session_id: str, message: str | None) -> str:
    """The merge commit's message; the trailers are always the last paragraph."""
    body = (message or f"Merge {branch} (task {task_id})").rstrip()
    return f"{body}\n\n{TASK_TRAILER}: {task_id}\n{SESSION_TRAILER}: {session_id}\n"


def commit_merge(
    calls: GitCalls, tree: str, base: str, tip: str, text: str, common_dir: Path | None = None
) -> str:
    """A two-parent merge commit of ``tree`` (base first, so ``--first-parent`` follows the
    base), unsigned whatever the user's config says; no ref moves. With ``common_dir`` (the
    repository's git common dir) it is written as ``commit-tree`` writes it, without a process
    (``git.loose_objects``), where that can be exact."""
    if common_dir is not None:
        written = write_commit(common_dir, tree, [base, tip], text, calls.git.env)
        if written is not None:
            return written
    return calls.run("commit-tree", "--no-gpg-sign", tree, "-p", base, "-p", tip, "-m", text).out
