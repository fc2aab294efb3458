"""Task records in the PostgreSQL backend: read, written (fenced when the caller holds a claim),
their recent history (the ten versions before the current one), and the tasks of a session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from orchestrator.errors import VersionConflict
from orchestrator.events import Event
from orchestrator.ids import check_id
from orchestrator.models import TaskState
from orchestrator.state.claim_rules import check_fence
from orchestrator.state.postgres.core import Conn, PgCore, as_stored, jsonb, merged
from orchestrator.state.postgres.history import move_out_of_task_window
from orchestrator.state.protocol.task_changes import TaskChanges
from orchestrator.state.validators import Validators

__all__ = ["PgTasks", "locked_task", "write_task"]


class PgTasks:
    def __init__(self, core: PgCore) -> None:
        self._core = core

    async def get_task_state(self, task_id: str) -> TaskState | None:
        check_id(task_id, "task id")
        async with self._core.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT doc FROM council.tasks WHERE task_id = %s", (task_id,)
            )
            row = await cursor.fetchone()
        return TaskState.model_validate(row[0]) if row is not None else None

    async def get_task_states(self, task_ids: Sequence[str]) -> list[TaskState]:
        """The tasks of ``task_ids`` that have a record, in that order, read in one query."""
        async with self._core.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT doc FROM council.tasks WHERE task_id = ANY(%s)", (list(task_ids),)
            )
            rows = await cursor.fetchall()
        found = {state.task_id: state for state in (TaskState.model_validate(r[0]) for r in rows)}
        return [found[task_id] for task_id in task_ids if task_id in found]

    async def update_task_state(
        self,
        task_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        fencing_token: int | None = None,
        durable: bool = True,
    ) -> TaskState:
        del durable  # every commit is durable here; a faster kind buys nothing worth the risk
        check_id(task_id, "task id")

        async def work(conn: Conn, events: list[Event]) -> TaskState:
            current = await locked_task(conn, task_id)
            if expected_version is not None:
                actual = current.version if current is not None else 0
                if actual != expected_version:
                    raise VersionConflict(
                        f"tasks/{task_id}", expected_version, actual if current else None
                    )
            if fencing_token is not None:
                check_fence(task_id, current, fencing_token)
            now = await self._core.now(conn)
            return await write_task(
                conn, task_id, current, updates, now, events, rules=self._core.validators
            )

        return await self._core.atomically(work)

    async def task_history(self, task_id: str) -> list[TaskState]:
        check_id(task_id, "task id")
        async with self._core.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT h.doc FROM council.task_history h JOIN council.tasks t USING (task_id) "
                "WHERE h.task_id = %s AND h.version < t.version ORDER BY h.version DESC",
                (task_id,),
            )
            rows = await cursor.fetchall()
        return [TaskState.model_validate(row[0]) for row in rows]

    async def list_tasks(self, session_id: str | None = None) -> list[TaskState]:
        async with self._core.pool.connection() as conn:
            if session_id is None:
                cursor = await conn.execute("SELECT doc FROM council.tasks ORDER BY task_id")
            else:
                cursor = await conn.execute(
                    "SELECT t.doc FROM council.tasks t JOIN council.sessions s "
                    "ON t.session_id = s.session_id AND s.session_id = %s "
                    "WHERE s.doc->'task_ids' ? t.task_id "
                    "ORDER BY array_position(ARRAY(SELECT jsonb_array_elements_text("
                    "s.doc->'task_ids')), t.task_id)",
                    (session_id,),
                )
            rows = await cursor.fetchall()
        return [TaskState.model_validate(row[0]) for row in rows]

    async def list_tasks_changed(
        self, session_id: str, held: Mapping[str, TaskState]
    ) -> TaskChanges:
        """``list_tasks(session_id)`` in one query that sends back the documents of only the
        tasks whose version and update time are not those of ``held`` (the stamp,
        ``task_changes``): the others' ids alone."""
        ids, versions, times = [], [], []
        for task_id, task in held.items():
            ids.append(task_id)
            versions.append(task.version)
            times.append(task.updated_at)
        async with self._core.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT t.task_id, CASE WHEN h.version = t.version AND h.updated_at = "
                "t.updated_at THEN NULL ELSE t.doc END "
                "FROM council.tasks t JOIN council.sessions s "
                "ON t.session_id = s.session_id AND s.session_id = %s "
                "LEFT JOIN unnest(%s::text[], %s::integer[], %s::timestamptz[]) "
                "AS h(task_id, version, updated_at) ON h.task_id = t.task_id "
                "WHERE s.doc->'task_ids' ? t.task_id "
                "ORDER BY array_position(ARRAY(SELECT jsonb_array_elements_text("
                "s.doc->'task_ids')), t.task_id)",
                (session_id, ids, versions, times),
            )
            rows = await cursor.fetchall()
        changed = {row[0]: TaskState.model_validate(row[1]) for row in rows if row[1] is not None}
        return TaskChanges(tuple(row[0] for row in rows), changed)


async def locked_task(conn: Conn, task_id: str, *, skip_locked: bool = False) -> TaskState | None:
    """The task, its row locked for this transaction (``skip_locked``: None at once when
    another transaction holds it, as when it does not exist)."""
    lock = "FOR UPDATE SKIP LOCKED" if skip_locked else "FOR UPDATE"
    cursor = await conn.execute(
        f"SELECT doc FROM council.tasks WHERE task_id = %s {lock}",  # noqa: S608
        (task_id,),
    )
    row = await cursor.fetchone()
    return TaskState.model_validate(row[0]) if row is not None else None


async def write_task(
    conn: Conn,
    task_id: str,
    current: TaskState | None,
    updates: Mapping[str, Any],
    now: datetime,
    events: list[Event],
    *,
    rules: Validators,
) -> TaskState:
    """Write the task's next version (the caller holds its row lock); the previous one goes
    to history, of which the newest ten stay whole and older ones are archived (``history``)."""
    if current is None:
        # A task started afresh keeps its versions increasing past the history it left.
        cursor = await conn.execute(
            "SELECT coalesce(max(version), 0) FROM council.task_history WHERE task_id = %s",
            (task_id,),
        )
        row = await cursor.fetchone()
        version = int(row[0]) if row is not None else 0
    else:
        version = current.version
    record, doc = as_stored(
        merged(
            TaskState, "tasks", "task_id", task_id, current, updates, version, now, events,
            rules=rules,
        )
    )  # fmt: skip
    claim = record.claim
    values = (
        record.session_id,
        record.version,
        str(record.status),
        claim.token if claim else None,
        str(claim.status) if claim else None,
        claim.expires_at if claim else None,
        doc,
        now,
    )
    if current is None:
        await conn.execute(
            "INSERT INTO council.tasks (session_id, version, status, claim_token, claim_status,"
            " claim_expires, doc, updated_at, task_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (*values, task_id),
        )
        return record
    await conn.execute(
        "INSERT INTO council.task_history (task_id, version, doc) VALUES (%s, %s, %s) "
        "ON CONFLICT DO NOTHING",
        (task_id, current.version, jsonb(current)),
    )
    await move_out_of_task_window(conn, task_id, current.version)
    await conn.execute(
        "UPDATE council.tasks SET session_id = %s, version = %s, status = %s, claim_token = %s,"
        " claim_status = %s, claim_expires = %s, doc = %s, updated_at = %s WHERE task_id = %s",
        (*values, task_id),
    )
    return record
