"""``FileStateStore``: the embedded state backend, versioned JSON records on local disk.

Layout under ``root`` (default ``<repo>/.council/state/``)::

    tasks/<task-id>/           one versioned record each (see ``records``)
    sessions/<session-id>/
    counters/fencing/          the fencing-token sequence
    checkpoints/<id>.json      immutable snapshots of a session and its tasks
    quarantine/                damaged records, moved aside intact

Each write takes the record's lock asynchronously (non-blocking tries with backoff, so the
event loop never waits on another holder) and then does its file work in one worker thread
call. Reads take no lock: records are replaced atomically, so a read sees one whole version
(``peek``); only a record that reads as damaged is loaded again under the exclusive lock, which
also waits for a recovery under way. Locks on different records are never held in a cycle: a
task lock may be held while the fencing counter is taken, and nothing else nests.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Self, TypeVar

import anyio.to_thread
from pydantic import BaseModel, ValidationError

from orchestrator import filelock
from orchestrator.errors import StaleClaim, StateCorrupted, StateError, VersionConflict
from orchestrator.events import Event, EventType, Subscriber
from orchestrator.ids import check_id
from orchestrator.models import (
    Claim,
    ClaimStatus,
    Counter,
    KeyedRecord,
    SessionRecord,
    TaskState,
    utcnow,
)
from orchestrator.state.file.checkpoints import CheckpointFiles
from orchestrator.state.file.codec import RecordDamaged
from orchestrator.state.file.event_log import EventLog
from orchestrator.state.file.fsops import FileOps
from orchestrator.state.file.records import RecordKind
from orchestrator.state.protocol import RecordProblem

__all__ = ["FileBase"]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

STORE_OWNED = frozenset({"version", "updated_at"})


class FileBase:
    """Plumbing shared by the file backend's parts: record kinds, locks, threads, events."""

    def __init__(
        self,
        root: Path | str,
        *,
        events_path: Path | str | None = None,
        history_limit: int = 10,
        checkpoint_limit: int = 20,
        lock_timeout: float = 10.0,
        file_ops: FileOps | None = None,
        anchor: Path | str | None = None,
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
        self.events = EventLog(
            Path(events_path) if events_path else self.root / "events.jsonl", ops
        )

    def _namespace(self, namespace: str) -> RecordKind[KeyedRecord]:
        kind = self._namespaces.get(namespace)
        if kind is None:
            check_id(namespace, "record namespace")
            kind = RecordKind(
                self.root / "records", namespace, KeyedRecord, "key", self.ops, self.history_limit
            )
            self._namespaces[namespace] = kind
        return kind

    async def _kinds(self) -> list[RecordKind[Any]]:
        """Every kind of record on disk: tasks, sessions, counters and each namespace."""
        names = await anyio.to_thread.run_sync(_subdirectories, self.root / "records")
        return [self.tasks, self.sessions, self.counters, *map(self._namespace, names)]

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
        self.events.close()

    # -- plumbing ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _locked(
        self, kind: RecordKind[Any], key: str, *, shared: bool = False
    ) -> AsyncIterator[None]:
        lock = await filelock.acquire(
            kind.lock_path(key), shared=shared, timeout=self.lock_timeout, root=self.anchor
        )
        try:
            yield
        finally:
            lock.release()

    async def _in_thread(self, fn: Callable[[list[Event]], T]) -> T:
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

    async def _read(self, kind: RecordKind[M], key: str) -> M | None:
        try:
            return await anyio.to_thread.run_sync(peek, kind, key)
        except RecordDamaged:
            return await self._recover(kind, key)

    async def _recover(self, kind: RecordKind[M], key: str) -> M | None:
        """The slow path of a read: under the exclusive lock, load or recover the record."""
        if not kind.dir_for(key).exists():
            return None  # deleted meanwhile (taking its lock would create the directory again)
        async with self._locked(kind, key):
            return await self._in_thread(lambda ev: load_or_recover(kind, key, ev))

    async def _read_many(self, kind: RecordKind[M], keys: list[str] | None) -> list[M]:
        """The records of ``keys`` (None: every one of the kind) that exist, in order, read in
        one worker-thread call; only a damaged one takes the locked path of its own."""

        def read_all() -> list[tuple[str, M | None, bool]]:
            found: list[tuple[str, M | None, bool]] = []
            for key in kind.keys() if keys is None else keys:
                try:
                    found.append((key, peek(kind, key), False))
                except RecordDamaged:
                    found.append((key, None, True))
            return found

        records: list[M] = []
        for key, record, damaged in await anyio.to_thread.run_sync(read_all):
            if damaged:
                record = await self._recover(kind, key)
            if record is not None:
                records.append(record)
        return records

    def _write_merged(
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
        if current is not None:
            version = int(getattr(current, "version", 0))
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
        kind.write(
            key,
            record,
            previous_version=version if current is not None else None,
            durable=durable,
        )
        if announce:
            events.append(
                Event(
                    type=EventType.STATE_UPDATED,
                    data={
                        "kind": kind.name,
                        "key": key,
                        "version": version + 1,
                        "fields": sorted(fields),
                    },
                )
            )
        return record

    # -- tasks ------------------------------------------------------------------------------

    # -- events and upkeep ------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        self.events.subscribe(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.events.unsubscribe(subscriber)

    async def emit(self, event: Event) -> None:
        self.events.post([event])  # appended by the log's writer thread: no hop here
        self.events.notify([event])

    async def verify_records(self) -> list[RecordProblem]:
        problems: list[RecordProblem] = []
        for kind in await self._kinds():
            for key in await anyio.to_thread.run_sync(kind.keys):
                reason = await anyio.to_thread.run_sync(kind.verify, key)
                if reason is None:
                    continue
                try:
                    await self._read(kind, key)
                except StateCorrupted as exc:
                    problems.append(
                        RecordProblem(
                            kind=kind.name, key=key, reason=reason, recovered=False, detail=str(exc)
                        )
                    )
                else:
                    problems.append(
                        RecordProblem(kind=kind.name, key=key, reason=reason, recovered=True)
                    )
        problems += await anyio.to_thread.run_sync(self._damaged_checkpoints)
        return problems

    def _damaged_checkpoints(self) -> list[RecordProblem]:
        """Checkpoints are immutable and have no history: a damaged one is only reported."""
        problems = []
        for checkpoint_id in self.checkpoints.ids():
            try:
                self.checkpoints.read(checkpoint_id)
            except StateCorrupted as exc:
                problems.append(
                    RecordProblem(
                        kind="checkpoints",
                        key=checkpoint_id,
                        reason=exc.detail,
                        recovered=False,
                        detail=str(exc),
                    )
                )
            except StateError:
                continue  # removed meanwhile
        return problems

    async def clean_stale_locks(self) -> int:
        """Remove lock files of records that are gone, and what crashed writers left behind
        (temp files, history entries past the limit).

        Only a lock nobody holds is touched, and it is unlinked while we hold it, so a racer
        that opened it before the unlink notices the changed inode and retries.
        """
        cleaned = 0
        for kind in await self._kinds():
            for key in await anyio.to_thread.run_sync(kind.keys):
                lock = filelock.try_acquire(kind.lock_path(key), root=self.anchor)
                if lock is None:
                    continue
                try:
                    leftovers = await anyio.to_thread.run_sync(remove_temp_files, kind, key)
                    leftovers += await anyio.to_thread.run_sync(kind.prune_history, key)
                    gone = not await anyio.to_thread.run_sync(has_data, kind, key)
                except BaseException:
                    lock.release()
                    raise
                if gone:
                    lock.unlink_and_release()
                    await anyio.to_thread.run_sync(kind.remove_dir_if_empty, key)
                    cleaned += 1
                else:
                    lock.release()
                cleaned += leftovers
        lock = filelock.try_acquire(self.checkpoints.lock_path, root=self.anchor)
        if lock is not None:
            with lock:
                cleaned += await anyio.to_thread.run_sync(self.checkpoints.remove_temp_files)
        if cleaned:
            await self.emit(Event(type=EventType.LOCK_CLEANED, data={"count": cleaned}))
        return cleaned


def peek(kind: RecordKind[M], key: str) -> M | None:
    """Read a record without its lock (blocking; RecordDamaged if it is damaged).

    Every file is replaced atomically, so a lock-free read sees one whole version: the one
    current when it opened the file. A recovery or deletion under way shows as damage (the
    current file missing while history exists), which sends the reader to the locked path.
    """
    if not kind.dir_for(key).exists():
        return None
    return kind.load(key)


def load_or_recover(kind: RecordKind[M], key: str, events: list[Event]) -> M | None:
    record, recovery = kind.load_or_recover(key)
    if recovery is not None:
        events.append(recovery.event())
    return record


def check_version(
    kind: RecordKind[Any], key: str, current: BaseModel | None, expected: int | None
) -> None:
    if expected is None:
        return
    actual = int(getattr(current, "version", 0)) if current is not None else 0
    if actual != expected:
        raise VersionConflict(f"{kind.name}/{key}", expected, actual if current else None)


def check_fence(task_id: str, current: TaskState | None, token: int) -> Claim:
    claim = current.claim if current is not None else None
    if claim is None or claim.token != token or claim.status != ClaimStatus.ACTIVE:
        raise StaleClaim(f"tasks/{task_id}", token, claim.token if claim else None)
    return claim


def lapsed(claim: Claim | None, now: datetime) -> bool:
    return claim is not None and claim.status == ClaimStatus.ACTIVE and claim.expires_at <= now


def claim_event(event_type: EventType, claim: Claim) -> Event:
    return Event(
        type=event_type,
        data={
            "task_id": claim.task_id,
            "holder": claim.holder,
            "token": claim.token,
            "status": claim.status,
            "expires_at": claim.expires_at.isoformat(),
        },
    )


def new_id(prefix: str) -> str:
    stamp = utcnow().strftime("%Y%m%dt%H%M%S%f")
    return f"{prefix}-{stamp}-{secrets.token_hex(3)}"


def has_data(kind: RecordKind[Any], key: str) -> bool:
    return kind.current_path(key).exists() or bool(kind.history_versions(key))


def remove_temp_files(kind: RecordKind[Any], key: str) -> int:
    """Temp files under a record we hold exclusively can only be a crashed writer's."""
    removed = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(kind.dir_for(key)) as entries:
        for entry in entries:
            if entry.name.endswith(".tmp"):
                kind.ops.unlink(Path(entry.path))
                removed += 1
    return removed


def _subdirectories(directory: Path) -> list[str]:
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        return []
