"""Import of the old tool's single-file state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import StateError
from orchestrator.models import SessionStatus, TaskStatus
from orchestrator.state import FileStateStore
from orchestrator.state.legacy import LEGACY_STATE_PATH, import_legacy_state, legacy_id

LEGACY = {
    "version": "2.0",
    "sessions": [
        {
            "id": "Session_2024-01-05",
            "status": "active",
            "options": {"max_parallel": 3},
            "tasks": [
                {
                    "id": "auth",
                    "status": "completed",
                    "branch": "feature/auth",
                    "started_at": "2024-01-05T10:00:00+00:00",
                    "completed_at": "2024-01-05T10:30:00+00:00",
                    "cli": "claude",
                },
                {"id": "Fix Login/Bug", "status": "in_progress", "worktree": "/tmp/wt"},
            ],
        },
        {
            "session_id": "old-done",
            "status": "completed",
            "tasks": {"docs": {"status": "failed", "error": "timeout"}},
        },
    ],
}


@pytest.fixture
def legacy_file(tmp_path: Path) -> Path:
    path = tmp_path / LEGACY_STATE_PATH
    path.parent.mkdir()
    path.write_text(json.dumps(LEGACY))
    return path


async def test_import_maps_sessions_tasks_and_statuses(tmp_path: Path, legacy_file: Path) -> None:
    original = legacy_file.read_bytes()
    async with FileStateStore.for_repo(tmp_path) as store:
        report = await import_legacy_state(store, legacy_file)
        assert report.sessions_imported == ["session_2024-01-05", "old-done"]
        assert report.tasks_imported == 3
        assert report.backup.read_bytes() == original
        assert legacy_file.read_bytes() == original  # never changed, never deleted

        session = await store.get_session("session_2024-01-05")
        assert session is not None
        assert session.status == SessionStatus.INTERRUPTED
        assert session.options == {"max_parallel": 3}
        assert session.metrics.completed == 1 and session.metrics.average_minutes == 30.0
        auth = await store.get_task_state("auth")
        assert auth is not None and auth.status == TaskStatus.DONE
        assert auth.branch == "feature/auth" and auth.metadata["legacy"]["cli"] == "claude"
        login = await store.get_task_state("fix-login-bug")
        assert login is not None and login.status == TaskStatus.QUEUED  # resumable
        assert login.metadata["legacy"]["id"] == "Fix Login/Bug"
        docs = await store.get_task_state("docs")
        assert docs is not None and docs.status == TaskStatus.FAILED and docs.error == "timeout"

        again = await import_legacy_state(store, legacy_file)
        assert again.sessions_imported == []
        assert again.sessions_skipped == ["session_2024-01-05", "old-done"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a readable legacy state file"),
        (json.dumps({"version": "1.0", "sessions": []}), "version 2.0"),
        (json.dumps({"version": "2.0", "sessions": {}}), "must be a list"),
    ],
)
async def test_bad_legacy_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    async with FileStateStore(tmp_path / "s") as store:
        with pytest.raises(StateError, match=message):
            await import_legacy_state(store, path)
        with pytest.raises(StateError, match="no legacy state file"):
            await import_legacy_state(store, tmp_path / "missing.json")
    assert path.read_text() == content


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ok-id", "ok-id"),
        ("../etc", "etc"),
        ("A B", "a-b"),
        ("", "fb"),
        (None, "fb"),
        ("...", "fb"),
        ("x" * 80, "x" * 64),
    ],
)
def test_legacy_ids_become_safe(raw: object, expected: str) -> None:
    assert legacy_id(raw, "fb") == expected
