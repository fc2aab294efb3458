"""A keyed record and a task written in one worker-thread call (``put_made_record_and_task``).

The record's lock is taken by ``FileCore.locked_call``, the task's tried under it in the same
worker-thread call: the global order of ``state.transactions`` (``records`` before
``tasks``), and the task's lock never waited for while the record's is held (a busy one lets
go of both; the call is tried again after a pause), so no cycle can form. Under both, the
task's version and fence are checked before anything is made or written; then ``make`` runs,
the record's version is checked (as ``put_made_record``: after ``make``), the record is
written, and the task after it. A crash between the two leaves the record
without the task's write, as two calls in that order would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from orchestrator import filelock
from orchestrator.events import Event
from orchestrator.filelock import LockWait
from orchestrator.ids import check_id
from orchestrator.models import KeyedRecord, TaskState, utcnow
from orchestrator.state.claim_rules import check_fence
from orchestrator.state.expiry import live
from orchestrator.state.file.core import FileCore, load_or_recover
from orchestrator.state.file.rules import check_version

__all__ = ["put_made_record_and_task"]

T = TypeVar("T")


class _TaskBusy(Exception):
    """The task's lock is held by someone else: both let go, tried again."""


class _TaskUnsettled(Exception):
    """A dead process's transaction touches the task: finished first, then tried again."""


async def put_made_record_and_task(
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
    durable: bool,
) -> tuple[KeyedRecord, T, TaskState]:
    kind = core.namespace(namespace)
    check_id(key, f"{namespace} key")
    check_id(task_id, "task id")
    tasks = core.tasks
    task_ref = core.record_id(tasks, task_id)
    task_lock = tasks.lock_path(task_id)
    made: list[tuple[Mapping[str, Any], T]] = []  # once: a busy lock tries ``run`` again

    def run(events: list[Event]) -> tuple[KeyedRecord, T, TaskState]:
        for path in core.intents.pending():  # the record's own were looked at by locked_call
            intent = core.intents.load(path)
            if intent is not None and intent.touches(task_ref):
                raise _TaskUnsettled
        lock = filelock.try_acquire(
            task_lock, shared=False, root=core.anchor, opener=core.ops.open_lock, directory=True
        )
        if lock is None:
            raise _TaskBusy
        try:
            task = load_or_recover(tasks, task_id, events)
            check_version(tasks, task_id, task, expected_version)
            if fencing_token is not None:
                check_fence(task_id, task, fencing_token)
            if not made:
                made.append(make())  # under both locks, in this worker-thread call
            data, rest = made[0]
            current = load_or_recover(kind, key, events)
            # An expired record is absent to the version check, but its versions go on.
            check_version(kind, key, live(current, utcnow()), record_version)
            fields = {"namespace": namespace, "data": dict(data), "expires_at": None}
            record = core.write_merged(kind, key, current, fields, {}, events, durable=durable)
            state = core.write_merged(tasks, task_id, task, updates, {}, events, durable=durable)
            return record, rest, state
        finally:
            lock.release()

    waits = LockWait(core.lock_timeout)
    while True:
        try:
            return await core.locked_call(kind, key, run)
        except _TaskUnsettled:
            await core.settle(tasks, task_id)
            continue
        except _TaskBusy:
            await waits.again(task_lock)
