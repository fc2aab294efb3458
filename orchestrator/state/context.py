"""Session context: what each running session is doing, so the others (and the user) can see.

One small JSON file per session, ``<project>/.council/context/<session>.json``, holding a
``SessionContext``: its CLI, task, current file, status, progress, message, the files it has
locked and when it last reported. It is advisory, a feed for prompts and dashboards; the
source of truth for ownership stays the lock registry.

Contract:

- ``update_context`` merges the given fields into the session's context (creating it) and
  stamps ``updated_at``; it is a read-modify-write under a per-session OS lock
  (``.council/locks/context/<session>.lock``, never replaced), so concurrent updates from
  several tasks or processes are never lost. Files are replaced atomically and durably
  (``durable_write``), so a reader sees the old context or the new one, never a mix.
- Paths (``current_file``, ``files_locked``) are stored normalized (``orchestrator.safety.paths``),
  so ``find_file_conflicts("./a//b")`` finds a session working on ``a/b``.
- ``blocked_on`` only means something while the status is ``blocked``: moving to any other
  status clears it.
- Reads tolerate concurrent writers and removers: a file that vanishes between listing and
  reading is skipped. A file that does not parse (written by hand, or by another version) is
  reported as absent with a warning and replaced by the session's next update: context is
  rebuilt by sessions every few seconds, so it is never worth refusing to work over.
- ``cleanup_stale_contexts(timeout_minutes)`` removes contexts not updated for that long whose
  status is not ``done`` (they describe work nobody is doing any more, typically a session
  whose process died); ``done`` contexts are the record that a task's work finished, counted by
  ``get_task_summary``, and stay until ``remove_context`` (or ``include_done=True``).
- All file work happens in worker threads; the event loop only awaits.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator import filelock
from orchestrator.ids import SafeId, check_id
from orchestrator.models import utcnow
from orchestrator.safety.paths import RepoPaths, StrPath
from orchestrator.safety.secret_mask import masked_json
from orchestrator.state.file.fsops import FileOps, durable_write

__all__ = ["ContextManager", "SessionContext", "WorkStatus"]

log = logging.getLogger(__name__)


class WorkStatus(StrEnum):
    WORKING = "working"
    BLOCKED = "blocked"  # cannot go on: see ``message`` and ``blocked_on``
    WAITING = "waiting"  # queued for something expected to come (a lock, the merge queue)
    DONE = "done"


class SessionContext(BaseModel):
    """What one session reports about itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session: SafeId
    cli: str = ""
    task: SafeId | None = None
    current_file: str | None = None
    status: WorkStatus = WorkStatus.WORKING
    progress: int = Field(default=0, ge=0, le=100)
    message: str = ""
    blocked_on: str | None = None
    files_locked: list[str] = Field(default_factory=list)
    updated_at: datetime = Field(default_factory=utcnow)

    def touches(self, path: str) -> bool:
        """True when ``path`` (normalized) is this session's current or a locked file."""
        return self.current_file == path or path in self.files_locked


UPDATABLE = frozenset(SessionContext.model_fields) - {"session", "updated_at"}


