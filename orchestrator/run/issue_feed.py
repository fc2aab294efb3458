"""Issues as tasks in a run: the part the ``Council`` starts when the config has ``sources:``.

``IssueFeed.open`` connects the forge (``forge.connect``, plugin forge types included).
``join`` reads the sources once before the run starts: the issues' tasks are checked together
with the config's (an id the config already uses is a ``ConfigError`` naming the issue; the
config's cross-field checks run over all of them) and submitted, so the run's session is
created with them. ``following`` runs beside the scheduler: the source read again every
``poll`` (``forge.issue_source``: new tasks submitted through the scheduler's submission
path, queued ones whose issue no longer matches cancelled through its cancel path) and the
issues told what happens (``forge.issue_voice``, a subscriber of the run's events); when the
run ends, what the issues still have to hear is said, bounded. Beside them, every ``poll``,
the comments are read for commands from the people the run trusts (``forge.steering``, done
by ``run.steering_helm``: go on, raise a budget, stop, retry or rebase a task).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import anyio

from orchestrator.config.checks.problems import format_problems
from orchestrator.config.checks.run import find_problems
from orchestrator.config.fieldpath import format_loc
from orchestrator.config.run import RunConfig
from orchestrator.config.task import TaskConfig
from orchestrator.errors import CancelError, ConfigError, ConfigIssue
from orchestrator.events.base import Event
from orchestrator.forge.connect import connect
from orchestrator.forge.issue_source import Emit, IssueSource
from orchestrator.forge.issue_voice import IssueVoice
from orchestrator.forge.steering import Steering
from orchestrator.forge.told import Told
from orchestrator.forge.trust import Trust, TrustRule
from orchestrator.models import TaskStatus
from orchestrator.plugins.host import PluginHost
from orchestrator.run.steering_helm import RunHelm
from orchestrator.scheduler.scheduler import Scheduler

__all__ = ["IssueFeed"]

_log = logging.getLogger(__name__)
_LAST_WORDS = 30.0  # seconds the issues get to hear the run's end
T = TypeVar("T")


class _SchedulerHooks:
    """``RunHooks`` over the scheduler: its tasks and their status, its submit and cancel."""

    def __init__(self, scheduler: Scheduler, voice: IssueVoice) -> None:
        self._scheduler = scheduler
        self._voice = voice

    def statuses(self) -> Mapping[str, str]:
        return {line.task_id: line.status for line in self._scheduler.board()}

    def task(self, task_id: str) -> TaskConfig | None:
        return self._scheduler.task(task_id)

    def submit(self, task: TaskConfig) -> None:
        self._scheduler.submit(task)
        self._voice.follow(task)

    async def cancel(self, task_id: str) -> None:
        # Only a task that has not started: looked at again in the store right before.
        state = await self._scheduler.services.store.get_task_state(task_id)
        if state is not None and (
            state.status != TaskStatus.QUEUED
            or state.claim is not None
            or state.attempt > 0  # queued again for a retry: it started before
        ):
            raise CancelError(f"task {task_id!r} started (attempt {state.attempt}, {state.status})")
        await self._scheduler.cancel(task_id)


def _checker(config: RunConfig) -> Callable[[TaskConfig], str | None]:
    """The run config's cross-field checks on one issue task beside the config's tasks: an
    adapter or a phase the run does not have (its dependencies the source checks itself)."""

    def check(task: TaskConfig) -> str | None:
        together = config.model_copy(update={"tasks": [*config.tasks, task]})
        ours = len(config.tasks)
        for loc, message in find_problems(together):
            if loc[:2] != ("tasks", ours) or loc[2:3] == ("depends_on",):
                continue
            where = format_loc(loc[2:])
            return f"`council` block: {where}: {message}" if where else message
        return None

    return check


class IssueFeed:
    def __init__(
        self, source: IssueSource, voice: IssueVoice, steering: Steering, helm: RunHelm
    ) -> None:
        self.source = source
        self.voice = voice
        self.steering = steering
        self.helm = helm

    @classmethod
    async def open(
        cls, config: RunConfig, plugins: PluginHost, emit: Emit, scheduler: Scheduler
    ) -> IssueFeed:
        forge = await connect(config.forge, config.repo, types=plugins.forges)
        sources = [source.issues for source in config.sources]
        settings = config.forge
        # One ``Trust`` for the run: who is asked about once, whatever asks.
        trust = Trust(forge, TrustRule.of(settings.trusted if settings else ()))
        told = Told(forge, trust)  # what the sources list spares the voice a read of
        by_author = settings is None or settings.authors == "trusted"
        source = IssueSource(
            forge,
            sources,
            emit=emit,
            check=_checker(config),
            told=told,
            authors=trust if by_author else None,
            labellers=None if by_author or trust.rule.anyone else trust,
        )
        voice = IssueVoice(forge, emit=emit, lookup=scheduler.task, told=told)
        helm = RunHelm(scheduler)
        steering = Steering(forge, scheduler.services.store, helm, trust=trust, emit=emit)
        return cls(source, voice, steering, helm)

    async def join(self, config: RunConfig, scheduler: Scheduler) -> list[TaskConfig]:
        """Read the sources before the run starts and submit their tasks (checked with the
        config's first; ``ConfigError`` when they do not fit together, an id clash included)."""
        tasks = await self.source.first(config.tasks)
        together = config.model_copy(update={"tasks": [*config.tasks, *tasks]})
        problems = find_problems(together)
        if problems:
            raise ConfigError([ConfigIssue("sources", None, "", format_problems(problems))])
        for task in tasks:
            scheduler.submit(task)
            self.voice.follow(task)
        return tasks

    def subscriber(self) -> Callable[[Event], None]:
        voice, helm = self.voice, self.helm

        def hear(event: Event) -> None:
            voice.hear(event)
            helm.hear(event)

        return hear

    async def following(self, scheduler: Scheduler, running: Awaitable[T]) -> T:
        """Await ``running`` (the scheduler's run) with the sources read again every ``poll``
        and the issues told what happens; the rest they must hear said after it ends."""
        hooks = _SchedulerHooks(scheduler, self.voice)
        reading, steering = anyio.CancelScope(), anyio.CancelScope()

        async def follow() -> None:
            with reading:
                await self.source.follow(hooks)

        async def steer() -> None:
            with steering:
                await self.steering.follow(self.source.poll)

        async with anyio.create_task_group() as group:
            group.start_soon(follow)
            group.start_soon(steer)
            group.start_soon(self.voice.serve)
            try:
                result = await running
            finally:
                reading.cancel()
                steering.cancel()
                self.voice.close()  # ``serve`` ends once it said what is queued
                group.cancel_scope.deadline = anyio.current_time() + _LAST_WORDS
        return result
