"""Multi-record transactions in the PostgreSQL backend (``StateStore.write_many``): one
database transaction. Rows are locked in the one global order (``state.transactions``) so two
transactions over overlapping records wait for each other; a deadlock the database still
finds (with a writer that locks in another order) is run again by ``PgCore.atomically``.
Events are stored and ``pg_notify``-ed inside the transaction, so other workstations hear
them only if it commits, and this process's subscribers hear them after the commit."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.errors import RecordNotFound, VersionConflict
from orchestrator.events import Event
from orchestrator.events.state import SessionUpdated
from orchestrator.state.claim_rules import check_fence
from orchestrator.state.expiry import live
from orchestrator.state.postgres.core import Conn, PgCore
from orchestrator.state.postgres.keyed import (
    delete_records,
    expect_version,
    read_record,
    write_record,
)
from orchestrator.state.postgres.sessions import read_session, with_metrics, write_session
from orchestrator.state.postgres.tasks import locked_task, write_task
from orchestrator.state.transactions import (
    Committed,
    DeleteRecord,
    PutRecord,
    RecordWrite,
    UpdateSession,
    UpdateTask,
    checked,
)

__all__ = ["PgTransactions"]


class PgTransactions:
    def __init__(self, core: PgCore) -> None:
        self._core = core

    async def write_many(self, writes: Sequence[RecordWrite]) -> Committed:
        ordered = checked(writes)
        if not ordered:
            return Committed()

        async def work(conn: Conn, events: list[Event]) -> Committed:
            done = Committed()
            now = await self._core.now(conn)
            sessions = []
            for write in ordered:
                match write:
                    case UpdateTask(task_id=key):
                        task = await locked_task(conn, key)
                        _expect("tasks", key, task.version if task else None, write)
                        if write.fencing_token is not None:
                            check_fence(key, task, write.fencing_token)
                        done.tasks[key] = await write_task(
                            conn, key, task, write.updates, now, events, rules=self._core.validators
                        )
                    case UpdateSession(session_id=key):
                        session = await read_session(conn, key, lock=True)
                        if session is None:
                            raise RecordNotFound(f"session {key!r} does not exist")
                        _expect("sessions", key, session.version, write)
                        sessions.append(
                            await write_session(
                                conn,
                                key,
                                session,
                                write.updates,
                                now,
                                events,
                                rules=self._core.validators,
                            )
                        )
                        events.append(SessionUpdated(session_id=key))
                    case PutRecord(namespace=namespace, key=key):
                        record = await read_record(conn, namespace, key, lock=True)
                        # An expired record is absent to the version check (``put_record``).
                        expect_version(namespace, key, live(record, now), write.expected_version)
                        done.records[(namespace, key)] = await write_record(
                            conn,
                            namespace,
                            key,
                            record,
                            write.data,
                            None,
                            now,
                            events,
                            rules=self._core.validators,
                        )
                    case DeleteRecord(namespace=namespace, key=key):
                        stored = await read_record(conn, namespace, key, lock=True)
                        current = live(stored, now)
                        expect_version(namespace, key, current, write.expected_version)
                        if stored is not None:
                            await delete_records(conn, namespace, [key])
                        done.records[(namespace, key)] = None
                        done.deleted[(namespace, key)] = current is not None
            for session in sessions:  # after the tasks of this same transaction
                done.sessions[session.session_id] = await with_metrics(conn, session)
            return done

        return await self._core.atomically(work)


def _expect(kind: str, key: str, actual: int | None, write: UpdateTask | UpdateSession) -> None:
    expected = write.expected_version
    if expected is not None and (actual or 0) != expected:
        raise VersionConflict(f"{kind}/{key}", expected, actual)
