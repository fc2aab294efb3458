"""The rules the file backend applies to a record: the expected version, what a crashed writer
left behind. Those of every backend: ``state.record_rules``, ``state.claim_rules``."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from orchestrator.errors import VersionConflict
from orchestrator.state.file.record_files.records import RecordKind

__all__ = ["check_version", "has_data", "remove_temp_files"]

_OLD_LOCK = ".lock"  # a record's lock file before its directory became the lock


def check_version(
    kind: RecordKind[Any], key: str, current: BaseModel | None, expected: int | None
) -> None:
    if expected is None:
        return
    actual = int(getattr(current, "version", 0)) if current is not None else 0
    if actual != expected:
        raise VersionConflict(f"{kind.name}/{key}", expected, actual if current else None)


def has_data(kind: RecordKind[Any], key: str) -> bool:
    return kind.current_path(key).exists() or bool(kind.history_versions(key))


def remove_temp_files(kind: RecordKind[Any], key: str) -> int:
    """Temp files under a record we hold exclusively can only be a crashed writer's. The
    ``.lock`` file an earlier version locked goes too, uncounted: the record's lock is its
    directory now, and that file would keep an emptied directory from being removed."""
    removed = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(kind.dir_for(key)) as entries:
        for entry in entries:
            if entry.name.endswith(".tmp") or entry.name == _OLD_LOCK:
                kind.ops.unlink(Path(entry.path))
                removed += entry.name != _OLD_LOCK
    return removed
