"""The front of a task's life writes its session context once (issue 51): a lone attempt in a
session just made, holding no file, has nothing a prompt or the desk reads until the build
reports its files, so its context is written then, fields and files together; the attempt's
end removes it, and an attempt that reported nothing removes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.council import Council
from orchestrator.models import TaskStatus
from orchestrator.state import FileStateStore
from orchestrator.state.context import CONTEXTS, ContextManager, WorkStatus
from tests.support.scheduler_helpers import merged_tasks, new_repo, run_config


def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, Any]]]:
    """Every session context a file store writes (its data) and removes (``{}``), by session,
    however it is written (alone, or carried in a phase's completion) or removed (alone, or
    with other records in one store call)."""
    seen: dict[str, list[dict[str, Any]]] = {}
    put, delete = FileStateStore.put_record, FileStateStore.delete_record

    async def put_record(
        self: FileStateStore, namespace: str, key: str, data: Any, *a: Any, **k: Any
    ) -> Any:
        if namespace == CONTEXTS:
            seen.setdefault(key, []).append(dict(data))
        return await put(self, namespace, key, data, *a, **k)

    async def delete_record(
        self: FileStateStore, namespace: str, key: str, *a: Any, **k: Any
    ) -> Any:
        if namespace == CONTEXTS:
            seen.setdefault(key, []).append({})
        return await delete(self, namespace, key, *a, **k)

    many, made = FileStateStore.delete_records, FileStateStore.delete_made_records

    def removing(items: Any) -> None:
        for namespace, key, _ in items:
            if namespace == CONTEXTS:
                seen.setdefault(key, []).append({})

    async def delete_records(self: FileStateStore, items: Any) -> Any:
        removing(items)
        return await many(self, items)

    async def delete_made_records(self: FileStateStore, make: Any) -> Any:
        def making() -> Any:
            items, rest = make()
            removing(items)  # (a landing's: with its worktree's record)
            return items, rest

        return await made(self, making)

    released = FileStateStore.release_claim_then_delete_made

    async def release_then(self: FileStateStore, release: Any, make: Any) -> Any:
        def making() -> Any:
            items, rest = make()
            removing(items)  # (a landing's: with its claim's release and worktree's record)
            return items, rest

        return await released(self, release, making)

    carrying = FileStateStore.put_made_record_and_task_carrying

    async def put_carrying(self: FileStateStore, *a: Any, **k: Any) -> Any:
        answer = await carrying(self, *a, **k)  # (a build's files: with its completion)
        for put, record in zip(k.get("carried", ()), answer[3], strict=True):
            if put.namespace == CONTEXTS and record is not None:
                seen.setdefault(put.key, []).append(dict(record.data))
        return answer

    monkeypatch.setattr(FileStateStore, "put_record", put_record)
    monkeypatch.setattr(FileStateStore, "put_made_record_and_task_carrying", put_carrying)
    monkeypatch.setattr(FileStateStore, "delete_record", delete_record)
    monkeypatch.setattr(FileStateStore, "delete_records", delete_records)
    monkeypatch.setattr(FileStateStore, "delete_made_records", delete_made_records)
    monkeypatch.setattr(FileStateStore, "release_claim_then_delete_made", release_then)
    return seen


async def test_a_lone_attempt_writes_its_context_once_with_its_first_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repo(tmp_path)
    tasks = [
        {"id": "t1", "prompt": "WRITE one.txt first"},
        {"id": "t2", "prompt": "WRITE two.txt second"},
    ]
    config = run_config(
        repo, tasks, adapters={"alpha": {"type": "scripted", "options": {"delay": 0}}}
    )
    seen = counted(monkeypatch)
    async with Council(config) as council:
        report = await council.run()
        contexts = ContextManager(council.scheduler.services.store, repo)
        assert await contexts.all_contexts() == []  # each went with its attempt's end
    assert {t.task_id: t.status for t in report.tasks} == {
        "t1": TaskStatus.DONE,
        "t2": TaskStatus.DONE,
    }
    assert sorted(merged_tasks(repo)) == ["t1", "t2"]
    assert len(seen) == 2
    for writes in seen.values():
        written, removed = writes
        assert removed == {}  # then removed, once
        # One write: the attempt's fields and the build's files together.
        assert written["status"] == WorkStatus.WORKING and written["cli"] == "alpha"
        assert written["task"] in ("t1", "t2")
        assert written["files_changing"] == ["one.txt" if written["task"] == "t1" else "two.txt"]
        assert written["files_locked"] == []


async def test_an_attempt_holding_files_says_so_before_its_cli_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A declared file is what the others' prompts are told at once: written at the start."""
    repo = new_repo(tmp_path)
    tasks = [{"id": "t1", "prompt": "WRITE one.txt first", "files": ["one.txt"]}]
    config = run_config(
        repo, tasks, adapters={"alpha": {"type": "scripted", "options": {"delay": 0}}}
    )
    seen = counted(monkeypatch)
    async with Council(config) as council:
        report = await council.run()
    assert report.tasks[0].status == TaskStatus.DONE
    (writes,) = seen.values()
    started, built, removed = writes
    assert started["files_locked"] == ["one.txt"] and started["files_changing"] == []
    assert built["files_changing"] == ["one.txt"] and removed == {}
