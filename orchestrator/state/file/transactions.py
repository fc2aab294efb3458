"""Multi-record transactions in the file backend (``StateStore.write_many``).

The locks of every record are taken in the one global order (``state.transactions``), so two
transactions over overlapping records wait rather than deadlock, and a single-record write
(which holds one lock) can never close a cycle. Under them every record is read, its expected
version and fence checked and its next version computed; only when all of them pass is the
intent written, which commits the transaction, and then the records (``intents``). Events
follow the removal of the intent: a transaction refused or cut short announces nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from orchestrator import filelock
from orchestrator.errors import RecordNotFound, StateWriteError
from orchestrator.events import Event
from orchestrator.events.state import SessionUpdated, StateUpdated
from orchestrator.models import KeyedRecord, SessionRecord, TaskState, utcnow
from orchestrator.safety.secret_mask import masked_model
from orchestrator.state.claim_rules import check_fence
from orchestrator.state.expiry import live
from orchestrator.state.file.core import FileCore, load_or_recover
from orchestrator.state.file.fsops import write_error
from orchestrator.state.file.intents import IntentEntry, replay
from orchestrator.state.file.record_files.records import RecordKind
from orchestrator.state.file.rules import check_version
from orchestrator.state.metrics import compute_metrics
from orchestrator.state.transactions import (
    Committed,
    DeleteRecord,
    PutRecord,
    RecordWrite,
    UpdateSession,
    UpdateTask,
    checked,
    record_of,
)

__all__ = ["FileTransactions"]


class FileTransactions:
    def __init__(self, core: FileCore) -> None:
        self._core = core

    def _kind(self, write: RecordWrite) -> RecordKind[Any]:
        core = self._core
        kind, namespace, _ = record_of(write)
        if kind == "records":
            return core.namespace(namespace)
        return core.tasks if kind == "tasks" else core.sessions

    async def write_many(self, writes: Sequence[RecordWrite]) -> Committed:
        core = self._core
        ordered = checked(writes)
        if not ordered:
            return Committed()
        for write in ordered:  # finish what a dead process left on these records first
            await core.settle(self._kind(write), record_of(write)[2])
        held: list[filelock.FileLock] = []
        try:
            for write in ordered:
                path = self._kind(write).lock_path(record_of(write)[2])
                held.append(
                    await filelock.acquire(
                        path, timeout=core.lock_timeout, root=core.anchor, directory=True
                    )
                )
            return await core.in_thread(lambda events: self._commit(ordered, events))
        finally:
            for lock in reversed(held):
                lock.release()

    def _commit(self, ordered: list[RecordWrite], events: list[Event]) -> Committed:
        """Check and compute every write, commit the intent, write the records (the locks of
        all are held)."""
        core = self._core
        entries: list[IntentEntry] = []
        bodies: list[BaseModel | None] = []
        announced: list[Event] = []
        deleted: dict[tuple[str, str], bool] = {}
        now = utcnow()
        for write in ordered:
            kind = self._kind(write)
            name, namespace, key = record_of(write)
            current = load_or_recover(kind, key, events)
            if isinstance(current, KeyedRecord):
                # An expired record is absent to the version check, but its versions go on.
                check_version(kind, key, live(current, now), write.expected_version)
            else:
                check_version(kind, key, current, write.expected_version)
            previous = int(getattr(current, "version", 0)) if current is not None else None
            if isinstance(write, DeleteRecord):
                # An expired record goes too; ``deleted`` tells only of a live one.
                deleted[(namespace, key)] = live(current, now) is not None
                entries.append(IntentEntry(name, namespace, key, previous, None, None))
                bodies.append(None)
                continue
            updates: dict[str, Any]
            if isinstance(write, UpdateTask):
                if write.fencing_token is not None:
                    check_fence(key, current, write.fencing_token)
                updates = dict(write.updates)
            elif isinstance(write, UpdateSession):
                if current is None:
                    raise RecordNotFound(f"session {key!r} does not exist")
                updates = dict(write.updates)
            else:
                assert isinstance(write, PutRecord)
                updates = {"namespace": namespace, "data": dict(write.data), "expires_at": None}
            record, fields = core.merge(kind, key, current, updates, {})
            version = int(getattr(record, "version", 0))
            entries.append(IntentEntry(name, namespace, key, previous, version, None))
            bodies.append(masked_model(record))  # as it is stored: what the caller is given
            announced.append(StateUpdated(kind=kind.name, key=key, version=version, fields=fields))
            if isinstance(write, UpdateSession):
                announced.append(SessionUpdated(session_id=key))
        try:
            intent = core.intents.write(entries, bodies)
        except OSError as exc:
            raise write_error(
                core.intents.directory, exc, "the transaction was not applied (no record changed)"
            ) from exc
        try:
            replay(intent, core.kind_of, events)
        except StateWriteError as exc:
            # Committed, not yet complete: the next use of any of its records finishes it.
            exc.applied = True
            exc.add_note(
                "the transaction is committed; its other records are written when next used"
            )
            raise
        core.intents.remove(intent)
        events.extend(announced)
        done = self._result(ordered, bodies)
        done.deleted = deleted
        return done

    def _result(self, ordered: list[RecordWrite], bodies: list[BaseModel | None]) -> Committed:
        core = self._core
        done = Committed()
        for write, body in zip(ordered, bodies, strict=True):
            _, namespace, key = record_of(write)
            if isinstance(body, TaskState):
                done.tasks[key] = body
            elif isinstance(body, SessionRecord):
                members = (core.peek_task(t) for t in body.task_ids)
                metrics = compute_metrics(t for t in members if t and t.session_id == key)
                done.sessions[key] = body.model_copy(update={"metrics": metrics})
            elif isinstance(body, KeyedRecord):
                done.records[(namespace, key)] = body
            else:
                done.records[(namespace, key)] = None
        return done
