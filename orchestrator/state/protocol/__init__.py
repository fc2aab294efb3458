"""The state store contract every backend implements (the file backend now, PostgreSQL later).

Rules every backend keeps, checked by ``orchestrator.testing.state_contract``:

- Records are versioned. Each write bumps ``version`` by one and stamps ``updated_at``;
  ``expected_version`` (0 meaning "must not exist yet") turns a write into a compare-and-set
  that raises ``VersionConflict`` when someone else wrote first.
- Claims are leases with fencing tokens. A token is larger than every token issued before it
  for the same task; a write carrying ``fencing_token`` succeeds only while that token is the
  task's active claim, so a holder whose lease lapsed and was swept can no longer write.
- Session metrics are the store's to compute: they follow every change of a member task.
- A damaged record is never silently reset: it is recovered from history with a warning event,
  or ``StateCorrupted`` is raised naming the record and the way out.
- Events (``state.updated``, ``session.created``, ``checkpoint.created``, ...) reach every
  subscriber of the store that wrote them; a failing subscriber never fails the write. A
  backend several processes share (PostgreSQL) also hands its subscribers the task writes of
  other processes (``state.updated``, kind ``tasks``, ``data["remote"]`` true) and
  ``state.resync`` when some may have gone unheard; a subscriber must not expect more.
- Watchers hear every record write of every process sharing the store, their own included:
  ``wait_for_update`` returns a record once it is past a version, ``watch`` streams the
  writes whose path matches a pattern (``state.changes``, ``state.waiting``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict

from orchestrator.events import Event, Subscriber
from orchestrator.models import (
    Checkpoint,
    CheckpointInfo,
    Claim,
    ClaimStatus,
    SessionRecord,
    SessionSnapshot,
    TaskState,
)
from orchestrator.state.changes import ChangeStream, RecordRef
from orchestrator.state.claim_rules import ClaimUpdates, ReleaseUpdates
from orchestrator.state.health import DEFAULT_LARGE_RECORD_BYTES, StoreHealth
from orchestrator.state.protocol.records import RecordStore
from orchestrator.state.protocol.task_changes import TaskChanges
from orchestrator.state.transactions import Committed, RecordWrite
from orchestrator.state.validators import Validators

__all__ = ["RecordProblem", "StateStore", "TaskInit"]

R = TypeVar("R", bound=BaseModel)
T = TypeVar("T")
U = TypeVar("U")

TaskInit = str | Mapping[str, Any]
"""A task given to ``create_session``: its id, or a mapping of initial fields with ``task_id``."""


class RecordProblem(BaseModel):
    """A damaged record found by ``verify_records``, and what became of it."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    kind: str
    key: str
    reason: str
    recovered: bool
    detail: str = ""


