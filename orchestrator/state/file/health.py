"""The file backend's health report (``state.health``): it walks the record directories once,
reading each record without repairing it, and asks the disk how much room is left."""

from __future__ import annotations

import contextlib
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import BaseModel

from orchestrator import filelock
from orchestrator.errors import RecordNotFound, StateError
from orchestrator.models import TaskState
from orchestrator.state.file.core import FileCore
from orchestrator.state.file.record_files.codec import RecordDamaged
from orchestrator.state.file.record_files.records import RecordKind
from orchestrator.state.file.rules import has_data
from orchestrator.state.health import (
    LOW_DISK_BYTES,
    DamagedRecord,
    HealthFinding,
    RecordSize,
    StoreHealth,
    finish_health,
    oldest_active_claim,
)

__all__ = ["FileHealth"]


class FileHealth:
    def __init__(self, core: FileCore) -> None:
        self._core = core

    async def health(self, large_record_bytes: int) -> StoreHealth:
        core = self._core
        counts: dict[str, int] = {}
        damaged: list[DamagedRecord] = []
        sizes: list[RecordSize] = []
        stale = 0
        tasks: list[TaskState] = []
        for kind in await core.kinds():
            walked = await anyio.to_thread.run_sync(self._walk, kind)
            counts[kind.name] = walked.count
            damaged += walked.damaged
            sizes += walked.sizes
            stale += walked.stale
            tasks += [m for m in walked.models if isinstance(m, TaskState)]
        checkpoints = await anyio.to_thread.run_sync(self._checkpoints)
        counts["checkpoints"] = len(checkpoints.sizes) + len(checkpoints.damaged)
        damaged += checkpoints.damaged
        sizes += checkpoints.sizes
        free = await anyio.to_thread.run_sync(_free_bytes, core.root)
        findings = []
        if free is not None and free < LOW_DISK_BYTES:
            findings.append(
                HealthFinding(
                    level="problem",
                    text=f"only {free // (1024 * 1024)} MiB free under {core.root}: "
                    "records stop being written when the disk fills",
                )
            )
        details: dict[str, Any] = {
            "free_disk_bytes": free,
            "event_archives": len(core.events.archives()),
        }
        fields: dict[str, Any] = {
            "backend": "file",
            "where": str(core.root),
            "record_counts": counts,
            "damaged": damaged,
            "stale_locks": stale,
            "oldest_active_claim": oldest_active_claim(tasks),
            "event_log_bytes": await anyio.to_thread.run_sync(core.events.size),
            "last_checkpoint_at": checkpoints.newest,
            "backend_details": details,
            "findings": findings,
        }
        return finish_health(fields, sizes, large_record_bytes)

    def _walk(self, kind: RecordKind[Any]) -> _Walked:
        walked = _Walked()
        names = kind.keys()
        for key in names:
            current = kind.current_path(key)
            try:
                size = current.stat().st_size
            except OSError:
                size = None
            if size is not None:
                walked.count += 1
                walked.sizes.append(RecordSize(kind=kind.name, key=key, size=size))
                try:
                    record = kind.load(key)
                except (RecordDamaged, StateError) as damage:
                    reason = str(damage)
                    walked.damaged.append(DamagedRecord(kind=kind.name, key=key, reason=reason))
                else:
                    if record is not None:
                        walked.models.append(record)
            if self._stale(kind, key):
                walked.stale += 1
        return walked

    def _stale(self, kind: RecordKind[Any], key: str) -> bool:
        """A record directory holding only what a dead writer left (the directory of a record
        that is gone, made when its lock was taken; temp files), and nobody holds its lock
        (the directory's own) now."""
        leftovers = _has_temp_files(kind.dir_for(key))
        if not leftovers and has_data(kind, key):
            return False
        lock = filelock.try_acquire(kind.lock_path(key), root=self._core.anchor, directory=True)
        if lock is None:
            return False  # someone is writing it now
        lock.release()
        return True

    def _checkpoints(self) -> _Walked:
        files = self._core.checkpoints
        walked = _Walked()
        for checkpoint_id in files.ids():
            try:
                size = files.path(checkpoint_id).stat().st_size
                checkpoint = files.read(checkpoint_id)
            except RecordNotFound:
                continue  # removed meanwhile
            except StateError as exc:
                damage = DamagedRecord(kind="checkpoints", key=checkpoint_id, reason=str(exc))
                walked.damaged.append(damage)
            except OSError:
                continue  # removed meanwhile
            else:
                walked.sizes.append(RecordSize(kind="checkpoints", key=checkpoint_id, size=size))
                if walked.newest is None or checkpoint.created_at > walked.newest:
                    walked.newest = checkpoint.created_at
        return walked


class _Walked:
    def __init__(self) -> None:
        self.count = 0
        self.stale = 0
        self.damaged: list[DamagedRecord] = []
        self.sizes: list[RecordSize] = []
        self.models: list[BaseModel] = []  # the intact records, as read
        self.newest: datetime | None = None  # checkpoints: when the newest was taken


def _has_temp_files(directory: Path) -> bool:
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        return any(e.name.endswith(".tmp") for e in entries)
    return False


def _free_bytes(root: Path) -> int | None:
    """Free space for this user on the disk holding ``root`` (its nearest existing parent)."""
    for place in (root, *root.parents):
        with contextlib.suppress(OSError):
            return shutil.disk_usage(place).free
    return None
