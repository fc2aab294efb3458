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

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict

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
)
from orchestrator.state.carried import CarriedPut
from orchestrator.state.changes import ChangeStream, RecordRef
from orchestrator.state.claim_rules import ClaimUpdates, ReleaseFirst, ReleaseUpdates
from orchestrator.state.deletions import Deletion
from orchestrator.state.health import DEFAULT_LARGE_RECORD_BYTES, StoreHealth
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

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    key: str
    reason: str
    recovered: bool
    detail: str = ""


@runtime_checkable
class StateStore(Protocol):
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

    # -- keyed records of other layers --------------------------------------------------------

    async def get_record(self, namespace: str, key: str) -> KeyedRecord | None: ...

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
        """Replace the record's data (``expected_version=0``: only if it does not exist).

        ``durable=False`` is for records about live processes (lock owners, waits): the write
        is still atomic and visible to every process at once, but a machine crash may lose it,
        which is harmless because it also ended every process such a record describes.
        ``ttl`` (seconds): the record expires then (``expires_at``; ``state.expiry``): it reads
        as absent, to a compare-and-set too, and ``purge_expired`` removes it. A write
        without ``ttl`` makes the record last.
        """
        ...

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
        """``put_record`` of the data ``make`` returns, with the rest of its answer.

        ``make`` is blocking work (a file written, a process's start read) that the record
        describes: called once, before the write, in the worker-thread call that writes the
        record where the store makes one (the file store: one hop for both), else in a worker
        thread of its own. A ``make`` that raises writes nothing.
        """
        ...

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
        """``put_made_record`` (lasting, durable; ``record_version``: its compare-and-set),
        then ``update_task_state`` of ``task_id`` (durable; ``expected_version`` and
        ``fencing_token`` are the task's): one
        worker-thread call on the file store (the record's lock and the task's, in the global
        order of ``state.transactions``), one transaction on PostgreSQL (``make`` in a worker
        thread before it, as ``put_made_record``). Either's version or the task's fence
        refused, or a ``make`` that raises: nothing written (the file store checks the task before
        ``make``). The record is written before the task: a crash between them (file store)
        leaves the record without the task's write, as two calls in that order would."""
        ...

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
        """``put_made_record_and_task``, then each ``carried`` record (``state.carried``),
        in order, each written as ``make(current)`` gives it (None: not written): in the same
        worker-thread call on the file store (every lock taken before anything is written;
        the carried ``make`` run under its record's lock, after the call's own ``make`` and
        checks, before any write: what one raises writes nothing), else one call after
        another (``carried_in_turn.put_and_task_in_turn``). The written carried records, in order
        (None where nothing was). A crash leaves a prefix: the record, then the task, then
        the carried ones, as calls in that order would."""
        ...

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
        """``put_made_record``, then ``then`` (blocking) given the rest of ``make``'s answer,
        once the record is written (durable as asked): in the same worker-thread call where the
        store makes one (the file store: still under the record's lock; one hop for all),
        else in a worker thread of its own after the query. A ``then`` that raises leaves the
        record written, and its error is raised: for work the record must be ahead of (a
        session's worktree behind its record)."""
        ...

    async def delete_record(
        self,
        namespace: str,
        key: str,
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> bool:
        """Remove the record; False when there was none. A version mismatch raises."""
        ...

    async def delete_records(self, items: Sequence[Deletion]) -> list[bool]:
        """Remove several records in one store call (``state.deletions``), each as
        ``delete_record`` would: under its lock (file store: all of them in one worker-thread
        call when none is held elsewhere; PostgreSQL: one transaction). Every expected version
        is checked before any record goes: a mismatch raises ``VersionConflict`` and deletes
        none. For each, in order: whether it was there (False when there was none)."""
        ...

    async def delete_made_records(
        self, make: Callable[[], tuple[Sequence[Deletion], T]]
    ) -> tuple[list[bool], T]:
        """``delete_records`` of the deletions ``make`` returns, with the rest of its answer.

        ``make`` is blocking work whose outcome decides which records go (a worktree removed:
        its record): called once, first, in the worker-thread call that deletes them where
        the store makes one (the file store: one hop for both), else in a worker thread of
        its own. A ``make`` that raises deletes nothing; one naming none deletes nothing."""
        ...

    async def release_claim_then_delete_made(
        self, release: ReleaseFirst, make: Callable[[], tuple[Sequence[Deletion], T]]
    ) -> tuple[TaskState, list[bool], T]:
        """``release_claim`` as ``release`` says (``claim_rules.ReleaseFirst``), then
        ``delete_made_records(make)``, in that order: in one worker-thread call where the
        store can (the file store: the release under the task's lock, then ``make``, then the
        records under theirs, no lock held while another is taken), else the calls in turn.
        A refused release (``StaleClaim``) raises before ``make`` runs; a crash between
        leaves what the calls in turn would. The task released, what ``delete_made_records``
        gives."""
        ...

    async def delete_record_after(
        self,
        namespace: str,
        key: str,
        first: Callable[[], T],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> tuple[bool, T]:
        """``delete_record`` after ``first`` (blocking work that must be done before the
        record goes: a process's family swept, say), with ``first``'s answer: called once,
        before the record is looked at, in the worker-thread call that removes it where the
        store makes one (the file store: one hop for both), else in a worker thread of its own.
        A ``first`` that raises removes nothing."""
        ...

    async def list_records(self, namespace: str) -> list[KeyedRecord]: ...

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
