"""The core of the file backend (``FileStateStore``): versioned JSON records on local disk.

Layout under ``root`` (default ``<repo>/.council/state/``)::

    tasks/<task-id>/           one versioned record each (see ``records``)
    sessions/<session-id>/
    counters/fencing/          the fencing-token sequence
    checkpoints/<id>.json      immutable snapshots of a session and its tasks
    quarantine/                damaged records, moved aside intact

An uncontended write is one worker-thread call (``locked_call``): it tries the record's lock
without blocking, reads, merges, writes, logs its events and lets go, so the event loop never
opens, locks or reads a file. When another holder has the lock, the call comes back empty and
the loop waits (async exponential backoff) before the next try. Reads take no lock: records
are replaced atomically, so a read sees one whole version (``peek``); only a record that reads
as damaged is loaded again under the exclusive lock, which also waits for a recovery under
way. Locks on different records are never held in a cycle: a task lock may be held while the
fencing counter is taken; a transaction (``transactions``) holds the locks of all its records,
taken in one global order (``state.transactions``) while holding no other; and nothing else
nests.

A transaction a process died in the middle of is finished (``intents``) before anything reads
or writes one of its records, by whoever gets there first (``settle``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from pydantic import BaseModel, ValidationError

from orchestrator import filelock
from orchestrator.errors import StateError
from orchestrator.events import Event, Subscriber
from orchestrator.events.state import StateUpdated
from orchestrator.filelock import LockWait
from orchestrator.ids import check_id
from orchestrator.models import Counter, KeyedRecord, SessionRecord, TaskState, utcnow
from orchestrator.state.file.checkpoints import CheckpointFiles
from orchestrator.state.file.fsops import FileOperations, FileOps
from orchestrator.state.file.intents import Intent, IntentEntry, IntentLog, replay, writer_alive
from orchestrator.state.file.lockfree import load_or_recover, peek, read_all_now, read_present
from orchestrator.state.file.log.event_log import DEFAULT_ROTATE_BYTES, EventLog
from orchestrator.state.file.record_files.codec import RecordDamaged
from orchestrator.state.file.record_files.layout import BATCHES, INTENTS, RECORDS, subdirectories
from orchestrator.state.file.record_files.records import RecordKind
from orchestrator.state.history_kinds import keyed_kind
from orchestrator.state.record_rules import STORE_OWNED
from orchestrator.state.validators import Validators

__all__ = ["FileCore", "load_or_recover", "peek", "subdirectories"]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class Busy:
    """What a try of ``locked_call`` gives when it could not go ahead."""

    def __init__(self, unsettled: bool) -> None:
        self.unsettled = unsettled  # a dead process's transaction touches the record


HELD = Busy(unsettled=False)
UNSETTLED = Busy(unsettled=True)


class FileCore:
    """What the file backend's parts share: record kinds, locks, worker threads, events."""

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
        self.root = Path(root)
        # Every file and lock of the store is reached from here without following a link.
        self.anchor = Path(anchor) if anchor is not None else self.root
        self.lock_timeout = lock_timeout
        self.history_limit = history_limit
        self.ops = ops = file_ops or FileOps()
        ops.confine(self.anchor)
        self._namespaces: dict[str, RecordKind[KeyedRecord]] = {}
        self.tasks = RecordKind(self.root, "tasks", TaskState, "task_id", ops, history_limit)
        self.sessions = RecordKind(
            self.root, "sessions", SessionRecord, "session_id", ops, history_limit
        )
        self.counters = RecordKind(self.root, "counters", Counter, "name", ops, history_limit)
        self.checkpoints = CheckpointFiles(self.root / "checkpoints", ops, checkpoint_limit)
        self._builtin_kinds: tuple[RecordKind[Any], ...] = (
            self.tasks,
            self.sessions,
            self.counters,
        )
        self.validators = Validators()
        self.events = EventLog(
            Path(events_path) if events_path else self.root / "events.jsonl",
            ops,
            rotate_bytes=events_rotate_bytes,
        )
        self.intents = IntentLog(self.root / INTENTS, ops)
        # A batch of new records (``task_batches``) keeps its intent apart: readers need not
        # wait for a batch under way (each of its records is whole, and stands on its own);
        # only one its process died in is finished, by the next process to open the store.
        self.batches = IntentLog(self.root / INTENTS / BATCHES, ops)
        self._settled_once = False

    def namespace(self, namespace: str) -> RecordKind[KeyedRecord]:
        kind = self._namespaces.get(namespace)
        if kind is None:
            check_id(namespace, "record namespace")
            kind = RecordKind(
                self.root / RECORDS, namespace, KeyedRecord, "key", self.ops, self.history_limit
            )
            self._namespaces[namespace] = kind
        return kind

    async def kinds(self) -> list[RecordKind[Any]]:
        """Every kind of record on disk: tasks, sessions, counters and each namespace."""
        names = await anyio.to_thread.run_sync(subdirectories, self.root / RECORDS)
        return [self.tasks, self.sessions, self.counters, *map(self.namespace, names)]

    # -- plumbing ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def locked(
        self, kind: RecordKind[Any], key: str, *, shared: bool = False
    ) -> AsyncIterator[None]:
        """Hold the record's lock across awaits (for work that is more than one thread call;
        one call is ``locked_call``)."""
        if kind is not self.counters:  # taken with a task lock held: it must not wait here
            await self.settle(kind, key)
        lock = await filelock.acquire(
            kind.lock_path(key),
            shared=shared,
            timeout=self.lock_timeout,
            root=self.anchor,
            directory=True,
        )
        try:
            yield
        finally:
            lock.release()

    async def locked_call(
        self,
        kind: RecordKind[Any],
        key: str,
        fn: Callable[[list[Event]], T],
        *,
        shared: bool = False,
        unlink: Callable[[T], bool] | None = None,
        absent: Callable[[], T] | None = None,
    ) -> T:
        """``fn`` run under the record's lock, in one worker-thread call when nobody else
        holds the lock: the lock is tried there, ``fn`` runs, its events are logged and the
        lock let go before the call returns. Whatever events ``fn`` produced reach
        subscribers even when it raises (``in_thread``). A transaction a dead process left on
        this record is finished first (``settle``). When ``unlink`` says so of ``fn``'s result
        (a deletion), the record's directory, its lock, goes too if it is empty, while held (a
        racer that opened it notices, ``filelock``). With ``absent``, a record that has no
        directory is not locked (taking its lock would make the directory): ``absent()`` is
        the answer."""
        if absent is not None and self.surely_absent(kind, key):
            return absent()  # nothing to lock: told without a worker thread
        if not self._settled_once:
            await self.settle(kind, key)
        lock_path = kind.lock_path(key)
        waits = LockWait(self.lock_timeout)
        while True:
            events: list[Event] = []
            try:
                outcome = await anyio.to_thread.run_sync(
                    self._try_locked, kind, key, lock_path, shared, fn, unlink, absent, events
                )
            finally:
                self.events.notify(events)
            if not isinstance(outcome, Busy):
                return outcome
            if outcome.unsettled:
                await self.settle(kind, key)
                continue
            await waits.again(lock_path)

    def _try_locked(
        self,
        kind: RecordKind[Any],
        key: str,
        lock_path: Path,
        shared: bool,
        fn: Callable[[list[Event]], T],
        unlink: Callable[[T], bool] | None,
        absent: Callable[[], T] | None,
        events: list[Event],
    ) -> T | Busy:
        """One try of ``locked_call`` (blocking, in a worker thread)."""
        # The fencing counter is taken with a task lock held: it must not wait for a settle.
        if kind is not self.counters and self._unsettled(kind, key):
            return UNSETTLED
        if absent is not None and not kind.dir_for(key).exists():
            return absent()
        lock = filelock.try_acquire(
            lock_path, shared=shared, root=self.anchor, opener=self.ops.open_lock, directory=True
        )
        if lock is None:
            return HELD
        try:
            result = self._logged(fn, events)
        except BaseException:
            lock.release()
            raise
        if unlink is not None and unlink(result):
            try:
                kind.remove_dir_if_empty(key)  # the lock is the directory: removed while held
            finally:
                lock.release()
        else:
            lock.release()
        return result

    async def settle_first(self) -> None:
        """The store's first call finishes what dead processes left (``settle_all``), once."""
        if not self._settled_once:
            self._settled_once = True
            await self.settle_all()

    def unsettled(self, kind: RecordKind[Any], key: str | None) -> bool:
        """``_unsettled`` for the store's other parts (blocking)."""
        return self._unsettled(kind, key)

    def logged(self, fn: Callable[[list[Event]], T], events: list[Event]) -> T:
        """``fn(events)``, its events written to the log however it ends (blocking)."""
        return self._logged(fn, events)

    def _unsettled(self, kind: RecordKind[Any], key: str | None) -> bool:
        """Whether a transaction's intent on disk touches ``kind``'s record ``key`` (None: any
        of the kind). Blocking; one stat when there is none."""
        return bool(self._touching(kind, key))

    async def in_thread(self, fn: Callable[[list[Event]], T]) -> T:
        """Run ``fn`` in a worker thread; whatever events it produced are logged and handed to
        subscribers even when it raises (a recovery warning must not vanish with the error)."""
        events: list[Event] = []
        try:
            return await anyio.to_thread.run_sync(lambda: self._logged(fn, events))
        finally:
            self.events.notify(events)

    def _logged(self, fn: Callable[[list[Event]], T], events: list[Event]) -> T:
        try:
            return fn(events)
        finally:
            self.events.write(events)

    def surely_absent(self, kind: RecordKind[Any], key: str | None) -> bool:
        """Whether ``kind``'s record ``key`` (None: every record of the kind) surely does not
        exist now, told by two stats on the calling thread and no worker-thread hop: the
        store's leftovers are settled, no transaction's intent is on disk (``quiet``) and the
        record's directory (the kind's) is missing. The same look, in the same order, as the
        worker-thread read makes (``_unsettled``, then ``peek``), so it is as fresh as that
        one; False says only that the worker thread must look."""
        if not self._settled_once or not self.intents.quiet():
            return False
        return not (kind.base if key is None else kind.dir_for(key)).exists()

    async def read(self, kind: RecordKind[M], key: str, known: M | None = None) -> M | None:
        """The record as it is now: one worker-thread call (its settle check and the read),
        none when it surely does not exist (``surely_absent``); ``known``: the record as the
        caller holds it, given back when the file holds exactly it (``RecordKind.load``)."""
        if self.surely_absent(kind, key):
            return None
        if not self._settled_once:
            await self.settle(kind, key)

        def look() -> M | Busy | None:
            if self._unsettled(kind, key):
                return UNSETTLED
            return peek(kind, key, known)

        while True:
            try:
                found = await anyio.to_thread.run_sync(look)
            except RecordDamaged:
                return await self.recover(kind, key)
            if not isinstance(found, Busy):
                return found
            await self.settle(kind, key)

    async def recover(self, kind: RecordKind[M], key: str) -> M | None:
        """The slow path of a read: under the exclusive lock, load or recover the record."""

        return await self.locked_call(  # not when deleted meanwhile
            kind, key, lambda ev: load_or_recover(kind, key, ev), absent=lambda: None
        )

    async def read_many(
        self, kind: RecordKind[M], keys: list[str] | None, known: Mapping[str, M] | None = None
    ) -> list[M]:
        """The records of ``keys`` (None: every one of the kind) that exist, in order, read in
        one worker-thread call (none when no record of the kind exists, ``surely_absent``);
        only a damaged one takes the locked path of its own. ``known``: records the caller
        holds, given back for files that hold exactly them (``lockfree.read_present``)."""
        if keys is None and self.surely_absent(kind, None):
            return []
        if not self._settled_once:
            await self.settle(kind, None)

        def read_all() -> list[tuple[str, M | None, bool]] | Busy:
            if self._unsettled(kind, None):
                return UNSETTLED
            return read_present(kind, keys, known)

        while isinstance(listed := await anyio.to_thread.run_sync(read_all), Busy):
            await self.settle(kind, None)
        records: list[M] = []
        for key, record, damaged in listed:
            if damaged:
                record = await self.recover(kind, key)
            if record is not None:
                records.append(record)
        return records

    def read_many_now(self, kind: RecordKind[M]) -> list[M] | None:
        """``read_many`` of every record of the kind, blocking, in a worker-thread call the
        caller makes anyway (the same lock-free read, after the same look for a dead
        process's transaction); None when it cannot be made there: the store's leftovers not
        settled yet, a transaction's intent touching the kind, or a record read as damaged
        (``read_many`` settles and recovers, in calls of their own)."""
        return read_all_now(kind, self._settled_once and not self._unsettled(kind, None))

    # -- transactions cut short -------------------------------------------------------------

    def kind_of(self, entry: IntentEntry) -> RecordKind[Any]:
        if entry.kind == "records":
            return self.namespace(entry.namespace)
        return self.tasks if entry.kind == "tasks" else self.sessions

    def record_id(self, kind: RecordKind[Any], key: str) -> tuple[str, str, str]:
        """How a transaction names a record (``state.transactions.record_of``)."""
        if kind is self.tasks or kind is self.sessions:
            return (kind.name, "", key)
        return ("records", kind.name, key)

    async def settle(self, kind: RecordKind[Any], key: str | None) -> None:
        """Finish every transaction a dead process left that touches ``kind``'s record ``key``
        (None: any record of the kind), so no one reads or writes half of one. One stat when
        none is pending. An intent of a live transaction makes this wait for its locks, after
        which it is gone. The first call of a store finishes or rolls back everything left."""
        if not self._settled_once:
            self._settled_once = True
            await self.settle_all()
            return
        for intent in await anyio.to_thread.run_sync(self._touching, kind, key):
            await self.finish(intent)

    def _touching(self, kind: RecordKind[Any], key: str | None) -> list[Intent]:
        """The intents on disk that touch ``kind``'s record ``key`` (None: any of the kind).
        Blocking; one stat when there is none."""
        paths = self.intents.pending()
        if not paths:
            return []
        wanted = None if key is None else self.record_id(kind, key)
        found: list[Intent] = []
        for path in paths:
            intent = self.intents.load(path)
            if intent is None:
                continue
            if wanted is None:
                if any(self.kind_of(e) is kind for e in intent.entries):
                    found.append(intent)
            elif intent.touches(wanted):
                found.append(intent)
        return found

    async def settle_all(self) -> None:
        """Finish or roll back whatever transactions dead processes left (on first use)."""

        def left() -> list[Intent]:
            self.intents.roll_back_orphans()
            self.batches.roll_back_orphans()
            loaded = [self.intents.load(path) for path in self.intents.pending()]
            batches = [self.batches.load(path) for path in self.batches.pending()]
            loaded += [b for b in batches if b is not None and not writer_alive(b)]
            return [intent for intent in loaded if intent is not None]

        for intent in await anyio.to_thread.run_sync(left):
            await self.finish(intent)

    async def finish(self, intent: Intent) -> None:
        """Replay ``intent`` under the locks of its records, unless its transaction ended
        while they were being taken."""
        entries = sorted(intent.entries, key=lambda e: e.record)
        held: list[filelock.FileLock] = []
        try:
            for entry in entries:
                path = self.kind_of(entry).lock_path(entry.key)
                lock = await filelock.acquire(
                    path, timeout=self.lock_timeout, root=self.anchor, directory=True
                )
                held.append(lock)

            def run(events: list[Event]) -> None:
                still = self.intents.load(intent.path)
                if still is None:
                    return  # its own process finished it meanwhile
                written = replay(still, self.kind_of, events)
                self.intents.remove(still)
                events.extend(
                    StateUpdated(
                        kind=self.kind_of(e).name, key=e.key, version=e.version or 0, fields=[]
                    )
                    for e in written
                )

            await self.in_thread(run)
        finally:
            for lock in reversed(held):
                lock.release()

    # -- merging updates --------------------------------------------------------------------

    def merge(
        self,
        kind: RecordKind[M],
        key: str,
        current: M | None,
        updates: Mapping[str, Any],
        defaults: Mapping[str, Any],
        *,
        no_history: bool = False,
    ) -> tuple[M, list[str]]:
        """``updates`` merged into ``current`` (or ``defaults`` for a new record) as the next
        version, and the fields they set; ``StateError`` when the result is not valid.
        ``no_history``: the caller found no record and no history under the record's lock
        (``load_or_recover`` gave None), so its history is not listed again."""
        if current is not None:
            version = int(getattr(current, "version", 0))
        elif no_history:
            version = 0
        else:
            # A record started afresh where one was moved away keeps versions increasing
            # past the history it left (a holder of an old version gets a conflict).
            version = max(kind.history_versions(key), default=0)
        base = current.model_dump() if current is not None else dict(defaults)
        now = utcnow()
        fields = {k: v for k, v in updates.items() if k not in STORE_OWNED}
        merged = {**base, **fields, kind.key_field: key, "version": version + 1, "updated_at": now}
        try:
            record = kind.model.model_validate(merged)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            raise StateError(
                f"invalid update of {kind.name} record {key!r}: {where}: {problem['msg']}"
            ) from None
        self.validators.check(self.rule_kind(kind), key, current, record)
        return record, sorted(fields)

    def rule_kind(self, kind: RecordKind[Any]) -> str:
        """How record rules name ``kind`` (``validators``)."""
        return kind.name if kind in self._builtin_kinds else keyed_kind(kind.name)

    def write_merged(
        self,
        kind: RecordKind[M],
        key: str,
        current: M | None,
        updates: Mapping[str, Any],
        defaults: Mapping[str, Any],
        events: list[Event],
        *,
        announce: bool = True,
        durable: bool = True,
    ) -> M:
        record, fields = self.merge(kind, key, current, updates, defaults)
        version = int(getattr(record, "version", 1)) - 1
        record = kind.write(  # as stored: masked where it held a secret
            key,
            record,
            previous_version=version if current is not None else None,
            durable=durable,
        )
        if announce:
            events.append(StateUpdated(kind=kind.name, key=key, version=version + 1, fields=fields))
        return record

    # -- events ---------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        self.events.subscribe(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.events.unsubscribe(subscriber)

    async def emit(self, event: Event) -> None:
        self.events.post([event])  # appended by the log's writer thread: no hop here
        self.events.notify([event])

    def peek_task(self, task_id: str) -> TaskState | None:
        """A task as it is on disk, without its lock (blocking); None when it is damaged (the
        next locked read recovers it)."""
        try:
            return self.tasks.load(task_id)
        except RecordDamaged:
            return None

    async def delete(self, kind: RecordKind[Any], key: str) -> None:
        """Remove a record with its history and lock file."""
        await self.locked_call(kind, key, lambda _: kind.delete(key), unlink=lambda _: True)
