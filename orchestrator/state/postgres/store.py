"""``PostgresStateStore``: the state store of several workstations sharing one queue.

It implements the ``StateStore`` protocol like the file backend and passes the same contract
suite (``orchestrator.testing.state_contract``), on PostgreSQL 13 or newer through psycopg 3
and a connection pool. Each call is handed to the part that owns it, over one ``PgCore``
(pool, short transactions, the database's clock, events): ``PgTasks``, ``PgClaims``,
``PgSessions``, ``PgSnapshots``, ``PgRecords``, ``PgUpkeep``, ``PgHistory`` and
``PgTransactions``; recovering a session is the backend-neutral ``state.recovery``.

Subscribers also hear other workstations' task writes as they commit (``PgListener``, one
listening connection started by the first ``subscribe`` or by ``listen()``): a
``state.updated`` event marked ``remote``, and ``state.resync`` whenever some may have gone
unheard (``notices``, ``listener``).

``PostgresStateStore.connect(dsn)`` opens the pool and brings the schema ``council`` up to
date (``schema``). The connection string is libpq's, so ``PG*`` variables, ``.pgpass``,
service files, ``sslmode`` and client certificates work as they do for ``psql``
(``connection``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Self, TypeVar

import anyio.to_thread
import psycopg
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from orchestrator.errors import CouncilError, StateError, StoreUnavailable
from orchestrator.events import Event, Subscriber
from orchestrator.models import (
    Checkpoint,
    CheckpointInfo,
    KeyedRecord,
    SessionRecord,
    SessionSnapshot,
    TaskState,
)
from orchestrator.state.carried import CarriedPut
from orchestrator.state.carried_in_turn import put_and_task_in_turn, release_then_delete_in_turn
from orchestrator.state.changes import ChangeStream, RecordRef
from orchestrator.state.deletions import Deletion, checked
from orchestrator.state.health import DEFAULT_LARGE_RECORD_BYTES, StoreHealth
from orchestrator.state.local_records import LocalRecords, Written
from orchestrator.state.postgres.claims import PgClaims
from orchestrator.state.postgres.connection import describe, open_pool
from orchestrator.state.postgres.core import PgCore
from orchestrator.state.postgres.history import PgHistory
from orchestrator.state.postgres.keyed import PgRecords
from orchestrator.state.postgres.listener import PgListener
from orchestrator.state.postgres.notice_changes import NoticeChanges
from orchestrator.state.postgres.record_task import record_and_task
from orchestrator.state.postgres.sessions import PgSessions
from orchestrator.state.postgres.snapshots import PgSnapshots
from orchestrator.state.postgres.store_health import PgHealth
from orchestrator.state.postgres.task_calls import PgTaskCalls
from orchestrator.state.postgres.tasks import PgTasks
from orchestrator.state.postgres.transactions import PgTransactions
from orchestrator.state.postgres.upkeep import PgUpkeep
from orchestrator.state.protocol import RecordProblem, TaskInit
from orchestrator.state.recovery import recover_session
from orchestrator.state.transactions import Committed, DeleteRecord, PutRecord, RecordWrite
from orchestrator.state.waiting import wait_for_update

__all__ = ["PostgresStateStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")
U = TypeVar("U")
R = TypeVar("R", bound=BaseModel)


class PostgresStateStore(PgTaskCalls):
    """The PostgreSQL backend of ``StateStore`` (module doc)."""

    def __init__(self, pool: AsyncConnectionPool[Any], local: LocalRecords | None = None) -> None:
        self._local = local
        self._where = describe(pool.conninfo) if isinstance(pool.conninfo, str) else "(pool)"
        self._core = core = PgCore(pool)
        if local is not None:
            # The clone's own namespaces are written by its file store: one registry for both.
            core.validators = local.store.validators
        self.validators = core.validators
        self._tasks = PgTasks(core)
        self._claims = PgClaims(core)
        self._sessions = PgSessions(core)
        self._snapshots = PgSnapshots(core, self._tasks, self._sessions)
        self._records = PgRecords(core)
        self._upkeep = PgUpkeep(core)
        self._history = PgHistory(core)
        self._health = PgHealth(core, self._where)
        self._transactions = PgTransactions(core)
        self._listener = PgListener(str(pool.conninfo), core.origin, core.notify)

    @classmethod
    async def connect(
        cls, dsn: str | None = None, *, local: LocalRecords | None = None, **pool_options: Any
    ) -> Self:
        """A store on the database ``dsn`` names (libpq's defaults when None), its schema
        migrated; ``StateError`` naming the server when it cannot be reached. ``local`` keeps
        one clone's own record namespaces on its own disk (``state.local_records``)."""
        return cls(await open_pool(dsn, **pool_options), local)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        try:
            try:
                await self._core.close_events()
                await self._call(self._core.store_emitted)  # what no transaction carried
            except (StoreUnavailable, psycopg.Error) as exc:
                log.warning("the last events were not stored: %s", exc)
            finally:
                await self._listener.aclose()
        finally:
            try:
                await self._core.pool.close()
            finally:
                if self._local is not None:
                    await self._local.store.aclose()

    # -- sessions and checkpoints -----------------------------------------------------------

    async def create_session(
        self,
        options: Mapping[str, Any],
        tasks: Sequence[TaskInit],
        session_id: str | None = None,
        *,
        listed: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> SessionRecord:
        return await self._call(
            lambda: self._sessions.create_session(
                options, tasks, session_id, listed=listed, metadata=metadata
            )
        )

    async def add_session_tasks(self, session_id: str, tasks: Sequence[TaskInit]) -> int:
        return await self._call(lambda: self._sessions.add_session_tasks(session_id, tasks))

    async def get_session(self, session_id: str, *, metrics: bool = True) -> SessionRecord | None:
        return await self._call(lambda: self._sessions.get_session(session_id, metrics=metrics))

    async def update_session(
        self,
        session_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        metrics: bool = True,
    ) -> SessionRecord:
        return await self._call(
            lambda: self._sessions.update_session(
                session_id, updates, expected_version, metrics=metrics
            )
        )

    async def get_active_sessions(self) -> list[SessionRecord]:
        return await self._call(lambda: self._sessions.get_active_sessions())

    async def list_sessions(self, *, metrics: bool = True) -> list[SessionRecord]:
        return await self._call(lambda: self._sessions.list_sessions(metrics=metrics))

    async def recover_session(self, session_id: str, *, force: bool = False) -> SessionSnapshot:
        async def clock() -> datetime:
            async with self._core.tx() as conn:
                return await self._core.now(conn)

        now = await self._call(clock)
        return await recover_session(self, session_id, force=force, now=now)

    async def cleanup_old_sessions(self, days: float) -> int:
        return await self._call(lambda: self._sessions.cleanup_old_sessions(days))

    async def create_checkpoint(
        self,
        session_id: str,
        reason: str,
        *,
        known: Mapping[str, TaskState] | None = None,
        session: SessionRecord | None = None,
    ) -> CheckpointInfo:
        # ``known`` and ``session`` are not used: the rows are read whatever the caller holds.
        return await self._call(lambda: self._snapshots.create_checkpoint(session_id, reason))

    async def list_checkpoints(self, session_id: str | None = None) -> list[CheckpointInfo]:
        return await self._call(lambda: self._snapshots.list_checkpoints(session_id))

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        return await self._call(lambda: self._snapshots.get_checkpoint(checkpoint_id))

    async def restore_checkpoint(self, checkpoint_id: str) -> SessionSnapshot:
        return await self._call(lambda: self._snapshots.restore_checkpoint(checkpoint_id))

    # -- keyed records of other layers ------------------------------------------------------

    async def get_record(self, namespace: str, key: str) -> KeyedRecord | None:
        if self._local is not None and self._local.owns(namespace):
            return await self._local.store.get_record(namespace, key)
        return await self._call(lambda: self._records.get_record(namespace, key))

    async def put_record(
        self,
        namespace: str,
        key: str,
        data: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        durable: bool = True,
        ttl: float | None = None,
    ) -> KeyedRecord:
        if self._local is not None and self._local.owns(namespace):
            return await self._local.store.put_record(
                namespace, key, data, expected_version, durable=durable, ttl=ttl
            )
        return await self._call(
            lambda: self._records.put_record(
                namespace, key, data, expected_version, durable=durable, ttl=ttl
            )
        )

    async def put_made_record(
        self,
        namespace: str,
        key: str,
        make: Callable[[], tuple[Mapping[str, Any], T]],
        expected_version: int | None = None,
        *,
        durable: bool = True,
        ttl: float | None = None,
    ) -> tuple[KeyedRecord, T]:
        if self._local is not None and self._local.owns(namespace):
            return await self._local.store.put_made_record(
                namespace, key, make, expected_version, durable=durable, ttl=ttl
            )
        data, rest = await anyio.to_thread.run_sync(make)  # the query itself needs no thread
        record = await self.put_record(
            namespace, key, data, expected_version, durable=durable, ttl=ttl
        )
        return record, rest

    async def put_made_record_and_task(
        self,
        namespace: str,
        key: str,
        make: Callable[[], tuple[Mapping[str, Any], T]],
        task_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        fencing_token: int | None = None,
        record_version: int | None = None,
    ) -> tuple[KeyedRecord, T, TaskState]:
        if self._local is not None and self._local.owns(namespace):  # two stores: in turn
            record, rest = await self._local.store.put_made_record(
                namespace, key, make, record_version
            )
            state = await self.update_task_state(
                task_id, updates, expected_version, fencing_token=fencing_token
            )
            return record, rest, state
        data, rest = await anyio.to_thread.run_sync(make)  # the query itself needs no thread
        record, state = await self._call(
            lambda: record_and_task(
                self._core,
                namespace,
                key,
                data,
                task_id,
                updates,
                expected_version=expected_version,
                fencing_token=fencing_token,
                record_version=record_version,
            )
        )
        return record, rest, state

    put_made_record_and_task_carrying = put_and_task_in_turn  # one call after another
    release_claim_then_delete_made = release_then_delete_in_turn  # (the same)

    async def put_made_record_then(
        self,
        namespace: str,
        key: str,
        make: Callable[[], tuple[Mapping[str, Any], T]],
        then: Callable[[T], U],
        expected_version: int | None = None,
        *,
        durable: bool = True,
        ttl: float | None = None,
    ) -> tuple[KeyedRecord, T, U]:
        if self._local is not None and self._local.owns(namespace):
            return await self._local.store.put_made_record_then(
                namespace, key, make, then, expected_version, durable=durable, ttl=ttl
            )
        record, rest = await self.put_made_record(
            namespace, key, make, expected_version, durable=durable, ttl=ttl
        )
        return record, rest, await anyio.to_thread.run_sync(then, rest)

    async def put_made_record_while(
        self,
        namespace: str,
        key: str,
        make: Callable[[], tuple[Mapping[str, Any], T]],
        then: Callable[[T], U],
        over: Callable[[U], bool],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> tuple[KeyedRecord, T, U, bool]:
        if self._local is not None and self._local.owns(namespace):
            return await self._local.store.put_made_record_while(
                namespace, key, make, then, over, expected_version, durable=durable
            )
        record, rest, answer = await self.put_made_record_then(
            namespace, key, make, then, expected_version, durable=durable
        )
        if not over(answer):
            return record, rest, answer, False
        try:  # a delete of its own: the query needs no worker thread
            deleted = await self.delete_record(namespace, key, record.version, durable=durable)
        except (CouncilError, OSError) as exc:  # the work is done: its answer stands
            log.warning("record %s/%s could not be deleted: %s", namespace, key, exc)
            return record, rest, answer, False
        return record, rest, answer, deleted

    async def delete_record(
        self,
        namespace: str,
        key: str,
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> bool:
        if self._local is not None and self._local.owns(namespace):
            local = self._local.store
            return await local.delete_record(namespace, key, expected_version, durable=durable)
        return await self._call(
            lambda: self._records.delete_record(namespace, key, expected_version, durable=durable)
        )

    async def delete_records(self, items: Sequence[Deletion]) -> list[bool]:
        wanted = checked(items)
        local = self._local
        if local is None or not any(local.owns(item.namespace) for item in wanted):
            return await self._call(lambda: self._records.delete_records(wanted))
        # The clone's own namespaces are deleted in its file store, the rest here.
        mine = [item for item in wanted if local.owns(item.namespace)]
        shared = [item for item in wanted if not local.owns(item.namespace)]
        found = dict(zip(mine, await local.store.delete_records(mine), strict=True))
        if shared:
            answer = await self._call(lambda: self._records.delete_records(shared))
            found.update(zip(shared, answer, strict=True))
        return [found[item] for item in wanted]

    async def put_and_delete_records(
        self, puts: Sequence[CarriedPut], deletions: Sequence[Deletion] = ()
    ) -> tuple[list[KeyedRecord | None], list[bool]]:
        def shared(puts: list[CarriedPut], gone: list[Deletion]) -> Awaitable[Written]:
            return self._call(lambda: self._records.put_and_delete_records(puts, gone))

        if self._local is None:
            return await shared(list(puts), list(deletions))
        return await self._local.put_and_delete_records(puts, deletions, shared)

    async def delete_made_records(
        self, make: Callable[[], tuple[Sequence[Deletion], T]]
    ) -> tuple[list[bool], T]:
        items, rest = await anyio.to_thread.run_sync(make)  # the query itself needs no thread
        return await self.delete_records(items), rest

    async def delete_record_after(
        self,
        namespace: str,
        key: str,
        first: Callable[[], T],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> tuple[bool, T]:
        if self._local is not None and self._local.owns(namespace):
            return await self._local.store.delete_record_after(
                namespace, key, first, expected_version, durable=durable
            )
        done = await anyio.to_thread.run_sync(first)  # the query itself needs no thread
        return await self.delete_record(namespace, key, expected_version, durable=durable), done

    async def list_records(self, namespace: str) -> list[KeyedRecord]:
        if self._local is not None and self._local.owns(namespace):
            return await self._local.store.list_records(namespace)
        return await self._call(lambda: self._records.list_records(namespace))

    # -- events and upkeep ------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        self._core.subscribe(subscriber)
        self._listener.start()  # outside the event loop it starts with ``listen()``

    async def listen(self) -> None:
        """Hear other workstations' writes from now on: returns once the listening connection
        is in place (it waits while the database cannot be reached: bring a deadline)."""
        await self._listener.listening()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._core.unsubscribe(subscriber)

    async def emit(self, event: Event) -> None:
        await self._core.emit(event)  # stored with the next transaction (``core``)

    async def identity(self) -> str | None:
        return await self._call(lambda: self._upkeep.identity())

    async def verify_records(self) -> list[RecordProblem]:
        return await self._call(lambda: self._upkeep.verify_records())

    async def clean_stale_locks(self) -> int:
        return await self._call(lambda: self._upkeep.clean_stale_locks())

    # -- history ----------------------------------------------------------------------------

    async def record_history(
        self,
        kind: str,
        key: str,
        *,
        limit: int | None = None,
        before_version: int | None = None,
    ) -> list[dict[str, Any]]:
        local = self._local
        if local is not None and kind.startswith("records/") and local.owns(kind[8:]):
            return await local.store.record_history(
                kind, key, limit=limit, before_version=before_version
            )
        return await self._call(
            lambda: self._history.record_history(
                kind, key, limit=limit, before_version=before_version
            )
        )

    # -- ttl --------------------------------------------------------------------------------

    async def purge_expired(self, now: datetime | None = None) -> int:
        purged = await self._local.store.purge_expired(now) if self._local is not None else 0
        return purged + await self._call(lambda: self._records.purge_expired(now))

    # -- health -----------------------------------------------------------------------------

    async def health(self, *, large_record_bytes: int = DEFAULT_LARGE_RECORD_BYTES) -> StoreHealth:
        return await self._call(lambda: self._health.health(large_record_bytes))

    # -- transactions -----------------------------------------------------------------------

    async def write_many(self, writes: Sequence[RecordWrite]) -> Committed:
        local = self._local
        for write in writes:
            if (
                isinstance(write, PutRecord | DeleteRecord)
                and local
                and local.owns(write.namespace)
            ):
                # Kept on this clone's disk: no database transaction can take it along.
                raise StateError(
                    f"records of namespace {write.namespace!r} are kept on this workstation's "
                    "disk and cannot be part of a transaction of the shared store"
                )
        return await self._call(lambda: self._transactions.write_many(writes))

    # -- watch ------------------------------------------------------------------------------

    async def wait_for_update(
        self, ref: RecordRef[R], after_version: int, timeout: float | None = None
    ) -> R | None:
        namespace = ref.namespace
        if self._local is not None and namespace is not None and self._local.owns(namespace):
            keyed = RecordRef.record(namespace, ref.key)
            found = await self._local.store.wait_for_update(keyed, after_version, timeout)
            assert found is None or isinstance(found, ref.model)
            return found
        return await wait_for_update(self, self.watch(ref.path), ref, after_version, timeout)

    def watch(self, pattern: str = "*") -> ChangeStream:
        """Changes as the listener hears them (``postgres.notice_changes``); those of a
        clone's own namespaces (``local``) are its file store's, watched there."""
        return ChangeStream(NoticeChanges(self._listener), pattern)
