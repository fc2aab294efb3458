"""Keyed records of other layers (worktree and file ownership), one namespace each.

They live under ``<root>/records/<namespace>/<key>/`` with the same versioning, history,
integrity checks and locking as tasks and sessions. One written with a ``ttl`` expires
(``state.expiry``), judged by this machine's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import anyio.to_thread

from orchestrator.events import Event
from orchestrator.ids import check_id
from orchestrator.models import KeyedRecord, utcnow
from orchestrator.state.deletions import Deletion, checked
from orchestrator.state.expiry import expires_at, is_expired, live
from orchestrator.state.file.core import FileCore, load_or_recover
from orchestrator.state.file.locked_all import locked_all_call
from orchestrator.state.file.lockfree import read_present
from orchestrator.state.file.record_files.layout import RECORDS, subdirectories
from orchestrator.state.file.record_files.records import RecordKind
from orchestrator.state.file.rules import check_version

__all__ = ["FileRecords"]

log = logging.getLogger(__name__)

T = TypeVar("T")
U = TypeVar("U")


class FileRecords:
    def __init__(self, core: FileCore) -> None:
        self._core = core

    async def get_record(self, namespace: str, key: str) -> KeyedRecord | None:
        core = self._core
        return live(await core.read(core.namespace(namespace), key), utcnow())

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
        record, _ = await self.put_made_record(
            namespace, key, lambda: (data, None), expected_version, durable=durable, ttl=ttl
        )
        return record

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
        record, rest, _ = await self.put_made_record_then(
            namespace, key, make, _nothing, expected_version, durable=durable, ttl=ttl
        )
        return record, rest

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
        core = self._core
        kind = core.namespace(namespace)
        check_id(key, f"{namespace} key")
        expires_at(utcnow(), ttl)  # a bad ttl is refused before any lock is taken
        made: list[tuple[Mapping[str, Any], T]] = []  # once: a busy lock tries ``run`` again
        after: list[U] = []

        def run(events: list[Event]) -> KeyedRecord:
            if not made:
                made.append(make())  # under the record's lock, in this worker-thread call
            data = made[0][0]
            current = load_or_recover(kind, key, events)
            now = utcnow()
            # An expired record is absent to the version check, but its versions go on.
            check_version(kind, key, live(current, now), expected_version)
            fields = {
                "namespace": namespace,
                "data": dict(data),
                "expires_at": expires_at(now, ttl),
            }
            record = core.write_merged(kind, key, current, fields, {}, events, durable=durable)
            after.append(then(made[0][1]))  # written: still under its lock, in this call
            return record

        record = await core.locked_call(kind, key, run)
        return record, made[0][1], after[0]

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
        """``put_made_record_then``, the record deleted again after ``then`` when ``over``
        says so, still under its lock in the same worker-thread call (its directory, the
        lock, with it, as ``delete_record`` removes it); a deletion that fails leaves it."""
        core = self._core
        kind = core.namespace(namespace)
        check_id(key, f"{namespace} key")
        made: list[tuple[Mapping[str, Any], T]] = []  # once: a busy lock tries ``run`` again
        after: list[U] = []

        def run(events: list[Event]) -> tuple[KeyedRecord, bool]:
            if not made:
                made.append(make())  # under the record's lock, in this worker-thread call
            current = load_or_recover(kind, key, events)
            check_version(kind, key, live(current, utcnow()), expected_version)
            fields = {"namespace": namespace, "data": dict(made[0][0]), "expires_at": None}
            record = core.write_merged(kind, key, current, fields, {}, events, durable=durable)
            after.append(then(made[0][1]))  # written: still under its lock, in this call
            if not over(after[0]):
                return record, False
            try:
                kind.delete(key)
            except OSError as exc:  # the work is done: its answer stands, the record stays
                log.warning("record %s/%s could not be deleted: %s", namespace, key, exc)
                return record, False
            return record, True

        record, deleted = await core.locked_call(kind, key, run, unlink=lambda out: out[1])
        return record, made[0][1], after[0], deleted

    async def delete_record(
        self,
        namespace: str,
        key: str,
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> bool:
        del durable  # removing files needs no fsync to be atomic; a crash may undo it
        return await self._delete(namespace, key, expected_version, None)

    async def delete_record_after(
        self,
        namespace: str,
        key: str,
        first: Callable[[], T],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> tuple[bool, T]:
        del durable  # as ``delete_record``
        done: list[T] = []  # once: a busy lock tries ``run`` again

        def before() -> None:
            if not done:
                done.append(first())  # under the record's lock, in this worker-thread call

        deleted = await self._delete(namespace, key, expected_version, None, before)
        return deleted, done[0]

    async def _delete(
        self,
        namespace: str,
        key: str,
        expected_version: int | None,
        expired_by: datetime | None,
        before: Callable[[], None] | None = None,
    ) -> bool:
        """Remove the record; True when it was there and live. With ``expired_by``: only if it
        expired by then (True when it did), whatever its version. ``before`` (blocking) runs
        first, in the same worker-thread call (one of its own when the record is surely
        absent); when it raises, nothing is removed."""
        core = self._core
        kind = core.namespace(namespace)

        def run(events: list[Event]) -> bool | None:
            """Whether it was there and live; None when it stays (written again meanwhile)."""
            if before is not None:
                before()
            if not kind.dir_for(key).exists():  # (its lock was taken: the file goes below)
                if expected_version not in (None, 0):
                    check_version(kind, key, None, expected_version)
                return False
            stored = load_or_recover(kind, key, events)
            if expired_by is not None:
                if stored is None or not is_expired(stored, expired_by):
                    return None
                current: KeyedRecord | None = stored
            else:
                current = live(stored, utcnow())
                check_version(kind, key, current, expected_version)
            kind.delete(key)
            return current is not None

        def missing() -> bool | None:
            if expected_version not in (None, 0):
                check_version(kind, key, None, expected_version)
            return False

        if before is not None and core.surely_absent(kind, key):
            await anyio.to_thread.run_sync(before)  # nothing to lock, but ``before`` to do
            return bool(missing())
        # The lock file goes last, while held (a racer that opened it notices), and the
        # directory with it: all in one worker-thread call. With ``before``, a record found
        # absent only in that call is locked anyway: ``before`` runs there, never on the loop.
        deleted = await core.locked_call(
            kind,
            key,
            run,
            unlink=lambda done: done is not None,
            absent=missing if before is None else None,
        )
        return bool(deleted)

    async def delete_records(self, items: Sequence[Deletion]) -> list[bool]:
        wanted = checked(items)  # a bad name is refused before any lock is taken
        core = self._core
        if all(core.surely_absent(core.namespace(n), key) for n, key, _ in wanted):
            for namespace, key, expected in wanted:  # none there: told without a worker thread
                check_version(core.namespace(namespace), key, None, expected)
            return [False] * len(wanted)
        found, _ = await self.delete_made_records(lambda: (wanted, None))
        return found

    async def delete_made_records(
        self, make: Callable[[], tuple[Sequence[Deletion], T]]
    ) -> tuple[list[bool], T]:
        """``make`` first, then the records it names deleted, each under its lock: all in one
        worker-thread call when no other holder has one of the locks (``locked_all_call``).
        Every version is checked before any record goes: a mismatch deletes none."""
        core = self._core
        made: list[tuple[list[Deletion], T]] = []  # once: a busy lock tries again

        def targets() -> list[tuple[RecordKind[KeyedRecord], str]]:
            items, rest = make()
            made.append((checked(items), rest))
            return [(core.namespace(d.namespace), d.key) for d in made[0][0]]

        def run(events: list[Event], locked: Collection[int]) -> list[bool | None]:
            return delete_locked(core, made[0][0], events, locked)

        def deleted(found: list[bool | None]) -> list[int]:
            return [at for at, done in enumerate(found) if done is not None]

        found = await locked_all_call(core, targets, run, deleted)
        return [bool(done) for done in found], made[0][1]

    async def list_records(self, namespace: str) -> list[KeyedRecord]:
        core = self._core
        now = utcnow()
        found = await core.read_many(core.namespace(namespace), None)
        return [record for record in found if not is_expired(record, now)]

    def list_records_now(self, namespace: str) -> list[KeyedRecord] | None:
        """``list_records``, blocking (``FileCore.read_many_now``); None: not here."""
        core = self._core
        found = core.read_many_now(core.namespace(namespace))
        if found is None:
            return None
        now = utcnow()
        return [record for record in found if not is_expired(record, now)]

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Remove every keyed record expired by ``now`` (this machine's clock when None).
        Every namespace is listed and read in one worker-thread call (the state monitor's,
        once a minute: not one a namespace); each expired record then goes under its lock, in
        a call of its own, only if still expired there (written again meanwhile: it stays)."""
        core = self._core
        moment = now or utcnow()
        await core.settle_first()

        def expired() -> list[tuple[str, str, bool]] | str:
            """(namespace, key, damaged) of the records expired, or damaged (to be read under
            their lock); a namespace a dead writer's transaction touches, to settle first."""
            found: list[tuple[str, str, bool]] = []
            for namespace in subdirectories(core.root / RECORDS):
                kind = core.namespace(namespace)
                if core.unsettled(kind, None):
                    return namespace
                for key, record, damaged in read_present(kind, None):
                    if damaged or (record is not None and is_expired(record, moment)):
                        found.append((namespace, key, damaged))
            return found

        while isinstance(listed := await anyio.to_thread.run_sync(expired), str):
            await core.settle(core.namespace(listed), None)
        purged = 0
        for namespace, key, damaged in listed:
            if damaged:
                record = await core.recover(core.namespace(namespace), key)
                if record is None or not is_expired(record, moment):
                    continue
            purged += await self._delete(namespace, key, None, moment)
        return purged


def _nothing(_: object) -> None:
    """No step after a record's write."""


def delete_locked(
    core: FileCore, items: Sequence[Deletion], events: list[Event], locked: Collection[int]
) -> list[bool | None]:
    """Delete ``items``, whose locks (those at the indexes in ``locked``) are held: every
    version checked before any record goes. For each: whether it was there and live; None
    when it had no directory."""
    now = utcnow()
    stored: list[KeyedRecord | None] = []
    there: list[bool] = []
    for at, item in enumerate(items):
        kind = core.namespace(item.namespace)
        # (an unlocked one had no directory when its lock would have been taken)
        present = at in locked and kind.dir_for(item.key).exists()
        record = load_or_recover(kind, item.key, events) if present else None
        check_version(kind, item.key, live(record, now), item.expected_version)
        stored.append(record)
        there.append(present)
    found: list[bool | None] = []
    for item, record, present in zip(items, stored, there, strict=True):
        if present:
            core.namespace(item.namespace).delete(item.key)
        found.append(live(record, now) is not None if present else None)
    return found
