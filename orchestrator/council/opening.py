"""What a ``Council`` opens when its ``async with`` is entered, after ``preflight``: the
repository's run lock (``run_lock``: a second orchestrator is refused with ``RunLocked``),
the state store, the worktree manager with each adapter's sandbox (a repository problem
surfaces here, before any write), and the services the scheduler is built on: the lock
manager's merge lock (a team's: this clone's, then the team's, ``locks.team_merge``), the
merge queue (on the team's remote, its pushes written ahead through ``before_push``) and the
forge pull requests go to. What was opened is closed again when a later step fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio.to_thread

from orchestrator.config.run import RunConfig
from orchestrator.config.sandbox import merged_sandbox
from orchestrator.locks.manager import LockManager
from orchestrator.locks.team_merge import TeamMergeLock, lease_for
from orchestrator.merge.queue import MergeLockFactory, MergeQueue
from orchestrator.merge.remote import BeforePush
from orchestrator.plugins.host import PluginHost
from orchestrator.run.plan import plan_paths
from orchestrator.run.run_lock import RunLock, acquire_run_lock
from orchestrator.run.stores import open_run_store
from orchestrator.sandbox.choice import settings_for
from orchestrator.scheduler.scheduler import Services
from orchestrator.state import StateStore
from orchestrator.state.team import Team, remote_base_ref
from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import WorktreeSettings

if TYPE_CHECKING:
    from orchestrator.forge.base import Forge

__all__ = ["Opened", "open_run", "services_for"]


@dataclass(frozen=True)
class Opened:
    """The run lock, store and worktree manager of an entered ``Council``."""

    run_lock: RunLock
    store: StateStore
    worktrees: WorktreeManager


async def open_run(config: RunConfig, team: Team | None) -> Opened:
    """Take the run lock, open the store and lay out the worktrees (module doc)."""
    run_lock = await anyio.to_thread.run_sync(acquire_run_lock, config.repo)
    try:
        store = await open_run_store(config)
    except BaseException:
        run_lock.release()
        raise
    try:
        # Setup commands run in the sandbox of the session's CLI, as verify commands do.
        sandbox = await settings_for(config.sandbox)
        own = {
            name: await settings_for(
                merged_sandbox(config.sandbox, adapter.sandbox), f"adapters.{name}.sandbox"
            )
            for name, adapter in config.adapters.items()
            if adapter.sandbox is not None
        }
        settings = WorktreeSettings(config.worktrees, sandbox=sandbox, adapter_sandboxes=own)
        worktrees = WorktreeManager(
            config.repo,
            store=store,
            base_branch=config.base_branch,
            settings=settings,
            base_ref=None if team is None else remote_base_ref(team, config.base_branch),
        )
        await worktrees.layout()  # a repository problem surfaces here, before any write
    except BaseException:
        await store.aclose()
        run_lock.release()
        raise
    return Opened(run_lock, store, worktrees)


async def services_for(
    config: RunConfig,
    plugins: PluginHost,
    team: Team | None,
    opened: Opened,
    locks: LockManager,
    before_push: BeforePush,
) -> Services:
    """The services the run's scheduler is built on (module doc)."""
    store = opened.store
    # The merge lock taken in each train's first attempt call (``locks.merge_lock.MergeHold``)
    merge_lock: MergeLockFactory = locks.merge_hold
    if team is not None:
        lease = lease_for(config.scheduler.stale_threshold)
        team_lock = TeamMergeLock(store, config.base_branch, team.workstation, lease)
        merge_lock = _team_merge_lock(locks, team_lock)
    log_dir, home_root = plan_paths(config)
    return Services(
        config=config,
        store=store,
        worktrees=opened.worktrees,
        locks=locks,
        merges=MergeQueue(
            config.repo,
            config.base_branch,
            merge_lock=merge_lock,
            store=store,
            remote=None if team is None else team.remote,
            before_push=None if team is None else before_push,
        ),
        plugins=plugins,
        log_dir=log_dir,
        home_root=home_root,
        team=team,
        forge=await _forge(config),
    )


async def _forge(config: RunConfig) -> Forge | None:
    """The forge pull requests go to, when the run lands through them."""
    if config.landing.via != "pull_request":
        return None
    from orchestrator.forge.connect import connect  # githubkit: only when it is used

    return await connect(config.forge, config.repo)


def _team_merge_lock(locks: LockManager, team_lock: TeamMergeLock) -> MergeLockFactory:
    """This clone's merge lock, then the team's (``locks.team_merge``)."""

    @contextlib.asynccontextmanager
    async def both(session_id: str) -> AsyncIterator[object]:
        async with locks.merge_lock(session_id) as grant, team_lock.held():
            yield grant

    return both
