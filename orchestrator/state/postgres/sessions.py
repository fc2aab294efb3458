"""Session records in the PostgreSQL backend: a run's tasks, options and status, made in one
transaction with its tasks (a task another unfinished session owns refuses the whole session);
metrics computed from the tasks when read, never stored; finished sessions past an age
removed with their tasks and checkpoints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from orchestrator.errors import RecordNotFound, StateError, VersionConflict
from orchestrator.events import Event
from orchestrator.events.state import SessionCreated, SessionRemoved, SessionUpdated
from orchestrator.ids import check_id
from orchestrator.models import (
    ACTIVE_SESSION_STATUSES,
    TERMINAL_SESSION_STATUSES,
    SessionRecord,
    TaskState,
)
from orchestrator.state.metrics import compute_metrics
from orchestrator.state.postgres.core import Conn, PgCore, as_stored, jsonb, merged
from orchestrator.state.postgres.history import forget_history, keep_old_version
from orchestrator.state.postgres.tasks import locked_task, write_task
from orchestrator.state.protocol import TaskInit
from orchestrator.state.record_rules import new_id
from orchestrator.state.session_rules import (
    batch_fields,
    holding_session,
    refuse_if_held,
    task_init_fields,
)
from orchestrator.state.validators import Validators

__all__ = ["PgSessions", "read_session", "write_session"]


class PgSessions:
    def __init__(self, core: PgCore) -> None:
        self._core = core

    async def create_session(
        self,
        options: Mapping[str, Any],
        tasks: Sequence[TaskInit],
        session_id: str | None = None,
        *,
        listed: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> SessionRecord:
        sid = check_id(session_id or new_id("s"), "session id")
        inits = [task_init_fields(t) for t in tasks]
        task_ids = [str(f["task_id"]) for f in inits]
        if len(set(task_ids)) != len(task_ids):
            raise StateError(f"session {sid!r}: duplicate task ids in {task_ids}")
        known = set(task_ids)
        listing = [*task_ids, *(check_id(t, "task id") for t in listed if t not in known)]

        async def work(conn: Conn, events: list[Event]) -> SessionRecord:
            if await read_session(conn, sid) is not None:
                raise StateError(f"session {sid!r} already exists")
            now = await self._core.now(conn)
            members = []
            for fields in inits:
                task_id = str(fields["task_id"])
                current = await locked_task(conn, task_id)
                members.append(await self._new_task(conn, sid, fields, current, now, events))
            fields = {
                "options": dict(options),
                "task_ids": listing,
                **({"metadata": dict(metadata)} if metadata else {}),
            }
            record = await write_session(
                conn, sid, None, fields, now, events, rules=self._core.validators
            )
            events.append(SessionCreated(session_id=sid))
            return record.model_copy(update={"metrics": compute_metrics(members)})

        return await self._core.atomically(work)

    async def _new_task(
        self,
        conn: Conn,
        sid: str,
        fields: dict[str, Any],
        current: TaskState | None,
        now: datetime,
        events: list[Event],
    ) -> TaskState:
        """Write ``fields`` as a task of session ``sid`` starting afresh (over ``current``,
        refused while another active session holds it)."""
        await _refuse_if_owned(conn, str(fields["task_id"]), current)
        fresh = TaskState(task_id=str(fields["task_id"]), session_id=sid).model_dump()
        fresh.pop("created_at")
        merged_fields = {**fresh, **fields}
        task_id = str(fields["task_id"])
        return await write_task(
            conn, task_id, current, merged_fields, now, events, rules=self._core.validators
        )

    async def add_session_tasks(self, session_id: str, tasks: Sequence[TaskInit]) -> int:
        """One transaction per batch: the session's row held (not read: it holds every
        task's config), then the batch's task rows locked in one statement (in id order, as
        every writer of several takes them), each new task written (``StateStore``).

        The session's row is held against other batches of the session too (``FOR NO KEY
        UPDATE``, which still lets others read it and hold it ``FOR KEY SHARE``): workstations
        joining one run each record the tasks not recorded yet, and a row lock cannot hold a
        task row that does not exist yet, so two batches with one new task would both insert it
        and one would fail. Serialized, the second finds the first's rows and skips them."""
        sid, inits = batch_fields(session_id, tasks)
        if not inits:
            return 0

        async def work(conn: Conn, events: list[Event]) -> int:
            cursor = await conn.execute(
                "SELECT 1 FROM council.sessions WHERE session_id = %s FOR NO KEY UPDATE", (sid,)
            )
            if await cursor.fetchone() is None:
                raise RecordNotFound(f"session {sid!r} does not exist")
            cursor = await conn.execute(
                "SELECT doc FROM council.tasks WHERE task_id = ANY(%s) ORDER BY task_id FOR UPDATE",
                ([str(f["task_id"]) for f in inits],),
            )
            found = (TaskState.model_validate(row[0]) for row in await cursor.fetchall())
            existing = {task.task_id: task for task in found}
            now = await self._core.now(conn)
            added: list[str] = []
            for fields in inits:
                task_id = str(fields["task_id"])
                current = existing.get(task_id)
                if current is not None and current.session_id == sid:
                    continue  # recorded by an earlier batch: once is enough
                await self._new_task(conn, sid, fields, current, now, events)
                added.append(task_id)
            return len(added)

        return await self._core.atomically(work)

    async def get_session(self, session_id: str, *, metrics: bool = True) -> SessionRecord | None:
        check_id(session_id, "session id")
        async with self._core.pool.connection() as conn:
            session = await read_session(conn, session_id)
            if session is None or not metrics:
                return session
            return await with_metrics(conn, session)

    async def update_session(
        self,
        session_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        metrics: bool = True,
    ) -> SessionRecord:
        check_id(session_id, "session id")
        if "metrics" in updates:
            raise StateError("session metrics are computed by the store, not written")

        async def work(conn: Conn, events: list[Event]) -> SessionRecord:
            current = await read_session(conn, session_id, lock=True)
            if current is None:
                raise RecordNotFound(f"session {session_id!r} does not exist")
            if expected_version is not None and current.version != expected_version:
                raise VersionConflict(f"sessions/{session_id}", expected_version, current.version)
            now = await self._core.now(conn)
            record = await write_session(
                conn, session_id, current, updates, now, events, rules=self._core.validators
            )
            events.append(SessionUpdated(session_id=session_id))
            return await with_metrics(conn, record) if metrics else record

        return await self._core.atomically(work)

    async def get_active_sessions(self) -> list[SessionRecord]:
        statuses = [str(status) for status in ACTIVE_SESSION_STATUSES]
        async with self._core.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT doc FROM council.sessions WHERE status = ANY(%s) ORDER BY created_at",
                (statuses,),
            )
            found = [SessionRecord.model_validate(row[0]) for row in await cursor.fetchall()]
            return [await with_metrics(conn, session) for session in found]

    async def list_sessions(self, *, metrics: bool = True) -> list[SessionRecord]:
        async with self._core.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT doc FROM council.sessions ORDER BY created_at, session_id"
            )
            found = [SessionRecord.model_validate(row[0]) for row in await cursor.fetchall()]
            if not metrics:
                return found
            return [await with_metrics(conn, session) for session in found]

    async def cleanup_old_sessions(self, days: float) -> int:
        finished = [str(status) for status in TERMINAL_SESSION_STATUSES]

        async def work(conn: Conn, events: list[Event]) -> int:
            cutoff = await self._core.now(conn) - timedelta(days=days)
            cursor = await conn.execute(
                "DELETE FROM council.sessions WHERE status = ANY(%s) AND updated_at < %s "
                "RETURNING session_id",
                (finished, cutoff),
            )
            gone = [row[0] for row in await cursor.fetchall()]
            if gone:
                await forget_history(conn, "sessions", gone)
                cursor = await conn.execute(
                    "SELECT task_id FROM council.tasks WHERE session_id = ANY(%s)", (gone,)
                )
                await forget_history(conn, "tasks", [row[0] for row in await cursor.fetchall()])
                await conn.execute(
                    "DELETE FROM council.task_history WHERE task_id IN (SELECT task_id FROM "
                    "council.tasks WHERE session_id = ANY(%s))",
                    (gone,),
                )
                await conn.execute("DELETE FROM council.tasks WHERE session_id = ANY(%s)", (gone,))
                await conn.execute(
                    "DELETE FROM council.checkpoints WHERE session_id = ANY(%s)", (gone,)
                )
            # The events of removed sessions go with them: every event older than the
            # oldest session kept (all, when none is) tells of sessions no longer stored.
            await conn.execute(
                "DELETE FROM council.events WHERE at < coalesce("
                "(SELECT min(created_at) FROM council.sessions), 'infinity')"
            )
            events.extend(SessionRemoved(session_id=sid) for sid in gone)
            return len(gone)

        return await self._core.atomically(work)


