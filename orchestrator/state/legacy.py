"""Import of the single-file state of the tool CLI Council replaces.

The old file, ``.worktrees/.parallel-dev-state.json``, holds ``{"version": "2.0",
"sessions": [...]}``, each session with its tasks (a list, or a mapping keyed by task id).
Import copies it to a timestamped backup first and never deletes or changes the original.
Ids that are not safe ids are turned into safe ones, the original kept in ``metadata``;
statuses map onto ours, and a task that was running when the old tool stopped comes back
queued, since nothing holds it any more. Importing twice skips sessions already present.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, ConfigDict

from orchestrator.errors import StateError
from orchestrator.events.state import LegacyImported
from orchestrator.ids import is_safe_id
from orchestrator.models import SessionStatus, TaskStatus, utcnow
from orchestrator.state.protocol import StateStore

__all__ = ["LEGACY_STATE_PATH", "LegacyImportReport", "import_legacy_state", "legacy_id"]

LEGACY_STATE_PATH = Path(".worktrees") / ".parallel-dev-state.json"

_TASK_STATUS = {
    "pending": TaskStatus.QUEUED,
    "queued": TaskStatus.QUEUED,
    "waiting": TaskStatus.QUEUED,
    "blocked": TaskStatus.QUEUED,
    "in_progress": TaskStatus.QUEUED,
    "running": TaskStatus.QUEUED,
    "active": TaskStatus.QUEUED,
    "completed": TaskStatus.DONE,
    "complete": TaskStatus.DONE,
    "done": TaskStatus.DONE,
    "merged": TaskStatus.DONE,
    "failed": TaskStatus.FAILED,
    "error": TaskStatus.FAILED,
    "cancelled": TaskStatus.CANCELLED,
    "canceled": TaskStatus.CANCELLED,
    "conflict": TaskStatus.CONFLICT,
}
_SESSION_STATUS = {
    "active": SessionStatus.INTERRUPTED,
    "running": SessionStatus.INTERRUPTED,
    "in_progress": SessionStatus.INTERRUPTED,
    "paused": SessionStatus.INTERRUPTED,
    "completed": SessionStatus.COMPLETED,
    "done": SessionStatus.COMPLETED,
    "failed": SessionStatus.FAILED,
    "cancelled": SessionStatus.CANCELLED,
    "canceled": SessionStatus.CANCELLED,
}
_TIME_KEYS = {
    "started_at": "started_at",
    "completed_at": "finished_at",
    "finished_at": "finished_at",
}


class LegacyImportReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Path
    backup: Path
    sessions_imported: list[str]
    sessions_skipped: list[str]
    tasks_imported: int


def legacy_id(raw: object, fallback: str) -> str:
    """A safe id made from a legacy id (lower-cased, unsafe characters to '-')."""
    text = str(raw).strip().lower() if raw is not None else ""
    if is_safe_id(text):
        return text
    slug = re.sub(r"[^a-z0-9._-]+", "-", text).strip("-._")
    slug = re.sub(r"\.{2,}", ".", slug)[:64].rstrip("-._")
    return slug if slug and is_safe_id(slug) else fallback


async def import_legacy_state(store: StateStore, path: Path | str) -> LegacyImportReport:
    """Import a legacy state file into ``store``; the file itself is left as it was."""
    source = Path(path)
    sessions, backup = await anyio.to_thread.run_sync(_read_and_back_up, source)
    imported: list[str] = []
    skipped: list[str] = []
    task_count = 0
    for index, raw in enumerate(sessions):
        if not isinstance(raw, Mapping):
            raise StateError(f"{source}: sessions[{index}] is not an object")
        raw_id = raw.get("id", raw.get("session_id", raw.get("sessionId")))
        session_id = legacy_id(raw_id, f"legacy-{index}")
        if await store.get_session(session_id) is not None:
            skipped.append(session_id)
            continue
        tasks = [_task_fields(session_id, t, n) for n, t in enumerate(_raw_tasks(raw))]
        await store.create_session(_options(raw), tasks, session_id=session_id)
        status = _SESSION_STATUS.get(str(raw.get("status", "")).lower(), SessionStatus.INTERRUPTED)
        metadata = {"legacy": {"id": raw_id, "status": raw.get("status")}}
        await store.update_session(session_id, {"status": status, "metadata": metadata})
        imported.append(session_id)
        task_count += len(tasks)
    await store.emit(LegacyImported(source=str(source), backup=str(backup), sessions=imported))
    return LegacyImportReport(
        source=source,
        backup=backup,
        sessions_imported=imported,
        sessions_skipped=skipped,
        tasks_imported=task_count,
    )


def _read_and_back_up(source: Path) -> tuple[list[Any], Path]:
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StateError(f"{source}: no legacy state file there") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"{source}: not a readable legacy state file: {exc}") from None
    if not isinstance(document, dict) or str(document.get("version")) != "2.0":
        found = document.get("version") if isinstance(document, dict) else type(document).__name__
        raise StateError(f"{source}: expected legacy state format version 2.0, found {found!r}")
    sessions = document.get("sessions")
    if not isinstance(sessions, list):
        raise StateError(f"{source}: 'sessions' must be a list")
    backup = source.with_name(f"{source.name}.bak-{utcnow().strftime('%Y%m%dT%H%M%S%f')}")
    shutil.copy2(source, backup)
    return sessions, backup


def _raw_tasks(session: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    tasks = session.get("tasks", [])
    if isinstance(tasks, Mapping):
        return [
            {"id": key, **value} if isinstance(value, Mapping) else {"id": key}
            for key, value in tasks.items()
        ]
    if isinstance(tasks, list):
        return [t if isinstance(t, Mapping) else {"id": t} for t in tasks]
    return []


def _options(session: Mapping[str, Any]) -> dict[str, Any]:
    options = session.get("options", session.get("config", {}))
    return dict(options) if isinstance(options, Mapping) else {}


def _task_fields(session_id: str, raw: Mapping[str, Any], index: int) -> dict[str, Any]:
    raw_id = raw.get("id", raw.get("task_id", raw.get("taskId")))
    task_id = legacy_id(raw_id, f"{session_id[:50]}-task-{index}")
    status = _TASK_STATUS.get(str(raw.get("status", "pending")).lower(), TaskStatus.QUEUED)
    fields: dict[str, Any] = {"task_id": task_id, "status": status}
    for old, new in _TIME_KEYS.items():
        if isinstance(raw.get(old), str):
            fields[new] = raw[old]
    for key in ("branch", "worktree", "error"):
        if isinstance(raw.get(key), str):
            fields[key] = raw[key]
    known = {"id", "task_id", "taskId", "status", "branch", "worktree", "error", *_TIME_KEYS}
    extra = {k: v for k, v in raw.items() if k not in known}
    fields["metadata"] = {"legacy": {"id": raw_id, "status": raw.get("status"), **extra}}
    return fields
