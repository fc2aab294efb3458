"""A keyed record and a task written in one worker-thread call, with records of other rooms
carried after them (``put_made_record_and_task_carrying``; ``state.carried``).

As ``record_task``: the record's lock taken by ``FileCore.locked_call``, the task's and then
each carried record's tried under it in the same worker-thread call, none ever waited for
while another is held (a busy one lets go of all of them; the call is tried again after a
pause), so no cycle can form. Under all of them, before anything is written: the task's
version and fence checked, ``make`` run (once), the record's version checked, each carried
record read and made (``make(current)``, under its lock: a compare-and-set that cannot
conflict). Then the record is written, the task, and each carried record, in that order: a
crash leaves a prefix of them, as separate calls in that order would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from orchestrator import filelock
from orchestrator.events import Event
from orchestrator.filelock import FileLock, LockWait
from orchestrator.ids import check_id
from orchestrator.models import KeyedRecord, TaskState, utcnow
from orchestrator.state.carried import CarriedPut, checked_carried
from orchestrator.state.claim_rules import check_fence
from orchestrator.state.expiry import expires_at, live
from orchestrator.state.file.core import FileCore, load_or_recover
from orchestrator.state.file.record_files.records import RecordKind
from orchestrator.state.file.rules import check_version

__all__ = ["put_made_record_and_task_carrying", "write_carried"]

T = TypeVar("T")


class _Busy(Exception):
    """A lock after the record's is held by someone else: all let go, tried again."""

    def __init__(self, lock_path: Path) -> None:
        super().__init__(str(lock_path))
        self.lock_path = lock_path


class _Unsettled(Exception):
    """A dead process's transaction touches one of the records: finished first."""

    def __init__(self, kind: RecordKind[Any], key: str) -> None:
        super().__init__(key)
        self.kind, self.key = kind, key


async def put_made_record_and_task_carrying(
    core: FileCore,
    namespace: str,
    key: str,
    make: Callable[[], tuple[Mapping[str, Any], T]],
    task_id: str,
    updates: Mapping[str, Any],
    *,
    fencing_token: int | None,
    expected_version: int | None,
    record_version: int | None,
    carried: Sequence[CarriedPut],
) -> tuple[KeyedRecord, T, TaskState, list[KeyedRecord | None]]:
    kind = core.namespace(namespace)
    check_id(key, f"{namespace} key")
    check_id(task_id, "task id")
    puts = checked_carried(carried, (namespace, key))
    now = utcnow()
    for put in puts:
        expires_at(now, put.ttl)  # a bad ttl is refused before any lock is taken
    tasks = core.tasks
    others: list[tuple[RecordKind[Any], str]] = [(tasks, task_id)]
    others += [(core.namespace(put.namespace), put.key) for put in puts]
    made: list[tuple[Mapping[str, Any], T]] = []  # once: a busy lock tries ``run`` again

    def run(events: list[Event]) -> tuple[KeyedRecord, T, TaskState, list[KeyedRecord | None]]:
        # The record's own intents were looked at by locked_call; the others' here.
        for other_kind, other_key in others:
            if core.unsettled(other_kind, other_key):
                raise _Unsettled(other_kind, other_key)
        held: list[FileLock] = []
        try:
            for other_kind, other_key in others:
                path = other_kind.lock_path(other_key)
                lock = filelock.try_acquire(
                    path, shared=False, root=core.anchor, opener=core.ops.open_lock, directory=True
                )
                if lock is None:
                    raise _Busy(path)
                held.append(lock)
            task = load_or_recover(tasks, task_id, events)
            check_version(tasks, task_id, task, expected_version)
            if fencing_token is not None:
                check_fence(task_id, task, fencing_token)
            if not made:
                made.append(make())  # under every lock, in this worker-thread call
            data, rest = made[0]
            moment = utcnow()
            current = load_or_recover(kind, key, events)
            # An expired record is absent to the version check, but its versions go on.
            check_version(kind, key, live(current, moment), record_version)
            found: list[tuple[Any, Mapping[str, Any] | None]] = []
            for put, (put_kind, _) in zip(puts, others[1:], strict=True):
                stored = load_or_recover(put_kind, put.key, events)
                found.append((stored, put.make(live(stored, moment))))
            fields = {"namespace": namespace, "data": dict(data), "expires_at": None}
            record = core.write_merged(kind, key, current, fields, {}, events, durable=True)
            state = core.write_merged(tasks, task_id, task, updates, {}, events, durable=True)
            kinds = [put_kind for put_kind, _ in others[1:]]
            return record, rest, state, write_carried(core, puts, kinds, found, moment, events)
        finally:
            for lock in held:
                lock.release()

    waits = LockWait(core.lock_timeout)
    while True:
        try:
            return await core.locked_call(kind, key, run)
        except _Unsettled as unsettled:
            await core.settle(unsettled.kind, unsettled.key)
            continue
        except _Busy as busy:
            await waits.again(busy.lock_path)


def write_carried(
    core: FileCore,
    puts: Sequence[CarriedPut],
    kinds: Sequence[RecordKind[Any]],
    found: Sequence[tuple[KeyedRecord | None, Mapping[str, Any] | None]],
    moment: datetime,
    events: list[Event],
) -> list[KeyedRecord | None]:
    """Each carried put written as its ``make`` gave it (``found``: the record as stored under
    its lock, and what ``make`` made of it; None writes nothing), its lock held by the
    caller: the record written, or None. Blocking."""
    written: list[KeyedRecord | None] = []
    for put, kind, (stored, data) in zip(puts, kinds, found, strict=True):
        if data is None:
            written.append(None)
            continue
        fields = {
            "namespace": put.namespace,
            "data": dict(data),
            "expires_at": expires_at(moment, put.ttl),
        }
        written.append(
            core.write_merged(kind, put.key, stored, fields, {}, events, durable=put.durable)
        )
    return written
