"""The file backend's upkeep: checking every record, its history archive and every checkpoint
(recovering what history can replace), and removing what crashed writers and deleted records
left behind."""

from __future__ import annotations

import anyio.to_thread

from orchestrator import filelock
from orchestrator.errors import StateCorrupted, StateError
from orchestrator.events.locks import LockCleaned
from orchestrator.state.file.core import FileCore
from orchestrator.state.file.rules import has_data, remove_temp_files
from orchestrator.state.protocol import RecordProblem

__all__ = ["FileUpkeep"]


class FileUpkeep:
    def __init__(self, core: FileCore) -> None:
        self._core = core

    async def verify_records(self) -> list[RecordProblem]:
        problems: list[RecordProblem] = []
        for kind in await self._core.kinds():
            for key in await anyio.to_thread.run_sync(kind.keys):
                try:
                    await anyio.to_thread.run_sync(kind.archive.archived_docs, key)
                except StateCorrupted as exc:
                    # Nothing to recover it from: only the versions archived there are lost.
                    problems.append(
                        RecordProblem(
                            kind=kind.name,
                            key=key,
                            reason="history archive damaged",
                            recovered=False,
                            detail=str(exc),
                        )
                    )
                reason = await anyio.to_thread.run_sync(kind.verify, key)
                if reason is None:
                    continue
                try:
                    await self._core.read(kind, key)
                except StateCorrupted as exc:
                    problems.append(
                        RecordProblem(
                            kind=kind.name, key=key, reason=reason, recovered=False, detail=str(exc)
                        )
                    )
                else:
                    problems.append(
                        RecordProblem(kind=kind.name, key=key, reason=reason, recovered=True)
                    )
        problems += await anyio.to_thread.run_sync(self._damaged_checkpoints)
        return problems

    def _damaged_checkpoints(self) -> list[RecordProblem]:
        """Checkpoints are immutable and have no history: a damaged one is only reported."""
        problems = []
        for checkpoint_id in self._core.checkpoints.ids():
            try:
                self._core.checkpoints.read(checkpoint_id)
            except StateCorrupted as exc:
                problems.append(
                    RecordProblem(
                        kind="checkpoints",
                        key=checkpoint_id,
                        reason=exc.detail,
                        recovered=False,
                        detail=str(exc),
                    )
                )
            except StateError:
                continue  # removed meanwhile
        return problems

    async def clean_stale_locks(self) -> int:
        """Remove lock files of records that are gone, and what crashed writers left behind
        (temp files, history entries past the limit).

        Only a lock nobody holds is touched, and a record's directory (its lock) is removed
        while we hold it, so a racer that opened it before the removal notices and retries.
        """
        # An intent a dead writer never committed (its transaction changed nothing).
        cleaned = await anyio.to_thread.run_sync(self._core.intents.roll_back_orphans)
        cleaned += await anyio.to_thread.run_sync(self._core.batches.roll_back_orphans)
        for kind in await self._core.kinds():
            for key in await anyio.to_thread.run_sync(kind.keys):
                lock = filelock.try_acquire(
                    kind.lock_path(key), root=self._core.anchor, directory=True
                )
                if lock is None:
                    continue
                try:
                    leftovers = await anyio.to_thread.run_sync(remove_temp_files, kind, key)
                    leftovers += await anyio.to_thread.run_sync(kind.prune_history, key)
                    gone = not await anyio.to_thread.run_sync(has_data, kind, key)
                except BaseException:
                    lock.release()
                    raise
                if gone:
                    try:  # the lock is the directory: removed while held
                        await anyio.to_thread.run_sync(kind.remove_dir_if_empty, key)
                    finally:
                        lock.release()
                    cleaned += 1
                else:
                    lock.release()
                cleaned += leftovers
        lock = filelock.try_acquire(self._core.checkpoints.lock_path, root=self._core.anchor)
        if lock is not None:
            with lock:
                cleaned += await anyio.to_thread.run_sync(self._core.checkpoints.remove_temp_files)
        if cleaned:
            await self._core.emit(LockCleaned(count=cleaned))
        return cleaned
