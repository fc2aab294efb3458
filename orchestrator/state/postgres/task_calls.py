"""The tasks' and claims' calls of ``PostgresStateStore``, each one trip to the database tried
again while it cannot be reached (``outages``): the store's methods for ``PgTasks`` and
``PgClaims``, and the ``_call`` every other part of the store goes through too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from orchestrator.ids import check_id
from orchestrator.models import Claim, ClaimStatus, TaskState
from orchestrator.state.claim_rules import ClaimUpdates, ReleaseUpdates
from orchestrator.state.postgres.claims import PgClaims
from orchestrator.state.postgres.outages import resilient
from orchestrator.state.postgres.tasks import PgTasks
from orchestrator.state.protocol.task_changes import TaskChanges

__all__ = ["PgTaskCalls"]

T = TypeVar("T")


class PgTaskCalls:
    """What ``PostgresStateStore`` answers for tasks and claims (its ``__init__`` sets these)."""

    _where: str  # the database, as errors name it
    _tasks: PgTasks
    _claims: PgClaims

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """``fn()``, tried again while the database cannot be reached (``outages``)."""
        return await resilient(fn, self._where)

    async def get_task_state(self, task_id: str) -> TaskState | None:
        return await self._call(lambda: self._tasks.get_task_state(task_id))

    async def get_task_states(self, task_ids: Sequence[str]) -> list[TaskState]:
        for task_id in task_ids:  # each name checked before the query
            check_id(task_id, "task id")
        if not task_ids:
            return []
        return await self._call(lambda: self._tasks.get_task_states(task_ids))

    async def update_task_state(
        self,
        task_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        fencing_token: int | None = None,
        durable: bool = True,
    ) -> TaskState:
        return await self._call(
            lambda: self._tasks.update_task_state(
                task_id, updates, expected_version, fencing_token=fencing_token, durable=durable
            )
        )

    async def list_tasks(self, session_id: str | None = None) -> list[TaskState]:
        return await self._call(lambda: self._tasks.list_tasks(session_id))

    async def list_tasks_changed(
        self, session_id: str, held: Mapping[str, TaskState]
    ) -> TaskChanges:
        return await self._call(lambda: self._tasks.list_tasks_changed(session_id, held))

    async def task_history(self, task_id: str) -> list[TaskState]:
        return await self._call(lambda: self._tasks.task_history(task_id))

    async def acquire_claim(
        self,
        task_id: str,
        holder: str,
        lease_seconds: float,
        updates: Mapping[str, Any] | ClaimUpdates | None = None,
        *,
        expected_version: int | None = None,
    ) -> Claim | None:
        return await self._call(
            lambda: self._claims.acquire_claim(
                task_id, holder, lease_seconds, updates, expected_version=expected_version
            )
        )

    async def renew_claim(self, task_id: str, token: int, lease_seconds: float) -> Claim:
        return await self._call(lambda: self._claims.renew_claim(task_id, token, lease_seconds))

    async def release_claim(
        self,
        task_id: str,
        token: int,
        status: ClaimStatus = ClaimStatus.COMPLETED,
        updates: Mapping[str, Any] | ReleaseUpdates | None = None,
    ) -> TaskState:
        return await self._call(lambda: self._claims.release_claim(task_id, token, status, updates))

    async def sweep_expired_claims(self, now: datetime | None = None) -> list[Claim]:
        return await self._call(lambda: self._claims.sweep_expired_claims(now))
