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

What counts as "not clean" is the merge queue's own judgement (``merge.checkout``: changes to
tracked files, a merge, cherry-pick, revert or rebase under way; untracked files do not
count), so the warning says exactly what a landing would wait for. ``council doctor`` asks
the same question (``base_checkout_block``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import anyio.to_thread

from orchestrator.config.run import RunConfig
from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.repo import Git
from orchestrator.merge.checkout import Blocked, CheckoutFinder, inspect_checkout

__all__ = ["DirtyBase", "IfBaseDirty", "base_checkout_block", "detach", "dirty_base_checkout"]


class IfBaseDirty(StrEnum):
    WAIT = "wait"
    DETACH = "detach"
    STOP = "stop"


@dataclass(frozen=True)
class DirtyBase:
    """The base branch ``base_branch`` is checked out in ``checkout``, which a landing could
    not fast-forward now: ``what`` is in the way, ``fix`` what the user does about it."""

    checkout: Path
    base_branch: str
    what: str
    fix: str

    def warning(self) -> str:
        return f"{self.what}: finished tasks wait to land until then; {self.fix}"


def base_checkout_block(git: Git, base_branch: str) -> DirtyBase | None:
    """The first checkout of ``base_branch`` a landing would wait for, or None (none holds
    the branch, or each is clean). Blocking: call it from a worker thread."""
    calls = GitCalls(git)
    owners = CheckoutFinder(f"refs/heads/{base_branch}").owners(calls)
    if not owners:
        return None
    tree = calls.run("rev-parse", f"refs/heads/{base_branch}^{{tree}}").out
    for checkout in owners:
        found = inspect_checkout(calls, checkout, base_branch, tree)
        if isinstance(found, Blocked):
            return DirtyBase(checkout.path, base_branch, found.what, found.fix)
    return None


async def dirty_base_checkout(config: RunConfig) -> DirtyBase | None:
    """``base_checkout_block`` for a run's repository, or None also when the repository or
    its base does not exist yet (the run's own checks say so)."""
    git = Git(config.repo, None)  # no hooks directory: nothing may be created before a run
    if not config.repo.is_dir() or await git.rev_parse(f"refs/heads/{config.base_branch}") is None:
        return None
    return await anyio.to_thread.run_sync(base_checkout_block, git, config.base_branch)


async def detach(dirty: DirtyBase) -> str:
    """Detach ``dirty``'s checkout at its commit, uncommitted changes kept; that commit."""
    git = Git(dirty.checkout, None)
    await git.run("switch", "--quiet", "--detach")  # GitError, with git's reason, if refused
    return (await git.run("rev-parse", "--short", "HEAD")).out
