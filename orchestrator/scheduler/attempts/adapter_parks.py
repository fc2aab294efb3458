"""The run's rate limits: which adapters are parked until when, and since when each has been
rate limited without a break. The rules are ``orchestrator.scheduler.rules.parks``; this part keeps
the state they are applied to, and rebuilds it from the tasks' records on resume."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from orchestrator.config.sections import RateLimitConfig
from orchestrator.models import TaskState
from orchestrator.retry import GiveUp
from orchestrator.scheduler.rules.parks import Park, ParkPolicy
from orchestrator.scheduler.rules.queue import choose_adapter
from orchestrator.task_meta import TaskMeta

__all__ = ["AdapterParks"]


class AdapterParks:
    def __init__(self, config: RateLimitConfig) -> None:
        self.policy = ParkPolicy(config)
        self._until: dict[str, datetime] = {}  # adapter -> when its park lifts
        self._since: dict[str, datetime] = {}  # adapter -> its first park in a row

    def choose(self, chain: Sequence[str], now: datetime, sticky: str | None = None) -> str | None:
        """The adapter for the next attempt (``queue.choose_adapter``), None while every one
        it may use is parked."""
        return choose_adapter(chain, self._until, now, sticky)

    def until(self, adapter: str) -> datetime | None:
        """When ``adapter``'s park lifts (None: never parked in this run)."""
        return self._until.get(adapter)

    def hold(self, adapter: str, until: datetime) -> None:
        """Start nothing on ``adapter`` before ``until`` (a quota that cannot carry a call):
        not a rate limit, so no task's park is counted and the adapter's run of rate limits
        does not begin."""
        self._until[adapter] = max(until, self._until.get(adapter, until))

    def answered(self, adapter: str) -> None:
        """The API answered ``adapter`` again: whatever its rate limits were, they are over."""
        self._since.pop(adapter, None)

    def decide(
        self,
        adapter: str,
        meta: dict[str, Any],
        message: str,
        reset_at: datetime | None,
        now: datetime,
    ) -> Park | GiveUp:
        """Park the rate-limited task (its metadata ``meta``) again, or end it."""
        since = self._since.get(adapter)
        park = TaskMeta.read(meta).park
        own = park.since if park.adapter == adapter else None
        if own is not None:
            since = own if since is None else min(since, own)
        return self.policy.decide(
            adapter=adapter,
            parks=park.parks or 0,
            since=since,
            reset_at=reset_at,
            message=message,
            now=now,
        )

    def park(self, adapter: str, park: Park) -> None:
        self._until[adapter] = max(park.until, self._until.get(adapter, park.until))
        self._since[adapter] = min(park.since, self._since.get(adapter, park.since))

    def restore(self, task: TaskState) -> None:
        """Take back the park a task recorded (a resumed run)."""
        park = TaskMeta.read(task.metadata).park
        until, adapter = park.until, park.adapter
        if until is None or adapter is None:
            return
        self._until[adapter] = max(until, self._until.get(adapter, until))
        since = park.since
        if since is not None:
            self._since[adapter] = min(self._since.get(adapter, since), since)