async def read_session(conn: Conn, session_id: str, *, lock: bool = False) -> SessionRecord | None:
    query = "SELECT doc FROM council.sessions WHERE session_id = %s"
    cursor = await conn.execute(query + (" FOR UPDATE" if lock else ""), (session_id,))
    row = await cursor.fetchone()
    return SessionRecord.model_validate(row[0]) if row is not None else None


async def with_metrics(conn: Conn, session: SessionRecord) -> SessionRecord:
    """``session`` with its metrics computed from its tasks as they are now."""
    cursor = await conn.execute(
        "SELECT doc FROM council.tasks WHERE task_id = ANY(%s) AND session_id = %s",
        (list(session.task_ids), session.session_id),
    )
    members = [TaskState.model_validate(row[0]) for row in await cursor.fetchall()]
    return session.model_copy(update={"metrics": compute_metrics(members)})


async def write_session(
    conn: Conn,
    session_id: str,
    current: SessionRecord | None,
    updates: Mapping[str, Any],
    now: Any,
    events: list[Event],
    *,
    rules: Validators,
) -> SessionRecord:
    version = current.version if current is not None else 0
    record = merged(
        SessionRecord,
        "sessions",
        "session_id",
        session_id,
        current,
        updates,
        version,
        now,
        events,
        rules=rules,
    )
    # Metrics are never stored; the record handed back is the one stored.
    record, doc = as_stored(record.model_copy(update={"metrics": type(record.metrics)()}))
    values = (record.version, str(record.status), doc, now, session_id)
    if current is None:
        await conn.execute(
            "INSERT INTO council.sessions (version, status, doc, updated_at, session_id, "
            "created_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (*values, record.created_at),
        )
    else:
        await keep_old_version(conn, "sessions", session_id, jsonb(current), current.version)
        await conn.execute(
            "UPDATE council.sessions SET version = %s, status = %s, doc = %s, updated_at = %s "
            "WHERE session_id = %s",
            values,
        )
    return record


async def _refuse_if_owned(conn: Conn, task_id: str, current: TaskState | None) -> None:
    held = holding_session(current)
    if held is not None:
        refuse_if_held(task_id, await read_session(conn, held))
