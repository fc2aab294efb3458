"""The fake GitHub's repository: a real bare repository, changed only with git's plumbing.

Merges are real: ``git merge-tree --write-tree`` decides whether the head merges cleanly
into the base, and the result is committed (a merge commit, one squashed commit, or each
commit of the head replayed on the base) and the base moved with a compare-and-swap.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from orchestrator.errors import GitError
from orchestrator.git.repo import Git

__all__ = ["BareRepo", "MergeConflict"]

_IDENTITY = {
    "GIT_AUTHOR_NAME": "Fake GitHub",
    "GIT_AUTHOR_EMAIL": "noreply@fake-github.invalid",
    "GIT_COMMITTER_NAME": "Fake GitHub",
    "GIT_COMMITTER_EMAIL": "noreply@fake-github.invalid",
}


class MergeConflict(Exception):
    """The head does not merge cleanly into the base: ``paths`` conflict."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__(", ".join(paths) or "conflict")
        self.paths = paths


class BareRepo:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._git = Git(path, None, _IDENTITY)

    def tip(self, branch: str) -> str | None:
        done = self._git.run_sync(
            "rev-parse", "--verify", "-q", f"refs/heads/{branch}^{{commit}}", check=False
        )
        return done.out if done.ok else None

    def commit_files(
        self,
        branch: str,
        files: Mapping[str, str],
        message: str,
        *,
        parent: str | None = None,
        force: bool = False,
    ) -> str:
        """Commit ``files`` (path -> text) over ``parent`` (default: the branch's tip) and set
        the branch to it; ``force`` lets the branch move to a commit that does not descend
        from its tip (a force-push)."""
        old = self.tip(branch)
        base = parent or old
        with tempfile.TemporaryDirectory(prefix="fake-github-index-") as scratch:
            env = {"GIT_INDEX_FILE": os.path.join(scratch, "index")}
            if base is not None:
                self._git.run_sync("read-tree", base, env=env)
            for path, text in files.items():
                blob = self._git.feed_sync("hash-object", "-w", "--stdin", data=text.encode())
                sha = blob.stdout.decode().strip()
                self._git.run_sync(
                    "update-index", "--add", "--cacheinfo", f"100644,{sha},{path}", env=env
                )
            tree = self._git.run_sync("write-tree", env=env).out
        commit = self._commit(tree, [base] if base else [], message)
        self._move(branch, commit, None if force else (old or ""))
        return commit

    def delete(self, branch: str) -> None:
        self._git.run_sync("update-ref", "-d", f"refs/heads/{branch}")

    def mergeable(self, base: str, head: str) -> bool:
        base_tip, head_tip = self.tip(base), self.tip(head)
        if base_tip is None or head_tip is None:
            return False
        return self._merged_tree(base_tip, head_tip)[0] is not None

    def merge(
        self,
        base: str,
        head_sha: str,
        method: Literal["merge", "squash", "rebase"],
        message: str,
    ) -> str:
        """Land ``head_sha`` on ``base`` by ``method``; the base's new tip. Raises
        ``MergeConflict`` when it does not merge cleanly (nothing is changed then)."""
        base_tip = self.tip(base)
        if base_tip is None:
            raise MergeConflict([f"base branch {base} does not exist"])
        if method == "rebase":
            landed = self._replay(base_tip, head_sha)
        else:
            tree, conflicts = self._merged_tree(base_tip, head_sha)
            if tree is None:
                raise MergeConflict(conflicts)
            parents = [base_tip, head_sha] if method == "merge" else [base_tip]
            landed = self._commit(tree, parents, message)
        self._move(base, landed, base_tip)
        return landed

    def _replay(self, onto: str, head_sha: str) -> str:
        """Each commit of the head not on the base, cherry-picked onto it in a scratch
        worktree (``merge-tree --merge-base`` needs git 2.40)."""
        with tempfile.TemporaryDirectory(prefix="fake-github-rebase-") as scratch:
            tree = Path(scratch) / "work"
            self._git.run_sync("worktree", "add", "-q", "--detach", str(tree), onto)
            try:
                here = self._git.at(tree)
                picked = here.run_sync("cherry-pick", f"{onto}..{head_sha}", check=False)
                if not picked.ok:
                    conflicts = here.run_sync("diff", "--name-only", "--diff-filter=U").out
                    raise MergeConflict(conflicts.split() or [picked.stderr])
                return here.run_sync("rev-parse", "HEAD").out
            finally:
                self._git.run_sync("worktree", "remove", "--force", str(tree), check=False)
                self._git.run_sync("worktree", "prune", check=False)

    def _merged_tree(self, ours: str, theirs: str) -> tuple[str | None, list[str]]:
        args = ["merge-tree", "--write-tree", "--name-only", "--no-messages"]
        done = self._git.run_sync(*args, ours, theirs, check=False)
        lines = done.stdout.strip().splitlines()
        if done.returncode == 0 and lines:
            return lines[0], []
        if done.returncode == 1:
            return None, lines[1:]
        raise GitError(args, done.returncode, done.stderr)

    def _commit(self, tree: str, parents: list[str], message: str) -> str:
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        return self._git.run_sync(*args, "-m", message).out

    def _move(self, branch: str, new: str, old: str | None) -> None:
        args = ["update-ref", f"refs/heads/{branch}", new]
        if old is not None:
            args.append(old)  # "" : the branch must not exist yet
        self._git.run_sync(*args)
