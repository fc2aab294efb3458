"""``council state history|diff`` through the real command reach every version of any kind of
record, those long compacted into the history archive too, not only the recent window."""

from __future__ import annotations

import json
from pathlib import Path

import anyio

from orchestrator.state import FileStateStore
from orchestrator.state.history_archive import ARCHIVE_BATCH
from tests.support.cli_process_helpers import council
from tests.support.council_process import task, write_config
from tests.support.scheduler_helpers import new_repo

MANY = 10 + 2 * ARCHIVE_BATCH + 5  # past the window and two archive batches


def _written(tmp_path: Path) -> Path:
    """A repository whose store holds MANY versions of a task, a session and a keyed record;
    the run config naming it."""
    repo = new_repo(tmp_path)
    config = write_config(tmp_path, repo, task("one", "WRITE one.txt 1"))

    async def write() -> None:
        async with FileStateStore.for_repo(repo) as store:
            await store.create_session({"n": 0}, ["t1"], session_id="s1")
            for n in range(1, MANY):
                await store.update_task_state("t1", {"priority": n})
                await store.update_session("s1", {"options": {"n": n}})
            for n in range(MANY):
                await store.put_record("notes", "k1", {"n": n})

    anyio.run(write)
    return config


def test_history_and_diff_reach_every_version_of_every_kind(tmp_path: Path) -> None:
    config = _written(tmp_path)
    shown = council("state", "history", config, "t1", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [f"v{n}" for n in range(1, MANY + 1)]
    assert lines[0].endswith(": (the oldest kept)")
    assert lines[2].endswith(": priority: 1 -> 2")  # v3, long archived, with its values

    newest = council("state", "history", config, "t1", "--limit", "3", "--json", cwd=tmp_path)
    steps = json.loads(newest.stdout)
    assert [s["version"] for s in steps] == [MANY - 2, MANY - 1, MANY]
    assert steps[0]["changes"] == [
        {"path": "priority", "old": MANY - 4, "new": MANY - 3, "added": False, "removed": False}
    ]

    diff = council("state", "diff", config, "t1", 2, MANY, cwd=tmp_path)
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout == f"priority: 1 -> {MANY - 1}\n"

    sessions = council("state", "history", config, "s1", "--kind", "sessions", cwd=tmp_path)
    assert sessions.returncode == 0, sessions.stderr
    assert len(sessions.stdout.splitlines()) == MANY
    assert "options.n: 0 -> 1" in sessions.stdout.splitlines()[1]

    for kind in ("notes", "records/notes"):
        notes = council("state", "diff", config, "k1", 1, MANY, "--kind", kind, cwd=tmp_path)
        assert notes.stdout == f"data.n: 0 -> {MANY - 1}\n", notes.stderr


def test_what_is_not_there_is_refused_in_one_line(tmp_path: Path) -> None:
    config = _written(tmp_path)
    missing = council("state", "diff", config, "t1", 999, 1, cwd=tmp_path)
    assert missing.returncode == 2
    assert f"task 't1' has no version 999 kept (kept: 1-{MANY})" in missing.stderr
    nobody = council("state", "history", config, "k2", "--kind", "notes", cwd=tmp_path)
    assert nobody.returncode == 2 and "no record notes/k2" in nobody.stderr
    unknown = council("state", "history", config, "k1", "--kind", "records/", cwd=tmp_path)
    assert unknown.returncode == 2 and "record namespace" in unknown.stderr
