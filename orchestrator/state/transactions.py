"""Multi-record transactions: several writes that are applied all together or not at all.

A caller that must change several records together (the tasks a run adds and the session
that lists them) hands the writes to ``StateStore.write_many`` at once, or builds them up in
``async with transaction(store) as txn:`` (nothing is written before the block ends without
an exception). Each write may carry the version it expects; one that does not match raises
``VersionConflict`` and none is applied. Events follow only a committed transaction.

The backends (``file.transactions``, ``postgres.transactions``) take every record in
``lock_order``: one order for every process, so two transactions over the same records wait
for each other instead of deadlocking.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.errors import StateError
from orchestrator.ids import check_id
from orchestrator.models import KeyedRecord, SessionRecord, TaskState

__all__ = [
    "Committed",
    "DeleteRecord",
    "PutRecord",
    "RecordWrite",
    "Transaction",
    "UpdateSession",
    "UpdateTask",
    "WritesMany",
    "checked",
    "record_of",
    "transaction",
]


@dataclass(frozen=True)
class UpdateTask:
    """Merge ``updates`` into the task (created if absent), as ``update_task_state``."""

    task_id: str
    updates: Mapping[str, Any]
    expected_version: int | None = None
    fencing_token: int | None = None


@dataclass(frozen=True)
class UpdateSession:
    """Merge ``updates`` into an existing session, as ``update_session``."""

    session_id: str
    updates: Mapping[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True)
class PutRecord:
    """Replace a keyed record's data, as ``put_record``."""

    namespace: str
    key: str
    data: Mapping[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True)
class DeleteRecord:
    """Remove a keyed record, as ``delete_record``."""

    namespace: str
    key: str
    expected_version: int | None = None


RecordWrite = UpdateTask | UpdateSession | PutRecord | DeleteRecord


@dataclass
class Committed:
    """What a committed transaction wrote: each record as it is now (a deleted record maps
    to None; ``deleted`` says whether there was one to delete)."""

    tasks: dict[str, TaskState] = field(default_factory=dict)
    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    records: dict[tuple[str, str], KeyedRecord | None] = field(default_factory=dict)
    deleted: dict[tuple[str, str], bool] = field(default_factory=dict)


def record_of(write: RecordWrite) -> tuple[str, str, str]:
    """The record a write changes: (kind, namespace, key); kind is ``tasks``, ``sessions``
    or ``records`` (namespace empty but for keyed records)."""
    match write:
        case UpdateTask(task_id=key):
            return ("tasks", "", key)
        case UpdateSession(session_id=key):
            return ("sessions", "", key)
        case PutRecord(namespace=ns, key=key) | DeleteRecord(namespace=ns, key=key):
            return ("records", ns, key)
    raise TypeError(f"not a record write: {write!r}")


def checked(writes: Sequence[RecordWrite]) -> list[RecordWrite]:
    """The writes in lock order, after checking what every backend refuses alike: a bad id,
    two writes of one record (which should win is the caller's to say), session metrics."""
    seen: set[tuple[str, str, str]] = set()
    for write in writes:
        kind, namespace, key = record_of(write)
        if namespace:
            check_id(namespace, "record namespace")
        check_id(key, f"{namespace or kind} key")
        if (kind, namespace, key) in seen:
            where = "/".join(p for p in (kind, namespace, key) if p)
            raise StateError(f"transaction writes {where} twice; merge the two writes into one")
        seen.add((kind, namespace, key))
        if isinstance(write, UpdateSession) and "metrics" in write.updates:
            raise StateError("session metrics are computed by the store, not written")
    return sorted(writes, key=record_of)


class WritesMany(Protocol):
    """The part of ``StateStore`` a ``transaction`` needs."""

    async def write_many(self, writes: Sequence[RecordWrite]) -> Committed: ...


class Transaction:
    """Writes gathered by ``transaction``; applied together when the block ends."""

    def __init__(self) -> None:
        self.writes: list[RecordWrite] = []
        self.committed: Committed | None = None

    def update_task(
        self,
        task_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        fencing_token: int | None = None,
    ) -> None:
        self.writes.append(UpdateTask(task_id, dict(updates), expected_version, fencing_token))

    def update_session(
        self, session_id: str, updates: Mapping[str, Any], expected_version: int | None = None
    ) -> None:
        self.writes.append(UpdateSession(session_id, dict(updates), expected_version))

    def put_record(
        self,
        namespace: str,
        key: str,
        data: Mapping[str, Any],
        expected_version: int | None = None,
    ) -> None:
        self.writes.append(PutRecord(namespace, key, dict(data), expected_version))

    def delete_record(self, namespace: str, key: str, expected_version: int | None = None) -> None:
        self.writes.append(DeleteRecord(namespace, key, expected_version))


@contextlib.asynccontextmanager
async def transaction(store: WritesMany) -> AsyncIterator[Transaction]:
    """Gather writes in the block and commit them with ``store.write_many`` when it ends; an
    exception in the block writes nothing. ``txn.committed`` holds the result afterwards."""
    txn = Transaction()
    yield txn
    if txn.writes:
        txn.committed = await store.write_many(txn.writes)
