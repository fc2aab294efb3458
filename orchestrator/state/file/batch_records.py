"""A batch's new task records, written in place, and finished from the batch's intent when
their writer died part way (``task_batches``).

A record a batch creates has no version before it, and the batch's intent, durable before any
record is written, holds its whole body. So it is not written as other records are (a temp
file, its bytes, a rename: two names and a rename per record) but in place: ``current.json``
made exclusively in the record's directory through the descriptor its lock already holds
(``FileLock.descriptor``, ``FileOperations.open_new_in``), its bytes written, no fsync (the
batch's one barrier makes them all durable). That is one ``openat``, one ``write`` and one
``close`` a record, where the temp file took eleven calls (the directory looked up again, a
random name, the rename and the walks to reach them).

What that gives up, and what takes its place: a record seen before its bytes are all written
(an empty or cut-short ``current.json``) reads as damaged, which the store's readers already
handle by reading again under the record's lock:

- while the batch's writer lives it holds the lock of every record of the batch until all are
  written, so the locked read waits for it and reads the whole record;
- a writer that died (SIGKILL, a crash) leaves the intent: whoever next holds the lock of a
  damaged record with no history that an intent of a batch creates writes it from that intent
  (``finish_unborn``, called by ``lockfree.load_or_recover`` before a damaged record is
  recovered or quarantined), and the next process to open the store replays the whole batch
  (``intents.replay``, which writes such a record again too). A half-written file is never
  read as a record: the frame's checksum (``codec``) refuses every prefix of one.

A write the disk refuses (ENOSPC part way) removes the file it made, so the record is missing,
as a refused temp file left it before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from orchestrator.events import Event
from orchestrator.events.state import StateUpdated
from orchestrator.filelock import FileLock
from orchestrator.safety.crashpoints import crash_point
from orchestrator.state.file.fsops import FileOperations, write_error
from orchestrator.state.file.intents import IntentLog
from orchestrator.state.file.record_files.layout import CURRENT
from orchestrator.state.file.record_files.records import RecordKind

__all__ = ["finish_unborn", "unborn_in", "write_new"]

M = TypeVar("M", bound=BaseModel)

Unborn = Callable[[str], "dict[str, Any] | None"]
"""The body an intent of a batch gives a record it creates (its key), or None."""


def write_new(kind: RecordKind[Any], key: str, lock: FileLock, data: bytes) -> None:
    """Create ``kind``'s record ``key`` in place with the framed bytes ``data`` (its lock,
    ``lock``, held exclusively; the record has neither a current version nor history): no
    fsync, the batch's barrier makes it durable. ``StateWriteError`` when the disk refuses,
    the record then missing."""
    ops: FileOperations = kind.ops
    path = kind.current_path(key)
    try:
        fd = ops.open_new_in(lock.descriptor, CURRENT, path)
        try:
            try:
                crash_point("batch.record_opened", str(path))
                ops.write(fd, data)
            finally:
                ops.close(fd)
        except OSError:
            with contextlib.suppress(OSError):
                ops.unlink(path)
            raise
    except OSError as exc:
        raise write_error(path, exc, f"{kind.name} record {key!r} was not created") from exc


def unborn_in(batches: IntentLog, kind_name: str) -> Unborn:
    """What ``finish_unborn`` asks (``RecordKind.unborn``): the body an intent on disk in
    ``batches`` gives a new record of the kind ``kind_name``. Blocking; looked at only for a
    record found damaged (one listing of the batches' directory, each intent read once)."""

    def body_of(key: str) -> dict[str, Any] | None:
        for path in batches.pending():
            intent = batches.load(path)
            for entry in intent.entries if intent is not None else ():
                new = entry.previous is None and entry.body is not None
                if new and entry.kind == kind_name and entry.key == key:
                    return entry.body
        return None

    return body_of


def finish_unborn(kind: RecordKind[M], key: str, events: list[Event]) -> M | None:
    """``kind``'s damaged record ``key`` written whole from the intent of the batch that
    creates it, when it has no history and such an intent is on disk; else None (the caller
    recovers it as any damaged record). Its exclusive lock held: a batch under way holds the
    locks of its records until every one is written, so one found damaged now was cut short."""
    if kind.unborn is None or kind.history_versions(key):
        return None
    body = kind.unborn(key)
    if body is None:
        return None
    record = kind.model.model_validate(body)
    record = kind.write(key, record, previous_version=None)  # a temp file renamed over the cut one
    version = int(getattr(record, "version", 1))
    events.append(StateUpdated(kind=kind.name, key=key, version=version, fields=[]))
    return record
