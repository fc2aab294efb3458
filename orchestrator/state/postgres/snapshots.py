"""Checkpoints in the PostgreSQL backend: immutable snapshots of a session and its tasks, made,
listed and restored (a restore writes each record's next version, in one transaction)."""

from __future__ import annotations

from orchestrator.errors import RecordNotFound
from orchestrator.events import Event
from orchestrator.events.state import CheckpointCreated, CheckpointRestored
from orchestrator.ids import check_id
from orchestrator.models import Checkpoint, CheckpointInfo, SessionSnapshot
from orchestrator.state.metrics import compute_metrics
from orchestrator.state.postgres.core import Conn, PgCore, jsonb
from orchestrator.state.postgres.sessions import PgSessions, read_session, write_session
from orchestrator.state.postgres.tasks import PgTasks, locked_task, write_task
from orchestrator.state.record_rules import STORE_OWNED, new_id

__all__ = ["PgSnapshots"]


class PgSnapshots:
    def __init__(self, core: PgCore, tasks: PgTasks, sessions: PgSessions) -> None:
        self._core = core
        self._tasks = tasks
        self._sessions = sessions

    async def create_checkpoint(self, session_id: str, reason: str) -> CheckpointInfo:
        bare = await self._sessions.get_session(session_id, metrics=False)
        if bare is None:
            raise RecordNotFound(f"session {session_id!r} does not exist")
        # One query for them all (a session of 10,000 tasks: not 10,000 round trips), and the
        # session's metrics from the same tasks.
        tasks = await self._tasks.get_task_states(bare.task_ids)
        members = (task for task in tasks if task.session_id == session_id)
        session = bare.model_copy(update={"metrics": compute_metrics(members)})

        async def work(conn: Conn, events: list[Event]) -> CheckpointInfo:
            checkpoint = Checkpoint(
                checkpoint_id=new_id("ck"),
                session_id=session_id,
                reason=reason,
                created_at=await self._core.now(conn),
                task_count=len(tasks),
                session=session,
                tasks=tasks,
            )
            await conn.execute(
                "INSERT INTO council.checkpoints (checkpoint_id, session_id, created_at, doc) "
                "VALUES (%s, %s, %s, %s)",
                (checkpoint.checkpoint_id, session_id, checkpoint.created_at, jsonb(checkpoint)),
            )
            created = CheckpointCreated(
                checkpoint_id=checkpoint.checkpoint_id, session_id=session_id, reason=reason
            )
            events.append(created)
            return checkpoint.info()

        return await self._core.atomically(work)

    async def list_checkpoints(self, session_id: str | None = None) -> list[CheckpointInfo]:
        async with self._core.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT doc FROM council.checkpoints WHERE %s::text IS NULL OR session_id = %s "
                "ORDER BY created_at, checkpoint_id",
                (session_id, session_id),
            )
            rows = await cursor.fetchall()
        return [Checkpoint.model_validate(row[0]).info() for row in rows]

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        check_id(checkpoint_id, "checkpoint id")
        async with self._core.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT doc FROM council.checkpoints WHERE checkpoint_id = %s", (checkpoint_id,)
            )
            row = await cursor.fetchone()
        if row is None:
            raise RecordNotFound(f"checkpoint {checkpoint_id!r} does not exist")
        return Checkpoint.model_validate(row[0])

    async def restore_checkpoint(self, checkpoint_id: str) -> SessionSnapshot:
        checkpoint = await self.get_checkpoint(checkpoint_id)

        async def work(conn: Conn, events: list[Event]) -> None:
            now = await self._core.now(conn)
            for task in checkpoint.tasks:
                current = await locked_task(conn, task.task_id)
                fields = task.model_dump(exclude=set(STORE_OWNED))
                await write_task(
                    conn, task.task_id, current, fields, now, events, rules=self._core.validators
                )
            sid = checkpoint.session_id
            current_session = await read_session(conn, sid, lock=True)
            fields = checkpoint.session.model_dump(exclude={*STORE_OWNED, "metrics"})
            await write_session(
                conn, sid, current_session, fields, now, events, rules=self._core.validators
            )
            events.append(CheckpointRestored(checkpoint_id=checkpoint_id, session_id=sid))

        await self._core.atomically(work)
        session = await self._sessions.get_session(checkpoint.session_id)
        assert session is not None
        tasks = await self._tasks.list_tasks(session.session_id)
        return SessionSnapshot(session=session, tasks=tasks)
