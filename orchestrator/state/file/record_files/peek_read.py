"""The file store's records read in this thread, without the store: no store object, no lock,
no event loop, no worker thread (``council status``'s quick look, ``run.reports.quick_report``).

It reads the way the store's own lock-free reads do (``core.peek``): every record file is
replaced whole, so a read sees one version, framed by ``codec`` and parsed by ``parse_record``
(which ``RecordKind.parse`` is too). What it does not do is anything the store would have to
act on first, so it gives way instead, and each read answers None (ask the store):

- a transaction's intent on disk (the store finishes or rolls it back before reading), or a
  batch of new task records (``task_batches``) whose writer is gone. A batch under way is not
  waited for, as the store's readers do not wait for it: each of its records is whole, and a
  record not written yet reads as not there yet;
- a record that does not decode or validate, or holds another key than its name (the store
  recovers it from its history, or quarantines it);
- a record directory without its current file (a recovery or deletion under way, or one for
  the store to do), a key that is no safe id, a file that cannot be read.

Nothing here writes a file. ``PeekRead.open`` checks the intents once, before any record is
read; a transaction committed after that is seen by the next look (the identities a caller
took before reading, ``layout``, say a record changed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.ids import is_safe_id
from orchestrator.models import KeyedRecord, SessionRecord, TaskState
from orchestrator.state.file.record_files.codec import RecordDamaged, decode
from orchestrator.state.file.record_files.layout import (
    BATCHES,
    CURRENT,
    INTENTS,
    RECORDS,
    SESSIONS,
    TASKS,
    Identity,
    file_writer_alive,
    stat_identity,
    subdirectories,
)

__all__ = ["PeekRead", "intents_left", "parse_record"]

M = TypeVar("M", bound=BaseModel)


class _GiveWay(Exception):
    """Something only the store may deal with: the read gives way to it."""


def parse_record(model: type[M], key_field: str, key: str, raw: bytes) -> M:
    """A record file's bytes as the ``model`` of record ``key``; RecordDamaged saying why not
    (a bad frame or checksum, a body that does not validate, another record's key)."""
    body = decode(raw)
    try:
        record = model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        raise RecordDamaged(f"does not validate: {where}: {first['msg']}") from None
    if getattr(record, key_field) != key:
        raise RecordDamaged(f"holds {key_field}={getattr(record, key_field)!r}")
    return record


class PeekRead:
    """Lock-free reads of the file store at ``root`` (``open`` one; module doc)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def open(cls, root: Path) -> PeekRead | None:
        """Blocking: a reader of the store at ``root``; None when there is no store directory
        there, or an intent on disk leaves the reading to the store (``intents_left``)."""
        if not root.is_dir() or intents_left(root):
            return None
        return cls(root)

    def sessions(self, keys: list[str] | None = None) -> list[SessionRecord] | None:
        """The session records of ``keys`` (None: every one there is) that exist, in order;
        None: ask the store."""
        return self._many(SESSIONS, keys, SessionRecord, "session_id")

    def tasks(
        self, keys: list[str], seen: dict[str, Identity | None] | None = None
    ) -> list[TaskState] | None:
        """The task records of ``keys`` that exist, in order; None: ask the store. ``seen``
        gets each key's identity (``layout``): of the very file read (its descriptor's, not
        the path's a moment before or after), None for a record with no file."""
        return self._many(TASKS, keys, TaskState, "task_id", seen)

    def records(self, namespace: str, keys: list[str] | None = None) -> list[KeyedRecord] | None:
        """The keyed records of ``namespace`` with ``keys`` (None: every one there is) that
        exist, in order, expired ones included (as on disk); None: ask the store."""
        if not is_safe_id(namespace):
            return None
        return self._many(os.path.join(RECORDS, namespace), keys, KeyedRecord, "key")

    def _many(
        self,
        kind: str,
        keys: list[str] | None,
        model: type[M],
        key_field: str,
        seen: dict[str, Identity | None] | None = None,
    ) -> list[M] | None:
        if keys is None:
            keys = subdirectories(self.root / kind)
        base = os.path.join(self.root, kind)
        try:
            return [
                record
                for key in keys
                if (record := self._one(base, key, model, key_field, seen)) is not None
            ]
        except _GiveWay:
            return None

    def _one(
        self,
        base: str,
        key: str,
        model: type[M],
        key_field: str,
        seen: dict[str, Identity | None] | None,
    ) -> M | None:
        """The current record ``key`` of the kind whose directory is ``base``; None when there
        is none; ``_GiveWay`` when only the store can say (module doc)."""
        if not is_safe_id(key):
            raise _GiveWay
        directory = f"{base}{os.sep}{key}"  # a safe id: a name, no join needed
        try:
            raw, identity = _read(f"{directory}{os.sep}{CURRENT}")
        except FileNotFoundError:
            if os.path.isdir(directory):
                raise _GiveWay from None  # a record directory without its current version
            if seen is not None:
                seen[key] = None
            return None
        except OSError:
            raise _GiveWay from None
        if seen is not None:
            seen[key] = identity
        try:
            return parse_record(model, key_field, key, raw)
        except RecordDamaged:
            raise _GiveWay from None


def _read(path: str) -> tuple[bytes, Identity]:
    """The file's bytes by the descriptor's own calls (a buffered ``open`` adds a seek and a
    terminal check to each of 10,000 records a look at a big run reads), and its identity.

    A read shorter than asked for is the file's end: a record file is replaced whole, never
    written in place, so the one asked for its size and a byte more ends the reading; one that
    was cut short anyway (a file of another kind) fails its frame's checksum, which only makes
    the store read it (``parse_record``)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        want = max(st.st_size, 1) + 1
        chunks = [os.read(fd, want)]
        if len(chunks[0]) == want:  # grown since its fstat: read on to its end
            while chunks[-1]:
                chunks.append(os.read(fd, 1 << 16))
    finally:
        os.close(fd)
    return b"".join(chunks), stat_identity(st)


def intents_left(root: Path) -> bool:
    """Blocking: whether the store at ``root``'s intent log holds what the store must act on
    before its records are read: a transaction under way or cut short, or a batch of new
    records whose writer is gone (module doc). (The batches' directory stays once made: its
    being there says nothing.)"""
    try:
        with os.scandir(root / INTENTS) as entries:
            return any(entry.name != BATCHES or _batch_left(entry.path) for entry in entries)
    except FileNotFoundError:
        return False
    except OSError:
        return True


def _batch_left(directory: str) -> bool:
    try:
        with os.scandir(directory) as entries:
            return any(not file_writer_alive(entry.name) for entry in entries)
    except FileNotFoundError:
        return False
    except OSError:
        return True
