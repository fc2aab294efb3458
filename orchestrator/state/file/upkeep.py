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
from orchestrator.state.file.record_files.layout import RECORDS, subdirectories
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
        The records of every kind are swept ``SWEEP_CHUNK`` to a worker-thread call
        (``_sweep_some``), the dead writers' intents, the kinds' listing and the checkpoints'
        temp files in those calls too: a run's clean-up of fewer records than that is one call
        in all (the state monitor's, once a minute), not one a kind or three a record, and a
        run that stops while it sweeps waits for one chunk at most, not a kind of 10,000.
        """
        sweep = _Sweep()
        cleaned = 0
        while not sweep.done:
            cleaned += await anyio.to_thread.run_sync(self._sweep_some, sweep)
        if cleaned:
            await self._core.emit(LockCleaned(count=cleaned))
        return cleaned

    def _sweep_some(self, sweep: _Sweep) -> int:
        """One call of ``clean_stale_locks`` (blocking): the first lists the kinds (after the
        dead writers' intents), each sweeps up to ``SWEEP_CHUNK`` records of the kinds left in
        order, the last the checkpoints' temp files; what it cleaned."""
        core = self._core
        cleaned = 0
        if sweep.left is None:
            # An intent a dead writer never committed (its transaction changed nothing).
            cleaned += core.intents.roll_back_orphans() + core.batches.roll_back_orphans()
            names = subdirectories(core.root / RECORDS)
            kinds: list[RecordKind[Any]] = [core.tasks, core.sessions, core.counters]
            sweep.left = [(kind, None) for kind in [*kinds, *map(core.namespace, names)]]
        budget = SWEEP_CHUNK
        while sweep.left and budget > 0:
            kind, keys = sweep.left[0]
            listed = kind.keys() if keys is None else keys
            swept, rest = self._sweep_kind(kind, listed, budget)
            cleaned += swept
            budget -= len(listed) - len(rest)
            if rest:
                sweep.left[0] = (kind, rest)
            else:
                sweep.left.pop(0)
        if not sweep.left:
            lock = filelock.try_acquire(core.checkpoints.lock_path, root=core.anchor)
            if lock is not None:
                with lock:
                    cleaned += core.checkpoints.remove_temp_files()
            sweep.done = True
        return cleaned

    def _sweep_kind(
        self, kind: RecordKind[Any], listed: list[str], limit: int
    ) -> tuple[int, list[str]]:
        """``clean_stale_locks`` for the first ``limit`` of ``kind``'s records ``listed``,
        blocking (in a worker-thread call); what it cleaned and the keys left. Each record
        under its own lock, taken only if free, in the order it always had: temp files
        removed, history pruned, then the directory (the lock) removed while held when no data
        is left."""
        cleaned = 0
        for key in listed[:limit]:
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
        return cleaned, listed[limit:]


class _Sweep:
    """Where a ``clean_stale_locks`` is: the kinds left, each with its keys left (None: not
    listed yet); ``left`` None before the first call."""

    def __init__(self) -> None:
        self.left: list[tuple[RecordKind[Any], list[str] | None]] | None = None
        self.done = False
