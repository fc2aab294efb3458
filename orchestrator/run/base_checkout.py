"""The base branch's own checkout, looked at before a run: work nobody committed there.

When the base branch is checked out somewhere (usually the user's main checkout), a task lands
by fast-forwarding that checkout, which git refuses while it has uncommitted changes to tracked
files: every finished task would wait to land until the user commits or stashes them. Said
before the run starts, once, the user can choose:

- ``wait``: start anyway; finished tasks wait (``merging``, the reason in ``council status``)
  and land as soon as the checkout is clean;
- ``detach``: detach that checkout's HEAD at the commit it is on (``git switch --detach``,
  which keeps every uncommitted change where it is), so the checkout is no longer the base's
  and tasks land on the base's ref alone; ``git switch <base>`` there afterwards;
- ``stop``: change nothing and start nothing.

Untracked files do not count, as in the merge queue: a fast-forward refuses by itself to
overwrite one, and a stray notes file must not hold a run back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from orchestrator.config.run import RunConfig
from orchestrator.git.repo import Git
from orchestrator.merge.checkout import status_entries

__all__ = ["DirtyBase", "IfBaseDirty", "detach", "dirty_base_checkout"]

_LISTED = 3  # changed paths named in the warning; the rest are counted


class IfBaseDirty(StrEnum):
    WAIT = "wait"
    DETACH = "detach"
    STOP = "stop"


@dataclass(frozen=True)
class DirtyBase:
    """The base branch ``base_branch`` is checked out in ``checkout`` with ``changed``
    tracked paths not committed."""

    checkout: Path
    base_branch: str
    changed: list[str]

    def warning(self) -> str:
        named = ", ".join(self.changed[:_LISTED])
        more = len(self.changed) - _LISTED
        if more > 0:
            named += f" and {more} more"
        return (
            f"{self.base_branch} is checked out in {self.checkout} with uncommitted changes "
            f"to {named}: finished tasks wait to land until you commit or stash them there"
        )


async def dirty_base_checkout(config: RunConfig) -> DirtyBase | None:
    """The base's checkout when it has uncommitted changes to tracked files, else None (also
    when the repository or the base does not exist yet: the run's own checks say so)."""
    git = Git(config.repo, None)  # no hooks directory: nothing may be created before a run
    listing = await git.run("worktree", "list", "--porcelain", check=False)
    if not listing.ok:
        return None
    for checkout in _holding(listing.stdout, f"refs/heads/{config.base_branch}"):
        status = await git.at(checkout).run(
            "--no-optional-locks",
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=no",
            check=False,
        )
        changed = [e[3:] for e in status_entries(status.stdout)] if status.ok else []
        if changed:
            return DirtyBase(checkout, config.base_branch, changed)
    return None


async def detach(dirty: DirtyBase) -> str:
    """Detach ``dirty``'s checkout at its commit, uncommitted changes kept; that commit."""
    git = Git(dirty.checkout, None)
    await git.run("switch", "--quiet", "--detach")  # GitError, with git's reason, if refused
    return (await git.run("rev-parse", "--short", "HEAD")).out


def _holding(porcelain: str, ref: str) -> list[Path]:
    """The worktrees of a ``git worktree list --porcelain`` listing with ``ref`` checked out."""
    found: list[Path] = []
    path: Path | None = None
    for line in porcelain.splitlines():
        if line.startswith("worktree "):
            path = Path(line.removeprefix("worktree "))
        elif line == f"branch {ref}" and path is not None:
            found.append(path)
    return found
