"""The git repository a command stands in: its top level and the branch checked out there.

``council init`` writes its starter config for this repository (the current branch becomes
the base branch); ``council doctor`` without a config checks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import UnusableRepository
from orchestrator.git.repo import Git

__all__ = ["RepoHere", "repo_here"]


@dataclass(frozen=True)
class RepoHere:
    root: Path  # the top level of the checkout
    branch: str | None  # the branch checked out; None when HEAD is detached


async def repo_here(cwd: Path) -> RepoHere:
    """The checkout ``cwd`` is in; ``UnusableRepository`` (one line) when it is in none."""
    git = Git(cwd, None)  # no hooks directory: asking must create nothing
    top = await git.run("rev-parse", "--show-toplevel", check=False)
    if not top.ok or not top.out:
        reason = (top.stderr.strip().splitlines() or ["no answer"])[0].removeprefix("fatal: ")
        raise UnusableRepository(
            f"{cwd} is not inside a git checkout ({reason}); run this in your repository, "
            "or `git init` one first"
        )
    # symbolic-ref answers for a branch without commits yet too (what `git init` leaves).
    head = await git.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
    return RepoHere(root=Path(top.out), branch=head.out if head.ok and head.out else None)