@runtime_checkable
class StateStore(RecordStore, Protocol):
    # -- tasks ------------------------------------------------------------------------------

    async def get_task_state(self, task_id: str) -> TaskState | None:
        """The task's current state, or None if the store has never seen it."""
        ...

    async def get_task_states(self, task_ids: Sequence[str]) -> list[TaskState]:
        """The tasks of ``task_ids`` that have a record, in that order, read in one trip to the
        store (one worker-thread call, one query), each as ``get_task_state`` reads it."""
        ...

    async def update_task_state(
        self,
        task_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        fencing_token: int | None = None,
        durable: bool = True,
    ) -> TaskState:
        """Merge ``updates`` (top-level fields) into the task, creating it if absent.

        ``durable=False`` keeps the write atomic but need not survive a machine crash (for
        what a crash makes moot anyway, like a phase marked started)."""
        ...

    async def list_tasks(self, session_id: str | None = None) -> list[TaskState]: ...

    async def list_tasks_changed(
        self, session_id: str, held: Mapping[str, TaskState]
    ) -> TaskChanges:
        """``list_tasks(session_id)`` for a caller holding ``held`` (task id -> the record it
        holds, as a read of this store gave it, or a write's result): the ids of the session's
        tasks with a record, in that order, and the records of those whose version the caller
        does not hold, read; a record held as it is now is not read again (``task_changes``:
        the file store stats it, PostgreSQL compares in its one query). Exact:
        ``changes.states(held)`` is what ``list_tasks`` gives at that moment."""
        ...

    async def task_history(self, task_id: str) -> list[TaskState]:
        """Earlier versions still kept, newest first."""
        ...

    # -- claims -----------------------------------------------------------------------------

    async def acquire_claim(
        self,
        task_id: str,
        holder: str,
        lease_seconds: float,
        updates: Mapping[str, Any] | ClaimUpdates | None = None,
        *,
        expected_version: int | None = None,
    ) -> Claim | None:
        """Lease the task to ``holder`` (applying ``updates`` in the same write), or None when
        someone holds a live claim on it, or, with ``expected_version``, when the task was
        written since that version was read (another workstation ran or ended it meanwhile).
        A holder that already holds a live claim on the task keeps it, renewed. ``updates``
        may be a function of the task as found under the claim's lock (``ClaimUpdates``):
        the caller's read and its claim in one step, refused when it gives None; as
        ``claim_rules.ClaimUpdatesTold``, it is then told the task the claim wrote."""
        ...

    async def renew_claim(self, task_id: str, token: int, lease_seconds: float) -> Claim: ...

    async def release_claim(
        self,
        task_id: str,
        token: int,
        status: ClaimStatus = ClaimStatus.COMPLETED,
        updates: Mapping[str, Any] | ReleaseUpdates | None = None,
    ) -> TaskState:
        """Let the claim of ``token`` go as ``status`` (completed or abandoned), writing
        ``updates`` with it: a mapping, or a function of the task as found under the claim's
        lock (``ReleaseUpdates``: the holder's read and its last write in one step). A token
        that is not the task's live claim is refused (``StaleClaim``)."""
        ...

    async def sweep_expired_claims(self, now: datetime | None = None) -> list[Claim]:
        """Mark every active claim past its lease as expired; return those claims."""
        ...

    # -- sessions ---------------------------------------------------------------------------

    async def create_session(
        self,
        options: Mapping[str, Any],
        tasks: Sequence[TaskInit],
        session_id: str | None = None,
        *,
        listed: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> SessionRecord:
        """A new session recording ``tasks``; ``listed``: more task ids it lists from its
        creation on, recorded later (``add_session_tasks``); ``metadata``: its metadata from
        its creation on (one write of a session that lists 10,000 tasks, not two)."""
        ...

    async def add_session_tasks(self, session_id: str, tasks: Sequence[TaskInit]) -> int:
        """Record ``tasks``, which session ``session_id`` lists (its ``task_ids``), as its
        tasks (queued, with their initial fields), as one batch: one durable write on the
        file backend, one transaction on PostgreSQL, whatever the batch's size. A task this
        session already records is left as it is (a batch cut short and given again records
        each task once); one that another active or interrupted session holds refuses the
        whole batch (``TaskInActiveSession``). How many were recorded now.

        A run of many tasks creates its session listing them all, then records them in
        batches: the session is on record (and shown by ``council status``) before the first
        task is, and dispatch starts while the rest are still being written."""
        ...

    async def get_session(self, session_id: str, *, metrics: bool = True) -> SessionRecord | None:
        """The session; with ``metrics=False`` its ``metrics`` are not computed from its tasks
        (they may be stale or empty), for a caller that does not read them: computing them
        reads every task of the session, 10,000 records for a run of 10,000 tasks."""
        ...

    async def update_session(
        self,
        session_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        metrics: bool = True,
    ) -> SessionRecord:
        """The session's next version with ``updates``; ``metrics`` as for ``get_session``."""
        ...

    async def get_active_sessions(self) -> list[SessionRecord]: ...

    async def list_sessions(self, *, metrics: bool = True) -> list[SessionRecord]:
        """Every session the store keeps, oldest first; with ``metrics=False`` their
        ``metrics`` are not computed from their tasks (they may be stale or empty), for a
        caller that only picks a session: computing them reads every task of every session."""
        ...

    async def recover_session(self, session_id: str, *, force: bool = False) -> SessionSnapshot:
        """Bring a session whose orchestrator died back to a resumable state."""
        ...

    async def cleanup_old_sessions(self, days: float) -> int:
        """Remove finished sessions (their tasks and checkpoints) older than ``days``."""
        ...

    # -- checkpoints ------------------------------------------------------------------------

    async def create_checkpoint(
        self,
        session_id: str,
        reason: str,
        *,
        known: Mapping[str, TaskState] | None = None,
        session: SessionRecord | None = None,
    ) -> CheckpointInfo:
        """A checkpoint of the session and every task of it as stored now. ``known``: task
        records the caller holds (a run's view of them, by task id), ``session``: the session's
        record it holds (as its last write returned it); a backend may take one for the stored
        record it is exactly (the file store compares the file's bytes), never for a record
        another writer changed; the checkpoint may hold the very instances."""
        ...

    async def list_checkpoints(self, session_id: str | None = None) -> list[CheckpointInfo]: ...

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint: ...

    async def restore_checkpoint(self, checkpoint_id: str) -> SessionSnapshot: ...

    # -- events and upkeep ------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None: ...

    def unsubscribe(self, subscriber: Subscriber) -> None: ...

    async def emit(self, event: Event) -> None:
        """Record an event of another layer in the log and hand it to subscribers."""
        ...

    async def identity(self) -> str | None:
        """What identifies the store's data, the same until the data is deleted (and made
        again): a run compares it with the one it started with to tell its state was deleted
        beneath it. None when the store's data is gone and asking does not make it again."""
        ...

    async def verify_records(self) -> list[RecordProblem]: ...

    async def clean_stale_locks(self) -> int: ...

    async def aclose(self) -> None: ...

    # -- history --
    # A record's versions leaving its recent window are compacted into a compressed archive
    # (``state.history_archive``), never dropped, so every version stays readable.

    async def record_history(
        self,
        kind: str,
        key: str,
        *,
        limit: int | None = None,
        before_version: int | None = None,
    ) -> list[dict[str, Any]]:
        """Every version the store has of a record, newest first (the current one first),
        each the whole document as stored (JSON-shaped, secrets masked): only versions below
        ``before_version`` (to page back), at most ``limit``. ``kind`` is ``tasks``,
        ``sessions``, ``counters`` or ``records/<namespace>``; [] for a record never written
        (a backend without counter records has no history for them either)."""
        ...

    # -- ttl --

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Remove every keyed record expired by ``now`` (the store's clock when None), its
        history with it; how many were removed."""
        ...

    # -- health -----------------------------------------------------------------------------

    async def health(self, *, large_record_bytes: int = DEFAULT_LARGE_RECORD_BYTES) -> StoreHealth:
        """How the store is doing now (``state.health``), read-only: record counts, damaged
        records, stale locks, the oldest active claim, records over ``large_record_bytes``,
        the event log's size, the newest checkpoint, and the backend's own figures."""
        ...

    # -- transactions -----------------------------------------------------------------------

    async def write_many(self, writes: Sequence[RecordWrite]) -> Committed:
        """Apply every write (task updates, session updates, keyed puts and deletes; each
        record at most once) or none: a ``VersionConflict``, ``StaleClaim``, missing session
        or invalid update in any one refuses them all, and a process that dies in the middle
        leaves all applied or none. Events follow only the commit. ``transaction(store)``
        (``state.transactions``) gathers the writes in an ``async with`` block."""
        ...

    # -- watch ------------------------------------------------------------------------------

    async def wait_for_update(
        self, ref: RecordRef[R], after_version: int, timeout: float | None = None
    ) -> R | None:
        """The record ``ref`` names once its version is above ``after_version`` (at once when
        it already is), written by this or any other process; None when ``timeout`` seconds
        pass first (``state.waiting``)."""
        ...

    def watch(self, pattern: str = "*") -> ChangeStream:
        """The changes (kind, key, version) of the records whose path (``tasks/<id>``,
        ``sessions/<id>``, ``records/<namespace>/<key>``) matches the glob ``pattern``, written
        by this or any other process, from when the stream is entered (``async with``) until
        it is left (``state.changes``)."""
        ...

    # -- record rules -----------------------------------------------------------------------

    @property
    def validators(self) -> Validators:
        """The rules every write must pass, checked before anything is written
        (``store.validators.add(RecordRule(...))``; ``state.validators``): a write that breaks
        one raises ``RecordRejected`` naming the rule."""
        ...
