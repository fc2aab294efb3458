"""A landing's end deletes the records of its session in one store call: the worktree's record,
the session context and the radar's sighting go in the worktree removal's own worker-thread
call (after the removal: a crash in between keeps them, as before), not one store call each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.council import Council
from orchestrator.radar.records import SIGHTINGS
from orchestrator.state import FileStateStore
from orchestrator.state.context import CONTEXTS
from orchestrator.worktrees.sessions import NAMESPACE as WORKTREES
from tests.support.scheduler_helpers import merged_tasks, new_repo, run_config


async def test_a_landing_deletes_its_records_with_its_worktree_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repo(tmp_path)
    build = {"build": "WRITE a.py A = 1"}
    task = {
        "id": "t1",
        "prompt": "Work on a.py.",
        "files": ["a.py"],
        "phases": ["build"],
        "metadata": {"phase_instructions": build},
    }
    config = run_config(
        repo, [task], adapters={"alpha": {"type": "scripted", "options": {"delay": 0}}}
    )
    single: list[str] = []  # namespaces deleted one store call each
    together: list[list[str]] = []  # those deleted in one call, with what made them
    real_one, real_made = FileStateStore.delete_record, FileStateStore.delete_made_records

    async def delete_record(
        self: FileStateStore, namespace: str, key: str, *a: Any, **k: Any
    ) -> bool:
        single.append(namespace)
        return await real_one(self, namespace, key, *a, **k)

    async def delete_made_records(self: FileStateStore, make: Any) -> Any:
        def made() -> Any:
            items, rest = make()
            together.append(sorted(d.namespace for d in items))
            return items, rest

        return await real_made(self, made)

    real_first = FileStateStore.release_claim_then_delete_made
    released: list[str] = []  # the claims released first in that call

    async def release_then(self: FileStateStore, release: Any, make: Any) -> Any:
        def made() -> Any:
            items, rest = make()
            together.append(sorted(d.namespace for d in items))
            return items, rest

        released.append(release.task_id)
        return await real_first(self, release, made)

    monkeypatch.setattr(FileStateStore, "release_claim_then_delete_made", release_then)
    monkeypatch.setattr(FileStateStore, "delete_record", delete_record)
    monkeypatch.setattr(FileStateStore, "delete_made_records", delete_made_records)
    async with Council(config) as council:
        report = await council.run()
        store = council.scheduler.services.store
        assert await store.list_records(CONTEXTS) == []
        assert await store.list_records(WORKTREES) == []
        assert await store.list_records(SIGHTINGS) == []
    assert report.exit_code == 0, report.model_dump_json(indent=2)
    assert merged_tasks(repo) == ["t1"]
    assert together == [[SIGHTINGS, CONTEXTS, WORKTREES]]
    assert released == ["t1"]  # its claim's release made first in that call
    assert not {SIGHTINGS, CONTEXTS, WORKTREES} & set(single), single
