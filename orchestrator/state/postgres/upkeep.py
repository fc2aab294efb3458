"""The PostgreSQL backend's upkeep. Its records cannot be half-written (each write is one
transaction), so checking them is reading every document back through its model; there are
no lock files to clean."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from orchestrator.models import Checkpoint, KeyedRecord, SessionRecord, TaskState
from orchestrator.state.postgres.core import PgCore
from orchestrator.state.protocol import RecordProblem

__all__ = ["PgUpkeep"]

_TABLES: tuple[tuple[str, str, type[BaseModel]], ...] = (
    ("tasks", "task_id", TaskState),
    ("sessions", "session_id", SessionRecord),
    ("checkpoints", "checkpoint_id", Checkpoint),
    ("records", "namespace || '/' || key", KeyedRecord),
)


class PgUpkeep:
    def __init__(self, core: PgCore) -> None:
        self._core = core

    async def identity(self) -> str | None:
        """The sessions table's oid: dropping the schema (and migrating it again) changes it."""
        async with self._core.pool.connection() as conn:
            cursor = await conn.execute("SELECT to_regclass('council.sessions')::oid")
            row = await cursor.fetchone()
        return None if row is None or row[0] is None else str(row[0])

    async def verify_records(self) -> list[RecordProblem]:
        problems: list[RecordProblem] = []
        async with self._core.pool.connection() as conn:
            for table, key, model in _TABLES:
                cursor = await conn.execute(
                    f"SELECT {key}, doc FROM council.{table} ORDER BY 1"  # noqa: S608
                )
                for name, doc in await cursor.fetchall():
                    try:
                        model.model_validate(doc)
                    except ValidationError as exc:
                        reason = f"not a valid {table} record: {exc.errors()[0]['msg']}"
                        problems.append(
                            RecordProblem(kind=table, key=name, reason=reason, recovered=False)
                        )
        return problems

    async def clean_stale_locks(self) -> int:
        return 0  # the database holds no lock files: a dead holder's locks die with it
