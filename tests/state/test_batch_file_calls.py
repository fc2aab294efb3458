"""What recording a batch of new task records costs the file store, per task, counted (never
timed): a run of 10,000 tasks records them while it already runs tasks, and every system
call its worker thread makes waits for the interpreter's lock again (issue 51). The records
themselves are the same (``test_start_many``: one durable write per batch, resume, crash)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.events import Event
from orchestrator.events.state import StateUpdated
from orchestrator.state import FileStateStore
from orchestrator.state.file.log import event_log
from orchestrator.state.file.record_files.records import RecordKind

_TASKS = 128


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileStateStore]:
    async with FileStateStore.for_repo(tmp_path) as opened:
        yield opened


async def test_a_new_task_record_is_looked_for_once_and_its_directory_made_in_one_step(
    store: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [f"t{n:04d}" for n in range(_TASKS)]
    session = await store.create_session({}, [], listed=ids)
    await store.add_session_tasks(session.session_id, [{"task_id": "warm"}])  # the kind's dir
    calls: Counter[str] = Counter()
    listings = RecordKind.history_versions
    real_open = os.open

    def counting_listing(self: RecordKind[Any], key: str) -> list[int]:
        calls["history listed"] += 1
        return listings(self, key)

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> int:
        calls["opened"] += 1
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(RecordKind, "history_versions", counting_listing)
    monkeypatch.setattr(os, "open", counting_open)
    added = await store.add_session_tasks(session.session_id, [{"task_id": t} for t in ids])
    monkeypatch.undo()

    assert added == _TASKS
    tasks = await store.list_tasks(session.session_id)
    assert [t.task_id for t in tasks] == ids and all(t.version == 1 for t in tasks)
    # Once, by the read that finds no record (a history would be damage to recover), not
    # again to number the first version.
    assert calls["history listed"] == _TASKS
    # Per task: the lock's directory (looked for, made, its own descriptor: 3), the
    # missing record, its history's listing, the record made in place through the lock's
    # descriptor (``batch_records``): 6, where a temp file and its rename took 10; the
    # batch's intent and barrier a few more.
    assert calls["opened"] <= 6 * _TASKS + 8


async def test_a_batchs_events_are_masked_once_for_the_log_and_the_subscribers(
    store: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A known secret in a record's initial fields: masked in what the log and the
    # subscribers get, each event looked through once (in the worker thread), not twice.
    token = "ghp_" + "Zq7" * 12
    monkeypatch.setenv("GITHUB_TOKEN", token)
    ids = [f"t{n:04d}" for n in range(_TASKS)]
    session = await store.create_session({}, [], listed=ids)
    told: list[Event] = []
    store.events.subscribe(told.append)
    looked: Counter[str] = Counter()
    real_model = event_log.masked_model
    real_both = event_log.masked_with_json

    def counting_model(model: Any) -> Any:
        looked["model"] += 1
        return real_model(model)

    def counting_both(model: Any) -> tuple[Any, bytes]:
        looked["both"] += 1
        return real_both(model)

    monkeypatch.setattr(event_log, "masked_model", counting_model)
    monkeypatch.setattr(event_log, "masked_with_json", counting_both)
    inits = [{"task_id": t, **({"error": f"said {token}"} if t == "t0003" else {})} for t in ids]
    assert await store.add_session_tasks(session.session_id, inits) == _TASKS
    monkeypatch.undo()

    updated = [e for e in told if isinstance(e, StateUpdated)]
    assert sorted(e.key for e in updated) == ids
    assert looked == Counter(both=len(told))  # one look per event, for the log and the told
    assert not any(token in e.model_dump_json() for e in told)
    said = next(e for e in updated if e.key == "t0003")
    assert "error" in said.fields
    store.events.flush()
    logged = store.events.path.read_text()
    assert '"t0003"' in logged and token not in logged
    record = await store.get_task_state("t0003")
    assert record is not None and record.error is not None and token not in record.error
