"""Records that expire: a keyed record written with a ``ttl`` carries ``expires_at`` and from
then on reads as absent (``get_record``, ``list_records``, a compare-and-set's version check)
until upkeep removes it (``purge_expired``). The rules every backend applies."""

from __future__ import annotations

from datetime import datetime, timedelta

from orchestrator.errors import StateError
from orchestrator.models import KeyedRecord

__all__ = ["expires_at", "is_expired", "live"]


def expires_at(now: datetime, ttl: float | None) -> datetime | None:
    """When a record written at ``now`` with ``ttl`` seconds to live expires (None: never)."""
    if ttl is None:
        return None
    if not ttl > 0:
        raise StateError(f"a record's ttl must be a positive number of seconds, not {ttl!r}")
    return now + timedelta(seconds=ttl)


def is_expired(record: KeyedRecord, now: datetime) -> bool:
    return record.expires_at is not None and record.expires_at <= now


def live(record: KeyedRecord | None, now: datetime) -> KeyedRecord | None:
    """``record``, or None when there is none or it has expired."""
    return None if record is None or is_expired(record, now) else record
