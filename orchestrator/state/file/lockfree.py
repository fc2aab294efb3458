"""The file store's reads without a record's lock (blocking): ``peek`` one record, ``read_present``
many, and ``load_or_recover`` (the locked path's own read, under the lock its caller holds).

Every record file is replaced atomically, so a lock-free read sees one whole version; a record
that reads as damaged goes to the locked path (``FileCore.recover``). ``FileCore`` calls these in
its worker-thread calls, after its own check that no transaction cut short touches the kind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Mapping
from typing import TypeVar

from pydantic import BaseModel

from orchestrator.events import Event
from orchestrator.ids import check_id
from orchestrator.state.file.batch_records import finish_unborn
from orchestrator.state.file.record_files.codec import RecordDamaged
from orchestrator.state.file.record_files.layout import stat_identity
from orchestrator.state.file.record_files.records import RecordKind

__all__ = [
    "KEPT_FROM_READS",
    "LISTED_FROM",
    "Unchanged",
    "load_or_recover",
    "peek",
    "read_all_now",
    "read_changed",
    "read_present",
]

M = TypeVar("M", bound=BaseModel)

KEPT_FROM_READS = 32  # a ``read_present`` of more records keeps none of their bytes
LISTED_FROM = 512  # a ``read_present`` of this many keys lists the directory, not a stat each


def read_all_now(kind: RecordKind[M], ready: bool) -> list[M] | None:
    """Every record of ``kind``, read lock-free on this thread; None when the read cannot be
    made here: not ``ready`` (the store's leftovers unsettled, or a transaction's intent
    touching the kind: its caller's look) or a record read as damaged (recovered under its
    lock, by a read of its own)."""
    if not ready:
        return None
    listed = read_present(kind, None)
    if any(damaged for _, _, damaged in listed):
        return None
    return [record for _, record, _ in listed if record is not None]


def read_present(
    kind: RecordKind[M], keys: list[str] | None, known: Mapping[str, M] | None = None
) -> list[tuple[str, M | None, bool]]:
    """Each of ``keys`` (None: every record of the kind) with its record (None: there is none)
    and whether it read as damaged (its record then None: the locked path's to read);
    ``known``: records the caller holds, by key, each given back for a file that holds
    exactly it (``RecordKind.load``)."""
    known = known or {}
    # Many keys: one listing of the kind's directory, not a stat per key (``peek``'s look): a
    # session of 10,000 tasks, most not recorded yet, is read twice when it stops. A few keys
    # (a tick's): a stat each, not a listing of 10,000 names.
    listing = keys is None or len(keys) >= LISTED_FROM
    present = kind.names() if listing else None
    wanted = sorted(present or ()) if keys is None else keys
    # Many records' bytes are not kept: they would push out those of the records in use.
    remember = len(wanted) <= KEPT_FROM_READS
    found: list[tuple[str, M | None, bool]] = []
    for key in wanted:
        try:
            if present is None:
                found.append((key, peek(kind, key, known.get(key)), False))
            elif key in present:
                found.append((key, kind.load(key, remember=remember, known=known.get(key)), False))
            else:
                check_id(key, f"{kind.name} id")  # as ``load`` checks a present one
                found.append((key, None, False))
        except RecordDamaged:
            found.append((key, None, True))
    return found


class Unchanged:
    """``read_changed``'s answer for a record still the one its caller holds."""

    __slots__ = ()


UNCHANGED = Unchanged()


def read_changed(
    kind: RecordKind[M], keys: list[str], unchanged: Callable[[str, Hashable], bool]
) -> list[tuple[str, M | Unchanged | None, bool]]:
    """``read_present(kind, keys)``, but a record whose file is the one it was last seen in
    here (``kind.stamps``) with a stamp ``unchanged(key, stamp)`` accepts is not read:
    ``UNCHANGED`` (as is one read and found to be the one held). Every record read is
    tracked from now on."""
    stamps = kind.stamps
    assert stamps is not None, f"{kind.name}: no stamps kept"
    listing = len(keys) >= LISTED_FROM
    present = kind.names() if listing else None
    found: list[tuple[str, M | Unchanged | None, bool]] = []
    for key in keys:
        if present is not None and key not in present:
            check_id(key, f"{kind.name} id")  # as ``load`` checks a present one
            found.append((key, None, False))
            continue
        if key in stamps:  # a stat, not a read, when its stamp is the caller's
            try:
                status = os.stat(kind.current_file(key))
            except OSError:
                pass  # gone, or unreadable: the read below says which
            else:
                stamp = stamps.stamp_at(key, stat_identity(status))
                if stamp is not None and unchanged(key, stamp):
                    found.append((key, UNCHANGED, False))
                    continue
        try:
            if present is None and not kind.dir_for(key).exists():
                found.append((key, None, False))  # as ``peek`` finds it
            else:
                record = kind.load(key, remember=False, track=True)
                if record is not None and unchanged(key, stamps.stamp(record)):
                    found.append((key, UNCHANGED, False))  # read, and the one held after all
                else:
                    found.append((key, record, False))
        except RecordDamaged:
            found.append((key, None, True))
    return found


def peek(kind: RecordKind[M], key: str, known: M | None = None, *, track: bool = False) -> M | None:
    """Read a record without its lock (blocking; RecordDamaged if it is damaged). The same
    read without the store, for a process that has none open, is ``peek_read``.

    Every file is replaced atomically, so a lock-free read sees one whole version: the one
    current when it opened the file. A recovery or deletion under way shows as damage (the
    current file missing while history exists), which sends the reader to the locked path.
    ``known``: the record as the caller holds it (``RecordKind.load``).
    """
    if not kind.dir_for(key).exists():
        return None
    return kind.load(key, track=track, known=known)


def load_or_recover(
    kind: RecordKind[M], key: str, events: list[Event], known: M | None = None
) -> M | None:
    """The record (its exclusive lock held), recovered when damaged; a new record a batch's
    writer left cut short is first written whole from the batch's intent (``batch_records``).
    ``known``: the record as the caller holds it (``RecordKind.load``)."""
    try:
        return kind.load(key, known=known)
    except RecordDamaged:
        finished = finish_unborn(kind, key, events)
        if finished is not None:
            return finished
    record, recovery = kind.load_or_recover(key)
    if recovery is not None:
        events.append(recovery.event())
    return record
