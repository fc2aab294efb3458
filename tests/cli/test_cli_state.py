"""``council state conflicts|resolve`` through the real command: a ``manual`` write kept
aside is listed whole (piped and at 80 columns on a terminal) and settled, and what cannot be
settled is refused in one line with exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from orchestrator.models import KeyedRecord, TaskState
from orchestrator.state import FileStateStore
from orchestrator.state.conflicts import (
    ConflictStrategy,
    PendingConflict,
    update_task_with_strategy,
    write_with_strategy,
)
from tests.support.cli_process_helpers import council
from tests.support.council_process import task, write_config
from tests.support.scheduler_helpers import new_repo
from tests.support.terminal import in_terminal


def _store(repo: Path) -> FileStateStore:
    return FileStateStore(repo / ".council" / "state", events_path=repo / ".council" / "e.jsonl")


def _kept_aside(repo: Path) -> PendingConflict:
    """Two writers of one record: the second, ``manual``, finds it moved on."""

    async def write() -> PendingConflict:
        async with _store(repo) as store:
            read = await store.put_record("settings", "team", {"reviewers": 1, "lang": "en"})
            await store.put_record("settings", "team", {"reviewers": 2, "lang": "en"})
            kept = await write_with_strategy(
                store,
                "settings",
                "team",
                {"reviewers": 3, "lang": "en"},
                based_on=read,
                strategy=ConflictStrategy.MANUAL,
            )
            assert isinstance(kept, PendingConflict)
            return kept

    return anyio.run(write)


def _record(repo: Path) -> KeyedRecord | None:
    async def read() -> KeyedRecord | None:
        async with _store(repo) as store:
            return await store.get_record("settings", "team")

    return anyio.run(read)


def _setup(tmp_path: Path) -> tuple[Path, Path, PendingConflict]:
    repo = new_repo(tmp_path)
    config = write_config(tmp_path, repo, task("one", "WRITE one.txt 1"))
    assert council("run", config, cwd=tmp_path, timeout=120).returncode == 0
    return repo, config, _kept_aside(repo)


def test_a_kept_conflict_is_listed_whole_and_settled(tmp_path: Path) -> None:
    repo, config, kept = _setup(tmp_path)
    listed = council("state", "conflicts", config, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert kept.conflict_id in listed.stdout and "settings/team" in listed.stdout
    assert "1 pending conflict\n" in listed.stdout and "reviewers" in listed.stdout
    shown = in_terminal("state", "conflicts", config, cwd=tmp_path, columns=80)
    assert shown.returncode == 0 and kept.conflict_id in shown.text  # the id, whole
    data = json.loads(council("state", "conflicts", config, "--json", cwd=tmp_path).stdout)
    assert [(c["conflict_id"], c["fields"]) for c in data] == [(kept.conflict_id, ["reviewers"])]

    done = council("state", "resolve", config, kept.conflict_id, "--take", "ours", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"resolved {kept.conflict_id} (ours): settings/team is at version 3" in done.stdout
    record = _record(repo)
    assert record is not None and record.data == {"reviewers": 3, "lang": "en"}
    assert council("state", "conflicts", config, cwd=tmp_path).stdout == "no pending conflicts\n"


def test_what_cannot_be_settled_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    repo, config, kept = _setup(tmp_path)
    unknown = council("state", "resolve", config, "nosuch", "--take", "ours", cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: no pending conflict 'nosuch'")
    clash = council("state", "resolve", config, kept.conflict_id, "--take", "merge", cwd=tmp_path)
    assert clash.returncode == 2
    assert "both changes set reviewers differently; take ours or theirs instead" in clash.stderr
    before = _record(repo)
    assert before is not None and before.data["reviewers"] == 2

    async def move_on() -> None:
        async with _store(repo) as store:
            await store.put_record("settings", "team", {"reviewers": 5})

    anyio.run(move_on)
    stale = council("state", "resolve", config, kept.conflict_id, "--take", "ours", cwd=tmp_path)
    assert stale.returncode == 2
    assert "changed again since; look at it and resolve again" in stale.stderr
    after = _record(repo)
    assert after is not None and after.data == {"reviewers": 5}
    assert kept.conflict_id in council("state", "conflicts", config, cwd=tmp_path).stdout


def test_verify_finds_a_damaged_record_recovers_it_and_then_finds_none(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = write_config(tmp_path, repo, task("one", "WRITE one.txt 1"))
    assert council("run", config, cwd=tmp_path, timeout=120).returncode == 0
    sound = council("state", "verify", config, cwd=tmp_path)
    assert (sound.returncode, sound.stdout) == (0, "every record is sound\n"), sound.stderr

    record = repo / ".council" / "state" / "tasks" / "one" / "current.json"
    record.write_text(record.read_text().replace('"status"', '"stat\\u00fcs"', 1))
    damaged = council("state", "verify", config, cwd=tmp_path)
    assert damaged.returncode == 1, damaged.stderr
    lines = damaged.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tasks/one: ")
    assert lines[0].endswith(": recovered from its history")
    data = json.loads(council("state", "verify", config, "--json", cwd=tmp_path).stdout)
    assert data == []  # recovered: the store is sound again


def test_history_and_diff_show_what_changed_with_the_values(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = write_config(tmp_path, repo, task("one", "WRITE one.txt 1"))
    assert council("run", config, cwd=tmp_path, timeout=120).returncode == 0
    shown = council("state", "history", config, "one", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].endswith(": (the oldest kept)")
    assert any('status: "queued" -> "running"' in line for line in lines)
    assert any('status: "running" -> "done"' in line for line in lines)
    steps = json.loads(council("state", "history", config, "one", "--json", cwd=tmp_path).stdout)
    assert [s["version"] for s in steps] == sorted(s["version"] for s in steps)
    first, last = steps[0]["version"], steps[-1]["version"]
    assert len(lines) == len(steps)

    diff = council("state", "diff", config, "one", first, last, cwd=tmp_path)
    assert diff.returncode == 0, diff.stderr
    assert 'status: "queued" -> "done"' in diff.stdout.splitlines()
    assert council("state", "diff", config, "one", last, last, cwd=tmp_path).stdout == "no change\n"
    missing = council("state", "diff", config, "one", 999, last, cwd=tmp_path)
    assert missing.returncode == 2 and "has no version 999 kept (kept: " in missing.stderr
    nobody = council("state", "history", config, "nosuch", cwd=tmp_path)
    assert nobody.returncode == 2 and "no task 'nosuch'" in nobody.stderr


def _task_kept_aside(repo: Path, phases: dict[str, Any]) -> PendingConflict:
    """Two writers of task ``one``: the second, ``manual``, finds it moved on."""

    async def write() -> PendingConflict:
        async with _store(repo) as store:
            read = await store.get_task_state("one")
            assert read is not None
            await store.update_task_state("one", {"priority": read.priority + 1})
            kept = await update_task_with_strategy(
                store,
                "one",
                {"priority": read.priority + 5, "phases": phases},
                based_on=read,
                strategy=ConflictStrategy.MANUAL,
            )
            assert isinstance(kept, PendingConflict)
            return kept

    return anyio.run(write)


def _task(repo: Path) -> TaskState:
    async def read() -> TaskState | None:
        async with _store(repo) as store:
            return await store.get_task_state("one")

    task = anyio.run(read)
    assert task is not None
    return task


def test_a_tasks_kept_conflict_is_listed_and_settled_into_the_task(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = write_config(tmp_path, repo, task("one", "WRITE one.txt 1"))
    assert council("run", config, cwd=tmp_path, timeout=120).returncode == 0
    before = _task(repo)
    kept = _task_kept_aside(repo, {name: p.model_dump() for name, p in before.phases.items()})
    listed = council("state", "conflicts", config, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert kept.conflict_id in listed.stdout and "tasks/one" in listed.stdout
    assert "priority" in listed.stdout

    done = council("state", "resolve", config, kept.conflict_id, "--take", "ours", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    after = _task(repo)
    assert f"resolved {kept.conflict_id} (ours): task one is at version {after.version}" in (
        done.stdout
    )
    assert after.priority == before.priority + 5
    assert council("state", "conflicts", config, cwd=tmp_path).stdout == "no pending conflicts\n"


def test_settling_a_task_conflict_that_breaks_the_workflow_is_refused(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = write_config(tmp_path, repo, task("one", "WRITE one.txt 1"))
    assert council("run", config, cwd=tmp_path, timeout=120).returncode == 0
    both = {name: {"name": name, "status": "running"} for name in ("plan", "build")}
    kept = _task_kept_aside(repo, both)
    before = _task(repo)

    refused = council("state", "resolve", config, kept.conflict_id, "--take", "ours", cwd=tmp_path)
    assert refused.returncode != 0
    assert "workflow.phase-order" in refused.stderr
    assert "phases plan, build would run at once" in refused.stderr
    assert _task(repo) == before  # nothing written
    assert kept.conflict_id in council("state", "conflicts", config, cwd=tmp_path).stdout
