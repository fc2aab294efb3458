"""Several keyed records written and others deleted in one worker-thread call, in the file
backend (``StateStore.put_and_delete_records``; ``state.carried``, ``state.deletions``).

Every record's lock is tried in that call, in the global order of ``state.transactions``, while
holding no other; one that is busy lets every lock go and the call is tried again after a
back-off (a transaction a dead process left on one of them is finished first). A deletion's
record with no directory is not locked (taking its lock would make one); a put's is (its lock
makes the directory it is written in). Under all of them, before anything is written: each
put's ``make(current)`` (a compare-and-set that cannot conflict: the record's lock is held),
then the deletions' versions checked (a mismatch, or a ``make`` that raises: nothing written or
deleted). Then the deletions, then the puts, in that order: a crash leaves a prefix, as calls
in that order would (each record whole: each write and each deletion is atomic on its own). A
call of deletions only, of records that surely do not exist (``FileCore.surely_absent``), is
told on the calling thread with no worker-thread call, as ``delete_records`` tells it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio.to_thread

from orchestrator import filelock
from orchestrator.events import Event
from orchestrator.filelock import FileLock, LockWait
from orchestrator.models import KeyedRecord, utcnow
from orchestrator.state.carried import CarriedPut, checked_carried
from orchestrator.state.deletions import Deletion, checked
from orchestrator.state.expiry import expires_at, live
from orchestrator.state.file.core import HELD, UNSETTLED, Busy, FileCore, load_or_recover
from orchestrator.state.file.keyed import delete_locked
from orchestrator.state.file.record_files.records import RecordKind
from orchestrator.state.file.record_task_carrying import write_carried
from orchestrator.state.file.rules import check_version

__all__ = ["put_and_delete_records"]

Written = tuple[list[KeyedRecord | None], list[bool]]


class _BusyAt:
    """What a try gives when one record's lock stopped it."""

    def __init__(self, busy: Busy, kind: RecordKind[Any], key: str) -> None:
        self.busy, self.kind, self.key = busy, kind, key


async def put_and_delete_records(
    core: FileCore, puts: Sequence[CarriedPut], deletions: Sequence[Deletion]
) -> Written:
    gone = checked(deletions)
    made = checked_carried(puts, *((d.namespace, d.key) for d in gone))
    now = utcnow()
    for put in made:
        expires_at(now, put.ttl)  # a bad ttl is refused before any lock is taken
    if not made and all(core.surely_absent(core.namespace(n), key) for n, key, _ in gone):
        for namespace, key, expected in gone:  # none there: told without a worker thread
            check_version(core.namespace(namespace), key, None, expected)
        return [], [False] * len(gone)
    places = [(core.namespace(p.namespace), p.key) for p in made]
    places += [(core.namespace(d.namespace), d.key) for d in gone]
    await core.settle_first()
    waits = LockWait(core.lock_timeout)
    while True:
        events: list[Event] = []
        try:
            outcome = await anyio.to_thread.run_sync(_try_all, core, made, gone, places, events)
        finally:
            core.events.notify(events)
        if not isinstance(outcome, _BusyAt):
            return outcome
        if outcome.busy.unsettled:
            await core.settle(outcome.kind, outcome.key)
            continue
        await waits.again(outcome.kind.lock_path(outcome.key))


def _try_all(
    core: FileCore,
    puts: list[CarriedPut],
    gone: list[Deletion],
    places: list[tuple[RecordKind[Any], str]],
    events: list[Event],
) -> Written | _BusyAt:
    """One try (blocking, in a worker thread)."""
    order = sorted(range(len(places)), key=lambda at: core.record_id(*places[at]))
    held: dict[int, FileLock] = {}
    try:
        for at in order:
            kind, key = places[at]
            if core.unsettled(kind, key):
                return _BusyAt(UNSETTLED, kind, key)
            if at >= len(puts) and not kind.dir_for(key).exists():
                continue  # a deletion's record that is not there: nothing to lock
            lock = filelock.try_acquire(
                kind.lock_path(key), root=core.anchor, opener=core.ops.open_lock, directory=True
            )
            if lock is None:
                return _BusyAt(HELD, kind, key)
            held[at] = lock
        return core.logged(lambda ev: _locked(core, puts, gone, places, held, ev), events)
    finally:
        for lock in held.values():
            lock.release()


def _locked(
    core: FileCore,
    puts: list[CarriedPut],
    gone: list[Deletion],
    places: list[tuple[RecordKind[Any], str]],
    held: dict[int, FileLock],
    events: list[Event],
) -> Written:
    """The writes, every lock held (module doc for the order)."""
    moment = utcnow()
    found: list[tuple[KeyedRecord | None, Mapping[str, Any] | None]] = []
    for put, (kind, key) in zip(puts, places[: len(puts)], strict=True):
        stored = load_or_recover(kind, key, events)
        found.append((stored, put.make(live(stored, moment))))
    offset = len(puts)
    locked = [at - offset for at in held if at >= offset]
    deleted = delete_locked(core, gone, events, locked)  # every version checked first
    for at, done in enumerate(deleted):
        lock = held.pop(offset + at, None) if done is not None else None
        if lock is not None:
            kind, key = places[offset + at]
            try:
                kind.remove_dir_if_empty(key)  # the lock is the directory: while held
            finally:
                lock.release()
    kinds = [kind for kind, _ in places[: len(puts)]]
    written = write_carried(core, puts, kinds, found, moment, events)
    return written, [bool(done) for done in deleted]