class ContextManager:
    """Reads and writes the context files of one project (see module docstring)."""

    def __init__(self, project_dir: StrPath) -> None:
        self.project_dir = Path(project_dir)
        self.directory = self.project_dir / ".council" / "context"
        self._locks = self.project_dir / ".council" / "locks" / "context"
        self._paths = RepoPaths(self.project_dir)
        self._ops = FileOps()
        self._ops.confine(self.project_dir)  # no link below the project is ever followed
        self._dir_ready = False

    async def update_context(self, session: str, **fields: Any) -> SessionContext:
        """Merge ``fields`` into ``session``'s context; unknown field names raise TypeError,
        invalid values ValueError (pydantic's ValidationError)."""
        check_id(session, "session id")
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise TypeError(f"unknown context fields {sorted(unknown)}; known: {sorted(UPDATABLE)}")
        lock = await filelock.acquire(self._locks / f"{session}.lock", root=self.project_dir)
        try:
            return await anyio.to_thread.run_sync(self._update, session, fields)
        finally:
            lock.release()

    async def mark_blocked(
        self, session: str, reason: str, blocked_on: str | None = None
    ) -> SessionContext:
        """Report ``session`` blocked, why, and on what (a path, a session, a task...)."""
        return await self.update_context(
            session, status=WorkStatus.BLOCKED, message=reason, blocked_on=blocked_on
        )

    async def get_context(self, session: str) -> SessionContext | None:
        check_id(session, "session id")
        return await anyio.to_thread.run_sync(self._read, self._file(session))

    async def all_contexts(self) -> list[SessionContext]:
        """Every readable context, by session id."""
        return await anyio.to_thread.run_sync(self._read_all)

    async def find_file_conflicts(
        self, path: StrPath, *, exclude: str | None = None
    ) -> list[SessionContext]:
        """Sessions (other than ``exclude``) whose current file or locked files include
        ``path``; a path outside the repository raises ``PathEscapeError``."""
        normalized = await anyio.to_thread.run_sync(self._paths.normalize, path)
        return [
            c for c in await self.all_contexts() if c.session != exclude and c.touches(normalized)
        ]

    async def get_task_summary(self, task_id: str) -> dict[WorkStatus, int]:
        """How many sessions of ``task_id`` are in each status (every status present)."""
        check_id(task_id, "task id")
        counts = dict.fromkeys(WorkStatus, 0)
        for context in await self.all_contexts():
            if context.task == task_id:
                counts[context.status] += 1
        return counts

    async def cleanup_stale_contexts(
        self, timeout_minutes: float, *, include_done: bool = False
    ) -> int:
        """Remove contexts older than ``timeout_minutes`` (not ``done`` ones unless asked);
        how many were removed."""
        if timeout_minutes < 0:
            raise ValueError(f"timeout_minutes must be >= 0, got {timeout_minutes}")
        cutoff = utcnow() - timedelta(minutes=timeout_minutes)
        removed = 0
        for context in await self.all_contexts():
            if context.updated_at >= cutoff:
                continue
            if context.status == WorkStatus.DONE and not include_done:
                continue
            if await self._remove_if_unchanged(context):
                removed += 1
        return removed

    async def remove_context(self, session: str) -> bool:
        """Delete ``session``'s context; False when it had none."""
        check_id(session, "session id")
        lock = await filelock.acquire(self._locks / f"{session}.lock", root=self.project_dir)
        try:
            return await anyio.to_thread.run_sync(self._unlink, self._file(session))
        finally:
            lock.release()

    # -- in worker threads --------------------------------------------------------------------

    def _file(self, session: str) -> Path:
        return self.directory / f"{session}.json"

    def _update(self, session: str, fields: Mapping[str, Any]) -> SessionContext:
        current = self._read(self._file(session))
        merged: dict[str, Any] = (
            current.model_dump() if current is not None else {"session": session}
        )
        merged.update(fields)
        if merged.get("current_file") is not None:
            merged["current_file"] = self._paths.normalize(merged["current_file"])
        if "files_locked" in fields:
            merged["files_locked"] = self._normalized(fields["files_locked"] or [])
        if merged.get("status", WorkStatus.WORKING) != WorkStatus.BLOCKED:
            merged["blocked_on"] = None
        merged["updated_at"] = utcnow()
        context = SessionContext.model_validate(merged)
        if not self._dir_ready:
            self._ops.makedirs(self.directory)
            self._dir_ready = True
        durable_write(self._file(session), masked_json(context), self._ops)
        return context

    def _normalized(self, paths: Iterable[StrPath]) -> list[str]:
        return sorted({self._paths.normalize(p) for p in paths})

    def _read(self, file: Path) -> SessionContext | None:
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return SessionContext.model_validate_json(raw)
        except ValidationError as exc:
            log.warning("ignoring unreadable context file %s: %s", file, exc.errors()[0]["msg"])
            return None

    def _read_all(self) -> list[SessionContext]:
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []
        found = (self._read(self.directory / n) for n in names if _is_context_file(n))
        return [c for c in found if c is not None]

    def _unlink(self, file: Path) -> bool:
        if not os.path.lexists(file):
            return False
        self._ops.unlink(file)
        return True

    async def _remove_if_unchanged(self, seen: SessionContext) -> bool:
        # An update may land between our listing and the removal: only remove what we judged.
        lock = await filelock.acquire(self._locks / f"{seen.session}.lock", root=self.project_dir)
        try:

            def run() -> bool:
                now = self._read(self._file(seen.session))
                return (
                    now is not None
                    and now.updated_at == seen.updated_at
                    and self._unlink(self._file(seen.session))
                )

            return await anyio.to_thread.run_sync(run)
        finally:
            lock.release()


def _is_context_file(name: str) -> bool:
    return name.endswith(".json") and not name.startswith(".")
