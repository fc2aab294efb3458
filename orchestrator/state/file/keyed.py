"""Keyed records of other layers (worktree and file ownership), one namespace each.

They live under ``<root>/records/<namespace>/<key>/`` with the same versioning, history,
integrity checks and locking as tasks and sessions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator import filelock
from orchestrator.events import Event
from orchestrator.ids import check_id
from orchestrator.models import KeyedRecord
from orchestrator.state.file.core import FileCore, load_or_recover
from orchestrator.state.file.rules import check_version

__all__ = ["FileRecords"]


class FileRecords:
    def __init__(self, core: FileCore) -> None:
        self._core = core

    async def get_record(self, namespace: str, key: str) -> KeyedRecord | None:
        core = self._core
        return await core.read(core.namespace(namespace), key)

    async def put_record(
        self,
        namespace: str,
        key: str,
        data: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> KeyedRecord:
        core = self._core
        kind = core.namespace(namespace)
        check_id(key, f"{namespace} key")

        def run(events: list[Event]) -> KeyedRecord:
            current = load_or_recover(kind, key, events)
            check_version(kind, key, current, expected_version)
            fields = {"namespace": namespace, "data": dict(data)}
            return core.write_merged(kind, key, current, fields, {}, events, durable=durable)

        async with core.locked(kind, key):
            return await core.in_thread(run)

    async def delete_record(
        self,
        namespace: str,
        key: str,
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> bool:
        core = self._core
        del durable  # removing files needs no fsync to be atomic; a crash may undo it
        kind = core.namespace(namespace)
        if not kind.dir_for(key).exists():
            if expected_version not in (None, 0):
                check_version(kind, key, None, expected_version)
            return False
        lock = await filelock.acquire(
            kind.lock_path(key), timeout=core.lock_timeout, root=core.anchor
        )

        def run(events: list[Event]) -> bool:
            try:
                current = load_or_recover(kind, key, events)
                check_version(kind, key, current, expected_version)
                kind.delete(key)
            except BaseException:
                lock.release()
                raise
            # The lock file goes last, while held (a racer that opened it notices), and the
            # directory with it: all in this one worker-thread call.
            lock.unlink_and_release()
            kind.remove_dir_if_empty(key)
            return current is not None

        try:
            return await core.in_thread(run)
        finally:
            if lock.held:  # the thread never ran (cancelled before it started)
                lock.release()

    async def list_records(self, namespace: str) -> list[KeyedRecord]:
        core = self._core
        return await core.read_many(core.namespace(namespace), None)
