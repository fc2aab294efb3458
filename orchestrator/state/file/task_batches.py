"""A batch of a session's new task records in the file backend (``add_session_tasks``).

One batch is one durable write whatever its size: under the locks of every task of the batch
(taken in the global order of ``state.transactions``, all in one worker-thread call, none
waited for: a busy one lets every lock go and the batch is tried again after a back-off),
each task is read and checked, then one intent (``intents``) holding every new record is
written durably: the batch is committed. The records are then written without an fsync
each, made durable together by one barrier (``FileOperations.sync_all``), and only then is
the intent removed. A process that dies on the way leaves the intent, which the next process
to open the store finishes. The intent is kept apart from the transactions'
(``FileCore.batches``): a reader does not wait for a batch under way, since each of its
records is whole and stands on its own.

The session is not written: it lists its tasks from its creation (the caller's part), and
its record, which holds every task's config, is not read either (a run of 10,000 tasks would
read megabytes per batch). A task the session already records is left as it is, so a batch
given again after a stop records each task once; a task another active or interrupted
session holds refuses the whole batch (``session_rules.refuse_if_held``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import anyio.to_thread
from pydantic import BaseModel

from orchestrator import filelock
from orchestrator.errors import RecordNotFound, StateWriteError
from orchestrator.events import Event
from orchestrator.events.state import StateUpdated
from orchestrator.filelock import LockWait
from orchestrator.models import SessionRecord, TaskState
from orchestrator.safety.secret_mask import masked_json
from orchestrator.state.file.batch_records import unborn_in, write_new
from orchestrator.state.file.core import FileCore, load_or_recover, peek
from orchestrator.state.file.fsops import write_error
from orchestrator.state.file.intents import IntentEntry
from orchestrator.state.file.record_files.codec import encode
from orchestrator.state.file.record_files.records import RecordKind
from orchestrator.state.protocol import TaskInit
from orchestrator.state.session_rules import (
    batch_fields,
    holding_session,
    refuse_if_held,
)

__all__ = ["FileTaskBatches"]


class _Busy:
    """A lock of the batch was held by someone else: nothing was done."""


class FileTaskBatches:
    def __init__(self, core: FileCore) -> None:
        self._core = core
        # Written in place, a new task record its writer cut short is finished from the
        # batch's intent by whoever next holds its lock (``batch_records``).
        core.tasks.unborn = unborn_in(core.batches, "tasks")

    async def add_session_tasks(self, session_id: str, tasks: Sequence[TaskInit]) -> int:
        core = self._core
        sid, inits = batch_fields(session_id, tasks)
        if not inits:
            return 0
        # What a dead process's transaction left on these records is finished first.
        await core.settle(core.sessions, sid)
        await core.settle(core.tasks, None)
        waits = LockWait(core.lock_timeout)
        while True:
            events: list[Event] = []
            try:
                outcome = await anyio.to_thread.run_sync(self._try, sid, inits, events)
            finally:
                # Masked in the worker thread, which logged them: a batch's hundreds of events
                # are not looked through again on the event loop.
                core.events.notify(events, masked=True)
            if not isinstance(outcome, _Busy):
                return outcome
            await waits.again(core.sessions.lock_path(sid))

    def _try(self, sid: str, inits: list[dict[str, Any]], events: list[Event]) -> int | _Busy:
        """One try (blocking, in a worker thread): every lock now, or none."""
        core = self._core
        records: list[tuple[RecordKind[Any], str]] = [
            (core.tasks, str(f["task_id"])) for f in inits
        ]
        records.sort(key=lambda r: core.record_id(*r))
        held: dict[str, filelock.FileLock] = {}
        try:
            for kind, key in records:
                lock = filelock.try_acquire(
                    kind.lock_path(key),
                    root=core.anchor,
                    opener=core.ops.open_lock,
                    directory=True,
                )
                if lock is None:
                    return _Busy()
                held[key] = lock
            try:
                return self._write(sid, inits, held, events)
            finally:
                # Masked once for the log and the subscribers (``add_session_tasks``); the list
                # holds them only once masked, so nothing unmasked is ever told.
                raw = list(events)
                events.clear()
                events.extend(core.events.write_masked(raw))
        finally:
            for lock in reversed(held.values()):
                lock.release()

    def _write(
        self,
        sid: str,
        inits: list[dict[str, Any]],
        locks: dict[str, filelock.FileLock],
        events: list[Event],
    ) -> int:
        """Check, commit and write the batch (every lock held, by task id)."""
        core = self._core
        if not core.sessions.current_path(sid).exists():
            raise RecordNotFound(f"session {sid!r} does not exist")
        owners: dict[str, SessionRecord | None] = {}
        entries: list[IntentEntry] = []
        bodies: list[BaseModel | None] = []
        announced: list[Event] = []
        added: list[str] = []
        for fields in inits:
            task_id = str(fields["task_id"])
            current = load_or_recover(core.tasks, task_id, events)
            if current is not None and current.session_id == sid:
                continue  # recorded by an earlier batch: once is enough
            held = holding_session(current)
            if held is not None:
                if held not in owners:
                    owners[held] = peek(core.sessions, held)
                refuse_if_held(task_id, owners[held])
            fresh = TaskState(task_id=task_id, session_id=sid).model_dump()
            # None under the lock: no record and no history (``load_or_recover``).
            record, changed = core.merge(
                core.tasks, task_id, current, {**fresh, **fields}, {}, no_history=current is None
            )
            previous = current.version if current is not None else None
            entries.append(IntentEntry("tasks", "", task_id, previous, record.version, None))
            bodies.append(record)
            announced.append(
                StateUpdated(kind="tasks", key=task_id, version=record.version, fields=changed)
            )
            added.append(task_id)
        if not entries:
            return 0
        try:
            intent = core.batches.write(entries, bodies)  # the batch's one durable write
        except OSError as exc:
            raise write_error(
                core.batches.directory, exc, "the batch was not recorded (no record changed)"
            ) from exc
        # Each record written as the intent has it (its lock held, its version read above):
        # without an fsync each, all of them made durable together below; a new one in place
        # (``batch_records``), one that replaces an ended session's record as any write.
        for entry, body in zip(entries, bodies, strict=True):
            assert body is not None
            kind = core.kind_of(entry)
            try:
                if entry.previous is None:
                    write_new(kind, entry.key, locks[entry.key], encode(masked_json(body)))
                else:
                    kind.write(
                        entry.key,
                        body,
                        previous_version=entry.previous,
                        durable=False,
                        remember=False,
                    )
            except StateWriteError as exc:
                # Committed, not yet complete: the next use of any of its records finishes it.
                exc.applied = True
                exc.add_note("the batch is committed; its other records are written when next used")
                raise
        try:
            core.ops.sync_all(core.root)
        except OSError as exc:
            # Committed: the intent stays, and its records are in place for every process.
            error = write_error(
                core.root, exc, "the batch is recorded, but a machine crash could undo it"
            )
            error.applied = True
            raise error from exc
        core.batches.remove(intent)
        events.extend(announced)
        return len(added)
