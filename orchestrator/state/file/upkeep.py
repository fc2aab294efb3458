"""The file backend's upkeep: checking every record, its history archive and every checkpoint
(recovering what history can replace), and removing what crashed writers and deleted records
left behind."""

from __future__ import annotations

from typing import Any

import anyio.to_thread

from orchestrator import filelock
from orchestrator.errors import StateCorrupted, StateError
from orchestrator.events.locks import LockCleaned
from orchestrator.state.file.core import FileCore
from orchestrator.state.file.record_files.records import RecordKind
from orchestrator.state.file.rules import has_data, remove_temp_files
from orchestrator.state.protocol import RecordProblem

__all__ = ["SWEEP_CHUNK", "FileUpkeep"]

SWEEP_CHUNK = 512  # records swept in one worker-thread call by the clean-up of stale locks


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
        Each kind's records are swept ``SWEEP_CHUNK`` to a worker-thread call
        (``_sweep_kind``): a run's clean-up makes a few calls in all, not three or more for
        every record on disk, and a run that stops while it sweeps waits for one chunk at most,
        not a kind of 10,000.
        """

        def orphans() -> int:
            # An intent a dead writer never committed (its transaction changed nothing).
            rolled = self._core.intents.roll_back_orphans()
            return rolled + self._core.batches.roll_back_orphans()

        cleaned = await anyio.to_thread.run_sync(orphans)
        for kind in await self._core.kinds():
            keys: list[str] | None = None  # listed by the first call
            while keys is None or keys:
                swept, keys = await anyio.to_thread.run_sync(self._sweep_kind, kind, keys)
                cleaned += swept

        def checkpoints() -> int:
            lock = filelock.try_acquire(self._core.checkpoints.lock_path, root=self._core.anchor)
            if lock is None:
                return 0
            with lock:
                return self._core.checkpoints.remove_temp_files()

        cleaned += await anyio.to_thread.run_sync(checkpoints)
        if cleaned:
            await self._core.emit(LockCleaned(count=cleaned))
        return cleaned

    def _sweep_kind(self, kind: RecordKind[Any], keys: list[str] | None) -> tuple[int, list[str]]:
        """``clean_stale_locks`` for the first ``SWEEP_CHUNK`` of ``keys`` (None: every record
        of ``kind``, listed here), blocking (one worker-thread call); what it cleaned and the
        keys left. Each record under its own lock, taken only if free, in the order it always
        had: temp files removed, history pruned, then the directory (the lock) removed while
        held when no data is left."""
        cleaned = 0
        listed = kind.keys() if keys is None else keys
        for key in listed[:SWEEP_CHUNK]:
            lock = filelock.try_acquire(kind.lock_path(key), root=self._core.anchor, directory=True)
            if lock is None:
                continue
            try:
                leftovers = remove_temp_files(kind, key) + kind.prune_history(key)
                gone = not has_data(kind, key)
            except BaseException:
                lock.release()
                raise
            if gone:
                try:  # the lock is the directory: removed while held
                    kind.remove_dir_if_empty(key)
                finally:
                    lock.release()
                cleaned += 1
            else:
                lock.release()
            cleaned += leftovers
        return cleaned, listed[SWEEP_CHUNK:]
