"""The intent records of the file backend's transactions: how several record writes become
all-or-nothing on a file system that replaces one file at a time.

A transaction holds the locks of all its records, checks them, then writes one intent file
``<root>/transactions/<id>.json`` durably (temp file, fsync, rename, directory fsync, framed
with a checksum like every record) listing each record's new body, the version it replaces
and the version it becomes. Only then are the records written, one by one, and the intent
removed. The intent file is the commit point:

- a process that dies before the intent is in place leaves at most a temp file of it: the
  transaction never happened (the temp file is removed once its writer is gone);
- a process that dies after leaves the intent: the transaction happened, and whoever next
  touches one of its records (or opens the store) takes the records' locks, writes those
  still at their old version, and removes the intent (``replay``; writing a record already
  at its new version again is skipped, so a replay may itself be cut short and run again).

Everything here is synchronous and expects the caller to hold the locks of the intent's
records (``FileCore.settle`` and ``file.transactions`` take them).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from orchestrator.errors import StateCorrupted
from orchestrator.events import Event
from orchestrator.safety.secret_mask import masked_json
from orchestrator.state.file.fsops import FileOperations, durable_write
from orchestrator.state.file.record_files.codec import RecordDamaged, decode, encode
from orchestrator.state.file.record_files.layout import file_writer_alive, process_alive
from orchestrator.state.file.record_files.records import RecordKind, Recovery

__all__ = [
    "Intent",
    "IntentEntry",
    "IntentLog",
    "KindOf",
    "replay",
    "writer_alive",
]


# A directory changed this recently may change again within the file system's timestamp
# granularity without its mtime moving, so "nothing pending" is trusted only after this long.
_RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class IntentEntry:
    """One record of a transaction: ``body`` None deletes it."""

    kind: str  # tasks, sessions or records
    namespace: str  # keyed records only
    key: str
    previous: int | None  # the version it replaces; None: the record does not exist
    version: int | None  # the version it becomes; None for a deletion
    body: dict[str, Any] | None

    @property
    def record(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.key)


KindOf = Callable[[IntentEntry], RecordKind[Any]]
"""The record kind an entry writes (the store's tasks, sessions, or a namespace)."""


@dataclass(frozen=True)
class Intent:
    txn: str
    path: Path
    entries: tuple[IntentEntry, ...]

    def touches(self, record: tuple[str, str, str]) -> bool:
        return any(e.record == record for e in self.entries)


class IntentLog:
    """The ``transactions/`` directory of a store."""

    def __init__(self, directory: Path, ops: FileOperations) -> None:
        self.directory = directory
        self.ops = ops
        self._clean_mtime: int | None = None  # the directory's mtime when last found empty
        # Intents read, by path, with the identity of the file they were read from: a reader
        # that checks every record it reads against the intents on disk (``FileCore``) reads
        # a big one (a batch of records, ``task_batches``) once, not at every record.
        self._loaded: dict[Path, tuple[tuple[int, int, int, int], Intent]] = {}

    def write(self, entries: list[IntentEntry], bodies: list[BaseModel | None]) -> Intent:
        """Make the intent durable; from its return on, the transaction is committed."""
        txn = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
        path = self.directory / f"{txn}.json"
        for i, body in enumerate(bodies):
            if body is not None:
                # The body as the record file will hold it: secrets already masked.
                entries[i] = _with_body(entries[i], json.loads(masked_json(body)))
        doc = {"txn": txn, "writes": [_entry_doc(e) for e in entries]}
        self.ops.makedirs(self.directory)
        raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        durable_write(path, encode(raw), self.ops)
        return Intent(txn, path, tuple(entries))

    def quiet(self) -> bool:
        """Whether there is surely no intent on disk, told by one stat and nothing else (no
        listing: safe on the event loop's thread): the directory is missing, or unchanged
        since it was last listed empty, longer ago than its time stamp can be trusted. False
        says only that a listing (``pending``) must tell."""
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            return True
        return mtime == self._clean_mtime and time.time_ns() - mtime > _RACY_NS

    def pending(self) -> list[Path]:
        """The intent files on disk now (cheap when there are none: one stat)."""
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except FileNotFoundError:
            return []
        if mtime == self._clean_mtime and time.time_ns() - mtime > _RACY_NS:
            return []
        found: list[Path] = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.endswith(".json") and not entry.name.startswith("."):
                    found.append(Path(entry.path))
        # Temp files of dead writers are cleared on first use and by upkeep. The directory is
        # known empty at ``mtime`` only when listed longer after it than its time stamp can
        # be trusted: an intent written within the same tick of the clock leaves it unchanged.
        if not found and time.time_ns() - mtime > _RACY_NS:
            self._clean_mtime = mtime
        return sorted(found)

    def load(self, path: Path) -> Intent | None:
        """The intent at ``path``; None when it is gone (its transaction finished). An intent
        that does not decode was never committed (the rename that commits one comes after its
        bytes are synced): it is moved to quarantine and None returned."""
        try:
            with open(path, "rb") as handle:
                seen = _identity(os.fstat(handle.fileno()))
                known = self._loaded.get(path)
                if known is not None and known[0] == seen:
                    return known[1]  # an intent never changes once in place: read it once
                raw = handle.read()
        except FileNotFoundError:
            return None
        try:
            doc = json.loads(decode(raw))
            entries = tuple(_entry_of(e) for e in doc["writes"])
            intent = Intent(str(doc["txn"]), path, entries)
            if len(self._loaded) >= _LOADED_KEPT:
                self._loaded.clear()
            self._loaded[path] = (seen, intent)
            return intent
        except (RecordDamaged, ValueError, KeyError, TypeError):
            quarantine = self.directory.parent / "quarantine" / "transactions"
            self.ops.makedirs(quarantine)
            self.ops.replace(path, quarantine / path.name)
            return None

    def remove(self, intent: Intent) -> None:
        """The transaction's records are all written: its intent goes. No directory fsync:
        an intent a machine crash brings back is replayed again, and writes nothing."""
        self._loaded.pop(intent.path, None)
        with contextlib.suppress(FileNotFoundError):
            self.ops.unlink(intent.path)

    def roll_back_orphans(self) -> int:
        """Remove the temp files of intents whose writers died before committing them."""
        removed = 0
        for path in self._orphan_temps():
            with contextlib.suppress(FileNotFoundError):
                self.ops.unlink(path)
                removed += 1
        return removed

    def _orphan_temps(self) -> list[Path]:
        orphans: list[Path] = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith(".") and name.endswith(".tmp") and not file_writer_alive(name):
                    orphans.append(Path(entry.path))
        return orphans


_LOADED_KEPT = 64  # intents kept read; a dead process leaves a few at most


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def writer_alive(intent: Intent) -> bool:
    """Whether the process that wrote ``intent`` is still running (its pid is in the
    transaction's name: ``<time>-<pid>-<hex>``)."""
    try:
        return process_alive(int(intent.txn.split("-")[1]))
    except (IndexError, ValueError):
        return False


def _with_body(entry: IntentEntry, body: dict[str, Any]) -> IntentEntry:
    return IntentEntry(entry.kind, entry.namespace, entry.key, entry.previous, entry.version, body)


def _entry_doc(entry: IntentEntry) -> dict[str, Any]:
    return {
        "kind": entry.kind,
        "namespace": entry.namespace,
        "key": entry.key,
        "previous": entry.previous,
        "version": entry.version,
        "body": entry.body,
    }


def _entry_of(doc: dict[str, Any]) -> IntentEntry:
    previous, version, body = doc["previous"], doc["version"], doc["body"]
    return IntentEntry(
        kind=str(doc["kind"]),
        namespace=str(doc["namespace"]),
        key=str(doc["key"]),
        previous=int(previous) if previous is not None else None,
        version=int(version) if version is not None else None,
        body=dict(body) if body is not None else None,
    )


def replay(intent: Intent, kind_of: KindOf, events: list[Event]) -> list[IntentEntry]:
    """Bring every record of ``intent`` to its new version (their locks held); return the
    entries written now. A record already at its new version is left alone, so running this
    again after it was cut short finishes the job; a record at neither version (which no
    writer that honours intents can cause) is left alone too.

    A record the intent creates that is damaged, with no history (a batch's new file, written
    in place without an fsync of its own, cut short by its writer's death or whose bytes a
    machine crash never let reach the disk: ``batch_records``), is written again from the
    intent, not quarantined: it never was a committed version."""
    written: list[IntentEntry] = []
    for entry in intent.entries:
        kind = kind_of(entry)
        try:
            current, recovery = _unborn_or_loaded(kind, entry)
        except StateCorrupted:
            if entry.previous is not None or entry.body is None:
                raise
            if kind.history_versions(entry.key):
                raise
            current, recovery = None, None
        if recovery is not None:
            events.append(recovery.event())
        at = int(getattr(current, "version", 0)) if current is not None else None
        if entry.body is None:
            if current is not None and at == entry.previous:
                kind.delete(entry.key)
                written.append(entry)
        elif at == entry.previous and at != entry.version:
            record = kind.model.model_validate(entry.body)
            kind.write(entry.key, record, previous_version=entry.previous)
            written.append(entry)
    return written


def _unborn_or_loaded(kind: RecordKind[Any], entry: IntentEntry) -> tuple[Any, Recovery | None]:
    """``kind.load_or_recover`` of the entry's record, except that a record the entry creates
    found damaged with no history is taken as not there (no quarantine copy of it)."""
    if entry.previous is None and entry.body is not None:
        try:
            return kind.load(entry.key), None
        except RecordDamaged:
            if not kind.history_versions(entry.key):
                return None, None
    return kind.load_or_recover(entry.key)
