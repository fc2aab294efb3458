"""What every part of the scheduler is given: the services it works with, where its events go,
and the few facts of the run they all read (its session, its tasks, who holds its claims, and
whether it is stopping). Only the ``Scheduler`` changes these facts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.scheduler.rules.queue import TASKS_OPTION

if TYPE_CHECKING:
    # Types only: the constants below are read by `council status` and other light commands,
    # which must not pay for importing the services (nor the events).
    from orchestrator.config.run import RunConfig
    from orchestrator.config.task import TaskConfig
    from orchestrator.events import Event
    from orchestrator.forge.base import Forge
    from orchestrator.locks.manager import LockManager
    from orchestrator.merge.queue import MergeQueue
    from orchestrator.models import TaskState
    from orchestrator.plugins.host import PluginHost
    from orchestrator.state.protocol import StateStore
    from orchestrator.state.team import Team
    from orchestrator.worktrees.manager import WorktreeManager

__all__ = ["ORCHESTRATOR", "TASKS_OPTION", "TEAM", "RunContext", "RunEvents", "Services"]

log = logging.getLogger(__name__)

# What a run keeps in its session record.
ORCHESTRATOR = "orchestrator"  # session metadata: the process running it (pid, host, start)
TEAM = "team"  # session metadata: the team run it is (``team.Team.run_key``), if any


@dataclass
class Services:
    """What the scheduler works with; the ``Council`` facade builds and closes them."""

    config: RunConfig
    store: StateStore
    worktrees: WorktreeManager
    locks: LockManager
    merges: MergeQueue
    plugins: PluginHost
    log_dir: Path
    home_root: Path
    team: Team | None = None  # several workstations, one queue (``team``); None: this one alone
    forge: Forge | None = None  # where pull requests go (``landing.via: pull_request``)


class RunEvents:
    """The run's events: its own go through the store to the store's subscribers; the
    workflow's (phases, CLI output) go to the plugins' observers and to ``listeners``."""

    def __init__(
        self, services: Services, listeners: list[Callable[[Event], None]] | None = None
    ) -> None:
        self._store = services.store
        self._plugins = services.plugins
        self.listeners = listeners if listeners is not None else []

    async def emit(self, event: Event) -> None:
        await self._store.emit(event)

    def on_event(self, event: Event) -> None:
        """A workflow event: to the plugins' observers, then to every listener."""
        self._plugins.event(event)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a listener must never break a run
                log.exception("event listener failed; ignored")


@dataclass
class RunContext:
    """The run as every part of the scheduler sees it."""

    services: Services
    events: RunEvents
    holder: str  # who this run's claims are held by: ``<host>:<pid>:<run id>``
    tasks: dict[str, TaskConfig] = field(default_factory=dict)
    session_id: str | None = None
    stopping: bool = False  # no new dispatch; running attempts are told to stop
    killed: bool = False  # stopped at once: nothing more is written
    # The session was ended by another workstation and a later run took its tasks over
    # (``session.reading``): this one leaves once its attempts are over, writing nothing more.
    ended_elsewhere: bool = False
    # The checkpoint a stop wrote (``session.finish``): the run's report is built from what it
    # read (``run.reports.session_report.stopped_report``), not from a second read of it all.
    stop_checkpoint: str | None = None
    # The task records a run that ended by itself read at its end (``session.finish``): the
    # run's report reads again only those written since (``StateStore.list_tasks_changed``).
    final_tasks: dict[str, TaskState] | None = field(default=None, repr=False)
    # A task record as a write of this run left it (``AttemptWrites``): the tick's view takes
    # it as read when it is the version last announced (``view.TaskView.wrote``).
    wrote: Callable[[TaskState], None] = field(default=lambda state: None, repr=False)

    def council_tasks(self) -> dict[str, TaskConfig]:
        """The council tasks of this run, by id."""
        return {task.id: task for task in self.tasks.values() if task.council}
