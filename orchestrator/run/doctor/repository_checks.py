"""The repository a run works on: a git checkout's top level, its base branch, whether the
checkout holding the base is clean (landings wait while it is not), and whether the
orchestrator may write its ``.council`` directory there."""

from __future__ import annotations

import os
from pathlib import Path

import anyio.to_thread

from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.repo import Git
from orchestrator.merge.checkout import CheckoutFinder
from orchestrator.run.base_checkout import base_checkout_block
from orchestrator.run.demo_repo import SampleState, sample_state
from orchestrator.run.doctor.checklist import Check
from orchestrator.run.preflight import council_dir_problem
from orchestrator.worktrees.layout import COUNCIL_DIR

__all__ = ["repository_checks"]

_GROUP = "repository"


async def repository_checks(
    repo: Path, base: str, *, sample: bool = False, source: str | None = None
) -> list[Check]:
    """The checks of ``repo`` and its ``base`` branch; ``source`` is the run config that named
    them (for the fixes), ``sample`` its ``sample_repo``."""
    if sample:
        state = await anyio.to_thread.run_sync(sample_state, repo, base)
        if state in (SampleState.ABSENT, SampleState.HALF_MADE):
            detail = f"the offline demo's sample repository is made at {repo} by the first run"
            return [Check.ok(_GROUP, "repository", detail)]
    where = f" in {source}" if source else ""
    problem = await anyio.to_thread.run_sync(_not_a_checkout, repo)
    if problem is not None:
        fix = f"set repo:{where} to your repository's root" if source else "run `git init`"
        return [Check.fail(_GROUP, "repository", problem, fix)]
    checks = [Check.ok(_GROUP, "repository", f"{repo}: a git checkout")]
    git = Git(repo, None)  # no hooks directory: looking creates nothing
    tip = await git.rev_parse(f"refs/heads/{base}")
    if tip is None:
        checks.append(await _no_base(git, base, where))
    else:
        checks.append(Check.ok(_GROUP, "base branch", f"{base!r} at {tip[:12]}"))
        checks.append(await anyio.to_thread.run_sync(_base_checkout, git, base))
    checks.append(await anyio.to_thread.run_sync(_council_dir, repo))
    return checks


def _not_a_checkout(repo: Path) -> str | None:
    if not repo.is_dir():
        return f"{repo} does not exist"
    if not os.path.lexists(repo / ".git"):
        return f"{repo} is not the top level of a git checkout (it has no .git)"
    return None


async def _no_base(git: Git, base: str, where: str) -> Check:
    if await git.rev_parse("HEAD") is None:
        detail = f"{base!r} does not exist: the repository has no commit yet"
        return Check.fail(_GROUP, "base branch", detail, "make a first commit")
    fix = f"create it (`git branch {base}`), or set base_branch:{where} to an existing branch"
    return Check.fail(_GROUP, "base branch", f"{base!r} does not exist", fix)


def _base_checkout(git: Git, base: str) -> Check:
    """The checkout holding the base, if any: a landing fast-forwards it only while clean."""
    blocked = base_checkout_block(git, base)
    if blocked is not None:
        fix = f"{blocked.fix}; until then finished work waits to land"
        return Check.fail(_GROUP, "base checkout", blocked.what, fix)
    owners = CheckoutFinder(f"refs/heads/{base}").owners(GitCalls(git))
    if not owners:
        detail = f"{base!r} is checked out nowhere: landings move the branch alone"
        return Check.ok(_GROUP, "base checkout", detail)
    paths = ", ".join(str(checkout.path) for checkout in owners)
    detail = f"{base!r} is checked out in {paths}, clean: landings fast-forward it"
    return Check.ok(_GROUP, "base checkout", detail)


def _council_dir(repo: Path) -> Check:
    council = repo / COUNCIL_DIR
    problem = council_dir_problem(repo)
    if problem is not None:
        fix = "replace the link with a real directory (its target is left alone)"
        return Check.fail(_GROUP, COUNCIL_DIR, problem.split("; ")[0], fix)
    place = council if council.is_dir() else repo
    if not os.access(place, os.W_OK | os.X_OK):
        detail = f"{place} is not writable by this user"
        return Check.fail(_GROUP, COUNCIL_DIR, detail, f"make {place} writable for this user")
    if place is repo:
        return Check.ok(_GROUP, COUNCIL_DIR, f"{council} is made by the first run (writable)")
    return Check.ok(_GROUP, COUNCIL_DIR, f"{council} is writable")
