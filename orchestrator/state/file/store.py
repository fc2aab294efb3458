"""``FileStateStore``: the embedded state backend, versioned JSON records on local disk.

It implements the ``StateStore`` protocol by handing each call to the part that owns it, all
over one ``FileCore`` (layout, record kinds, locks, worker threads, events): ``FileTasks``,
``FileClaims``, ``FileSessions``, ``FileSnapshots`` (checkpoints, recovery), ``FileRecords``
(other layers' keyed records), ``FileUpkeep`` and ``FileTransactions`` (several records
written all or nothing). Safe across threads, tasks and OS processes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Self, TypeVar

import anyio.to_thread
from pydantic import BaseModel

from orchestrator.events import Event, Subscriber
from orchestrator.models import (
    Checkpoint,
    CheckpointInfo,
    Claim,
    ClaimStatus,
    KeyedRecord,
    SessionRecord,
    SessionSnapshot,
    TaskState,
    utcnow,
)
from orchestrator.state.carried import CarriedPut
from orchestrator.state.changes import ChangeStream, RecordRef
from orchestrator.state.claim_rules import ClaimUpdates, ReleaseFirst, ReleaseUpdates
from orchestrator.state.deletions import Deletion
from orchestrator.state.file.claims import FileClaims
from orchestrator.state.file.core import FileCore
from orchestrator.state.file.fsops import FileOperations
from orchestrator.state.file.health import FileHealth
from orchestrator.state.file.history import FileHistory
from orchestrator.state.file.identity import store_identity
from orchestrator.state.file.keyed import FileRecords
from orchestrator.state.file.keyed_batch import put_and_delete_records
from orchestrator.state.file.log.event_log import DEFAULT_ROTATE_BYTES
from orchestrator.state.file.log.log_changes import LogChanges
from orchestrator.state.file.record_task import put_made_record_and_task
from orchestrator.state.file.record_task_carrying import put_made_record_and_task_carrying
from orchestrator.state.file.release_then_delete import release_then_delete
from orchestrator.state.file.sessions import FileSessions
from orchestrator.state.file.snapshots import FileSnapshots
from orchestrator.state.file.task_batches import FileTaskBatches
from orchestrator.state.file.tasks import FileTasks
from orchestrator.state.file.transactions import FileTransactions
from orchestrator.state.file.upkeep import FileUpkeep
from orchestrator.state.health import DEFAULT_LARGE_RECORD_BYTES, StoreHealth
from orchestrator.state.protocol import RecordProblem, TaskInit
from orchestrator.state.protocol.task_changes import TaskChanges
from orchestrator.state.recovery import recover_session
from orchestrator.state.transactions import Committed, RecordWrite
from orchestrator.state.waiting import wait_for_update

__all__ = ["FileStateStore"]

R = TypeVar("R", bound=BaseModel)
T = TypeVar("T")
U = TypeVar("U")


class FileStateStore:
    """The file backend of ``StateStore`` (module doc)."""

    def __init__(
        self,
        root: Path | str,
        *,
        events_path: Path | str | None = None,
        history_limit: int = 10,
        checkpoint_limit: int = 20,
        lock_timeout: float = 10.0,
        file_ops: FileOperations | None = None,
        anchor: Path | str | None = None,
        events_rotate_bytes: int | None = DEFAULT_ROTATE_BYTES,
    ) -> None:
        self.core = core = FileCore(
            root,
            events_path=events_path,
            history_limit=history_limit,
            checkpoint_limit=checkpoint_limit,
            lock_timeout=lock_timeout,
            file_ops=file_ops,
            anchor=anchor,
            events_rotate_bytes=events_rotate_bytes,
        )
        # What tests and tools look at directly: where it lives, its record kinds, its log.
        self.root, self.events = core.root, core.events
        self.tasks, self.sessions, self.counters = core.tasks, core.sessions, core.counters
        self.checkpoints = core.checkpoints
        self.validators = core.validators
        self._tasks = FileTasks(core)
        self._claims = FileClaims(core)
        self._sessions = FileSessions(core, self._tasks)
        self._snapshots = FileSnapshots(core, self._tasks, self._sessions)
        self._records = FileRecords(core)
        self._upkeep = FileUpkeep(core)
        self._history = FileHistory(core)
        self._health = FileHealth(core)
        self._transactions = FileTransactions(core)
        self._batches = FileTaskBatches(core)

    @classmethod
    def for_repo(cls, repo: Path | str, **kwargs: Any) -> Self:
        """The store of a repository: ``.council/state/``, events in ``.council/events.jsonl``;
        no link anywhere below the repository is followed."""
        council = Path(repo) / ".council"
        kwargs.setdefault("anchor", repo)
        return cls(council / "state", events_path=council / "events.jsonl", **kwargs)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self.core.events.close()
        self.core.ops.close_dirs()  # the directories' descriptors the store kept

    # -- tasks and claims -------------------------------------------------------------------

    async def get_task_state(self, task_id: str) -> TaskState | None:
        return await self._tasks.get_task_state(task_id)

    async def get_task_states(self, task_ids: Sequence[str]) -> list[TaskState]:
        return await self._tasks.get_task_states(task_ids)

    async def update_task_state(
        self,
        task_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        fencing_token: int | None = None,
        durable: bool = True,
    ) -> TaskState:
        return await self._tasks.update_task_state(
            task_id, updates, expected_version, fencing_token=fencing_token, durable=durable
        )

    async def list_tasks(self, session_id: str | None = None) -> list[TaskState]:
        return await self._tasks.list_tasks(session_id)

    async def list_tasks_changed(
        self, session_id: str, held: Mapping[str, TaskState]
    ) -> TaskChanges:
        return await self._tasks.list_tasks_changed(session_id, held)

    async def task_history(self, task_id: str) -> list[TaskState]:
        return await self._tasks.task_history(task_id)

    async def acquire_claim(
        self,
        task_id: str,
        holder: str,
        lease_seconds: float,
        updates: Mapping[str, Any] | ClaimUpdates | None = None,
        *,
        expected_version: int | None = None,
    ) -> Claim | None:
        return await self._claims.acquire_claim(
            task_id, holder, lease_seconds, updates, expected_version=expected_version
        )

    async def renew_claim(self, task_id: str, token: int, lease_seconds: float) -> Claim:
        return await self._claims.renew_claim(task_id, token, lease_seconds)

    async def release_claim(
        self,
        task_id: str,
        token: int,
        status: ClaimStatus = ClaimStatus.COMPLETED,
        updates: Mapping[str, Any] | ReleaseUpdates | None = None,
    ) -> TaskState:
        return await self._claims.release_claim(task_id, token, status, updates)

    async def sweep_expired_claims(self, now: datetime | None = None) -> list[Claim]:
        return await self._claims.sweep_expired_claims(now)

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
        return await self._sessions.create_session(
            options, tasks, session_id, listed=listed, metadata=metadata
        )

    async def add_session_tasks(self, session_id: str, tasks: Sequence[TaskInit]) -> int:
        return await self._batches.add_session_tasks(session_id, tasks)

    async def get_session(self, session_id: str, *, metrics: bool = True) -> SessionRecord | None:
        return await self._sessions.get_session(session_id, metrics=metrics)

    async def update_session(
        self,
        session_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        metrics: bool = True,
    ) -> SessionRecord:
        return await self._sessions.update_session(
            session_id, updates, expected_version, metrics=metrics
        )

    async def get_active_sessions(self) -> list[SessionRecord]:
        return await self._sessions.get_active_sessions()

    async def list_sessions(self, *, metrics: bool = True) -> list[SessionRecord]:
        return await self._sessions.list_sessions(metrics=metrics)

    async def recover_session(self, session_id: str, *, force: bool = False) -> SessionSnapshot:
        return await recover_session(self, session_id, force=force, now=utcnow())

    async def cleanup_old_sessions(self, days: float) -> int:
        return await self._sessions.cleanup_old_sessions(days)

    async def create_checkpoint(
        self,
        session_id: str,
        reason: str,
        *,
        known: Mapping[str, TaskState] | None = None,
        session: SessionRecord | None = None,
    ) -> CheckpointInfo:
        return await self._snapshots.create_checkpoint(session_id, reason, known, session)

    async def list_checkpoints(self, session_id: str | None = None) -> list[CheckpointInfo]:
        return await self._snapshots.list_checkpoints(session_id)

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        return await self._snapshots.get_checkpoint(checkpoint_id)

    async def restore_checkpoint(self, checkpoint_id: str) -> SessionSnapshot:
        return await self._snapshots.restore_checkpoint(checkpoint_id)

    # -- keyed records of other layers ------------------------------------------------------

    async def get_record(self, namespace: str, key: str) -> KeyedRecord | None:
        return await self._records.get_record(namespace, key)

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
        return await self._records.put_record(
            namespace, key, data, expected_version, durable=durable, ttl=ttl
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
        return await self._records.put_made_record(
            namespace, key, make, expected_version, durable=durable, ttl=ttl
        )

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
        return await put_made_record_and_task(
            self.core,
            namespace,
            key,
            make,
            task_id,
            updates,
            fencing_token=fencing_token,
            expected_version=expected_version,
            record_version=record_version,
            durable=True,
        )

    async def put_made_record_and_task_carrying(
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
        carried: Sequence[CarriedPut] = (),
    ) -> tuple[KeyedRecord, T, TaskState, list[KeyedRecord | None]]:
        return await put_made_record_and_task_carrying(
            self.core, namespace, key, make, task_id, updates,
            fencing_token=fencing_token, expected_version=expected_version,
            record_version=record_version, carried=carried,
        )  # fmt: skip

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
        return await self._records.put_made_record_then(
            namespace, key, make, then, expected_version, durable=durable, ttl=ttl
        )

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
        return await self._records.put_made_record_while(
            namespace, key, make, then, over, expected_version, durable=durable
        )

    async def delete_record(
        self,
        namespace: str,
        key: str,
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> bool:
        return await self._records.delete_record(namespace, key, expected_version, durable=durable)

    async def delete_records(self, items: Sequence[Deletion]) -> list[bool]:
        return await self._records.delete_records(items)

    async def put_and_delete_records(
        self, puts: Sequence[CarriedPut], deletions: Sequence[Deletion] = ()
    ) -> tuple[list[KeyedRecord | None], list[bool]]:
        return await put_and_delete_records(self.core, puts, deletions)

    async def delete_made_records(
        self, make: Callable[[], tuple[Sequence[Deletion], T]]
    ) -> tuple[list[bool], T]:
        return await self._records.delete_made_records(make)

    async def release_claim_then_delete_made(
        self, release: ReleaseFirst, make: Callable[[], tuple[Sequence[Deletion], T]]
    ) -> tuple[TaskState, list[bool], T]:
        return await release_then_delete(self.core, release, make)

    async def delete_record_after(
        self,
        namespace: str,
        key: str,
        first: Callable[[], T],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> tuple[bool, T]:
        return await self._records.delete_record_after(
            namespace, key, first, expected_version, durable=durable
        )

    async def list_records(self, namespace: str) -> list[KeyedRecord]:
        return await self._records.list_records(namespace)

    def list_records_now(self, namespace: str) -> list[KeyedRecord] | None:
        """``list_records`` as a blocking read, for a worker-thread call the caller makes
        anyway (``state.context.ListsNow``): the same lock-free read; None when it cannot be
        made without a call of the store's own (a dead process's transaction to finish, a
        damaged record to recover, the store's first call not made yet)."""
        return self._records.list_records_now(namespace)

    # -- events and upkeep ------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        self.core.subscribe(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.core.unsubscribe(subscriber)

    async def emit(self, event: Event) -> None:
        await self.core.emit(event)

    async def identity(self) -> str | None:
        core = self.core
        return await anyio.to_thread.run_sync(store_identity, core.root, core.ops)

    async def verify_records(self) -> list[RecordProblem]:
        return await self._upkeep.verify_records()

    async def clean_stale_locks(self) -> int:
        return await self._upkeep.clean_stale_locks()

    # -- history ----------------------------------------------------------------------------

    async def record_history(
        self,
        kind: str,
        key: str,
        *,
        limit: int | None = None,
        before_version: int | None = None,
    ) -> list[dict[str, Any]]:
        return await self._history.record_history(
            kind, key, limit=limit, before_version=before_version
        )

    # -- ttl --------------------------------------------------------------------------------

    async def purge_expired(self, now: datetime | None = None) -> int:
        return await self._records.purge_expired(now)

    # -- health -----------------------------------------------------------------------------

    async def health(self, *, large_record_bytes: int = DEFAULT_LARGE_RECORD_BYTES) -> StoreHealth:
        return await self._health.health(large_record_bytes)

    # -- transactions -----------------------------------------------------------------------

    async def write_many(self, writes: Sequence[RecordWrite]) -> Committed:
        return await self._transactions.write_many(writes)

    # -- watch ------------------------------------------------------------------------------

    async def wait_for_update(
        self, ref: RecordRef[R], after_version: int, timeout: float | None = None
    ) -> R | None:
        return await wait_for_update(self, self.watch(ref.path), ref, after_version, timeout)

    def watch(self, pattern: str = "*") -> ChangeStream:
        """Changes as any process appends them to the event log (``file.log.log_changes``)."""
        return ChangeStream(LogChanges(self.core.events.path), pattern)
