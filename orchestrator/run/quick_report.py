"""The newest session's report of a file store, built from its record files in this thread,
without the store, its event loop or its worker threads: ``council status``'s first look after
a write (``report_cache`` keeps what this builds, for the looks after it).

It reads what the report shows and nothing else, the way the store's own lock-free reads do
(``state.file.core.peek``: every record file is replaced whole, so a read sees one version):
every session record (to find the newest), the newest session's tasks, the presence records of
its workstations, its spend line and the collision radar's records. The identities of the record
files are taken before they are read (``report_cache.snapshot_sessions``, ``snapshot_tasks``),
so a write meanwhile leaves the kept report stale by its own identities and the next look builds
it again.

Anything the store would have to act on first is left to it: a transaction's intent on disk
(the store finishes or rolls it back before reading), a record that does not decode or
validate, a record directory without its current file (a recovery under way, or one for the
store to do). Then ``quick_report`` answers None and the caller opens the store, which reads,
recovers and reports as it always did. Nothing here writes a record.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.ids import is_safe_id
from orchestrator.models import KeyedRecord, SessionRecord, TaskState, utcnow
from orchestrator.radar.records import COLLISIONS, read_collision
from orchestrator.run.report import RunReport
from orchestrator.run.report_cache import keep, snapshot_sessions, snapshot_tasks
from orchestrator.run.session_report import STALE, report_of
from orchestrator.scheduler.presence import NAMESPACE as PRESENCE
from orchestrator.scheduler.presence import alive_among
from orchestrator.spend.line import NAMESPACE as SPEND_LINES
from orchestrator.state.expiry import is_expired
from orchestrator.state.file.codec import RecordDamaged, decode
from orchestrator.state.file.layout import CURRENT, SESSIONS, TASKS, file_writer_alive

__all__ = ["quick_report"]

M = TypeVar("M", bound=BaseModel)

_INTENTS = "transactions"  # the store's intent log (``state.file.intents``)
_BATCHES = "batches"  # its batches of new records, kept apart (``FileCore.batches``)
_RECORDS = "records"  # keyed records, one directory per namespace


class _AskTheStore(Exception):
    """Something only the store may deal with: the quick look gives way to it."""


def quick_report(root: Path) -> RunReport | None:
    """Blocking: the newest session's report of the file store at ``root``, kept for the next
    look (``report_cache.keep``); None when the store itself must be asked (module doc), or
    when no session is recorded there (the store's path says so in its own words)."""
    if not root.is_dir() or _intents_left(root):
        return None
    try:
        shot = snapshot_sessions(root)
        sessions = [
            s
            for key in shot.sessions
            if (s := _read(root, SESSIONS, key, SessionRecord, "session_id"))
        ]
        if not sessions:
            return None
        newest = max(sessions, key=lambda s: (s.created_at, s.session_id))
        task_ids = list(newest.task_ids)
        snapshot_tasks(root, shot, newest.session_id, task_ids)
        tasks = [
            task
            for key in task_ids
            if (task := _read(root, TASKS, key, TaskState, "task_id")) is not None
            and task.session_id == newest.session_id
        ]
        now = utcnow()
        presence = [record for record in _namespace(root, PRESENCE) if not is_expired(record, now)]
        spend = os.path.join(_RECORDS, SPEND_LINES)
        line = _read(root, spend, newest.session_id, KeyedRecord, "key")
        if line is not None and is_expired(line, now):
            line = None
        alive = alive_among(presence, newest.session_id, STALE, now)
        found = [
            collision
            for record in _namespace(root, COLLISIONS)
            if not is_expired(record, now) and (collision := read_collision(record.data))
        ]
        report, ends = report_of(newest, tasks, alive, line, now, found)
    except _AskTheStore:
        return None
    keep(root, shot, ends, report)
    return report


def _intents_left(root: Path) -> bool:
    """Whether the intent log holds what the store must act on first: a transaction under
    way or cut short, or a batch of new task records (``task_batches``, in a directory of its
    own) whose writer is gone. A batch under way is not waited for, as the store's readers do
    not wait for it: each of its records is whole, and a task not written yet shows as not
    recorded yet. (The batches' directory stays once made: its being there says nothing.)"""
    try:
        with os.scandir(root / _INTENTS) as entries:
            return any(entry.name != _BATCHES or _batch_left(entry.path) for entry in entries)
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


def _namespace(root: Path, namespace: str) -> list[KeyedRecord]:
    """Every keyed record of ``namespace`` there is now."""
    kind = os.path.join(_RECORDS, namespace)
    try:
        with os.scandir(root / kind) as entries:
            keys = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        return []
    return [
        record for key in keys if (record := _read(root, kind, key, KeyedRecord, "key")) is not None
    ]


def _read(root: Path, kind: str, key: str, model: type[M], key_field: str) -> M | None:
    """The current record ``key`` of ``kind`` (a directory under ``root``), as the store's
    lock-free read has it; None when there is none; ``_AskTheStore`` when only the store can
    say (damaged, missing its current file, unreadable)."""
    if not is_safe_id(key):
        raise _AskTheStore
    directory = os.path.join(root, kind, key)
    try:
        with open(os.path.join(directory, CURRENT), "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        if os.path.isdir(directory):
            raise _AskTheStore from None  # history without a current version: a recovery
        return None
    except OSError:
        raise _AskTheStore from None
    try:
        record = model.model_validate_json(decode(raw))
    except (RecordDamaged, ValidationError):
        raise _AskTheStore from None
    if getattr(record, key_field) != key:
        raise _AskTheStore  # a record under another's name: the store quarantines it
    return record
