"""The scheduler's task view: writes made through its store are seen on the next look without
reading every task, other processes' writes on the next full read, and claim renewals or phase
records (which the queue never reads) cause no read at all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.events import StateUpdated
from orchestrator.models import TaskStatus
from orchestrator.scheduler.view import TaskView
from orchestrator.state import FileStateStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileStateStore]:
    async with FileStateStore(tmp_path / "state") as opened:
        await opened.create_session({}, ["a", "b"], session_id="s1")
        yield opened


@pytest.fixture
async def outside(tmp_path: Path, store: FileStateStore) -> AsyncIterator[FileStateStore]:
    """Another process's handle on the same state: its writes announce nothing to ``store``."""
    async with FileStateStore(tmp_path / "state") as opened:
        yield opened


@pytest.fixture
def view(store: FileStateStore) -> Iterator[TaskView]:
    watching = TaskView(store, "s1", refresh_every=3600)
    store.subscribe(watching.on_event)
    yield watching
    store.unsubscribe(watching.on_event)


async def test_a_write_through_the_store_is_seen_on_the_next_look(
    store: FileStateStore, view: TaskView
) -> None:
    first = await view.current()
    assert {k: s.status for k, s in first.items()} == {"a": "queued", "b": "queued"}
    await store.update_task_state("a", {"status": TaskStatus.RUNNING})
    assert (await view.current())["a"].status == TaskStatus.RUNNING
    assert first["a"].status == TaskStatus.QUEUED  # a look is a new dict, never changed after


async def test_another_process_write_waits_for_a_full_read_or_a_touch(
    outside: FileStateStore, view: TaskView
) -> None:
    await view.current()
    await outside.update_task_state("a", {"status": TaskStatus.CANCELLED})
    await outside.update_task_state("b", {"status": TaskStatus.CANCELLED})
    assert (await view.current())["a"].status == TaskStatus.QUEUED  # not announced here
    view.touch("a")
    touched = await view.current()
    assert touched["a"].status == TaskStatus.CANCELLED
    assert touched["b"].status == TaskStatus.QUEUED
    assert (await view.current(full=True))["b"].status == TaskStatus.CANCELLED


async def test_a_claim_renewal_or_phase_record_is_not_read_again(
    store: FileStateStore, outside: FileStateStore, view: TaskView
) -> None:
    claim = await store.acquire_claim("a", "me", 60, {"status": TaskStatus.RUNNING})
    assert claim is not None
    assert (await view.current())["a"].status == TaskStatus.RUNNING
    # Changed behind the view's back, then written here in ways the queue does not read: the
    # view keeps what it had, which shows these writes caused no read.
    await outside.update_task_state("a", {"priority": 5})
    await store.renew_claim("a", claim.token, 60)
    await store.update_task_state("a", {"current_phase": "build"}, fencing_token=claim.token)
    assert (await view.current())["a"].priority == 0
    await store.update_task_state("a", {"status": TaskStatus.MERGING}, fencing_token=claim.token)
    seen = (await view.current())["a"]
    assert seen.status == TaskStatus.MERGING and seen.priority == 5


async def test_an_ended_task_is_kept_without_its_phase_records_and_claim(
    store: FileStateStore, view: TaskView
) -> None:
    phases = {"build": {"name": "build", "status": "completed", "result": {"notes": "x" * 200}}}
    await store.update_task_state("a", {"status": TaskStatus.RUNNING, "phases": phases})
    await store.update_task_state("b", {"status": TaskStatus.RUNNING, "phases": phases})
    await store.update_task_state("b", {"status": TaskStatus.DONE, "merged_commit": "c" * 40})
    looked = await view.current()
    assert set(looked["a"].phases) == {"build"}  # under way: whole
    done = looked["b"]
    assert done.status == TaskStatus.DONE and done.merged_commit == "c" * 40
    assert done.phases == {} and done.claim is None and done.version == 3
    # The store keeps everything; only the scheduler's copy is light.
    stored = await store.get_task_state("b")
    assert stored is not None and set(stored.phases) == {"build"}
    # A task that leaves its end is read again whole.
    await store.update_task_state("b", {"status": TaskStatus.QUEUED})
    assert set((await view.current())["b"].phases) == {"build"}
    assert set((await view.current(full=True))["b"].phases) == {"build"}


async def test_an_ended_task_kept_light_holds_no_second_set_of_its_fields(
    store: FileStateStore,
) -> None:
    # The light copy takes over the record's set of the fields it had, not a copy of it (over
    # a kilobyte a task for the whole run: issue 33); it is otherwise what ``model_copy`` made.
    from orchestrator.scheduler.view import _kept

    phases = {"build": {"name": "build", "status": "completed"}}
    await store.update_task_state("b", {"status": TaskStatus.DONE, "phases": phases})
    stored = await store.get_task_state("b")
    assert stored is not None
    light = _kept(stored)
    assert light.model_fields_set is stored.model_fields_set
    assert light == stored.model_copy(update={"phases": {}, "claim": None})
    assert light.model_dump() == {**stored.model_dump(), "phases": {}, "claim": None}


async def test_what_changed_is_read_again_in_one_trip_to_the_store(
    store: FileStateStore, outside: FileStateStore, view: TaskView, monkeypatch: pytest.MonkeyPatch
) -> None:
    await view.current()
    await store.update_task_state("a", {"status": TaskStatus.RUNNING})
    await outside.update_task_state("b", {"status": TaskStatus.CANCELLED})
    view.touch("b")
    view.touch("gone")  # a task the session does not hold: dropped, not kept
    singles: list[str] = []
    batches: list[list[str]] = []
    one, many = store.get_task_state, store.get_task_states

    async def counted_one(task_id: str) -> object:
        singles.append(task_id)
        return await one(task_id)

    async def counted_many(task_ids: list[str]) -> object:
        batches.append(list(task_ids))
        return await many(task_ids)

    monkeypatch.setattr(store, "get_task_state", counted_one)
    monkeypatch.setattr(store, "get_task_states", counted_many)
    seen = await view.current()
    assert (singles, batches) == ([], [["a", "b", "gone"]])
    assert {k: s.status for k, s in seen.items()} == {"a": "running", "b": "cancelled"}


async def test_a_write_whose_result_is_handed_over_is_not_read_again(
    store: FileStateStore, outside: FileStateStore, view: TaskView, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``wrote``: the state a write of this process left is the view's read of it, when it is
    the version that write announced; a later write, a touch or an older state still reads."""
    from tests.support.hops import count_hops

    await view.current()
    view.take_changes()  # (the first look's: everything)
    hops = count_hops(monkeypatch)

    async def look() -> tuple[dict[str, Any], int]:
        hops.clear()
        states = await view.current()
        return states, len(hops)

    written = await store.update_task_state("a", {"status": TaskStatus.RUNNING})
    view.wrote(written)
    states, reads = await look()
    assert states["a"].status == TaskStatus.RUNNING and reads == 0
    assert view.take_changes() == {"a"}  # what keeps something built from the states hears
    # Written again after: the older state handed over is not taken; the store is read.
    older = await store.update_task_state("a", {"priority": 3})
    newer = await store.update_task_state("a", {"priority": 5})
    view.wrote(older)
    states, reads = await look()
    assert states["a"].priority == 5 and reads == 1
    view.wrote(newer)  # already read: nothing marked, nothing taken
    # A touch (another process may have written it) always reads.
    await outside.update_task_state("b", {"status": TaskStatus.CANCELLED})
    mine = await store.update_task_state("b", {"priority": 2})
    view.touch("b")
    view.wrote(mine)
    states, reads = await look()
    assert states["b"].priority == 2 and reads == 1


async def test_a_store_write_is_heard_without_dumping_its_event(
    store: FileStateStore, view: TaskView, monkeypatch: pytest.MonkeyPatch
) -> None:
    await view.current()
    dumped: list[str] = []
    real_dump = StateUpdated.model_dump

    def counted(self: StateUpdated, **kwargs: Any) -> dict[str, Any]:
        dumped.append(self.key)
        return real_dump(self, **kwargs)

    monkeypatch.setattr(StateUpdated, "model_dump", counted)
    await store.update_task_state("a", {"status": TaskStatus.RUNNING})
    assert (await view.current())["a"].status == TaskStatus.RUNNING
    assert dumped == []  # its fields read as they are, not the event's whole JSON form
    renewal = StateUpdated(kind="tasks", key="b", version=9, fields=["claim_expires_at"])
    view.on_event(renewal)  # a claim renewal: nothing the queue reads, so no read again
    monkeypatch.undo()
    assert (await view.current())["b"].status == TaskStatus.QUEUED


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The task records parsed from now on (``RecordKind.parse``), by key."""
    from orchestrator.state.file.record_files.records import RecordKind

    parsed: list[str] = []
    real_parse = RecordKind.parse

    def counted(self: RecordKind[Any], key: str, raw: bytes) -> Any:
        if self.name == "tasks":
            parsed.append(key)
        return real_parse(self, key, raw)

    monkeypatch.setattr(RecordKind, "parse", counted)
    return parsed


async def test_another_process_write_shows_up_after_the_refresh_and_on_a_full_look(
    store: FileStateStore, outside: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orchestrator.scheduler.view as view_module

    clock = [1000.0]
    monkeypatch.setattr(view_module.time, "monotonic", lambda: clock[0])
    watching = TaskView(store, "s1", refresh_every=5)
    await watching.current()
    await outside.update_task_state("a", {"status": TaskStatus.CANCELLED})
    clock[0] += 4
    assert (await watching.current())["a"].status == TaskStatus.QUEUED  # not announced here
    clock[0] += 1  # the refresh period is over: looked at whole
    assert (await watching.current())["a"].status == TaskStatus.CANCELLED
    await outside.update_task_state("b", {"priority": 7})
    assert (await watching.current())["b"].priority == 0
    assert (await watching.current(full=True))["b"].priority == 7


async def test_a_full_look_parses_only_the_records_that_changed(
    store: FileStateStore, outside: FileStateStore, view: TaskView, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = _count_parses(monkeypatch)
    first = await view.current(full=True)
    assert sorted(parsed) == ["a", "b"]
    view.take_changes()
    parsed.clear()
    again = await view.current(full=True)
    assert parsed == [] and again == first  # nothing written: nothing parsed
    assert again["a"] is first["a"]  # the record held, not a copy of it
    assert view.take_changes() == set()
    await outside.update_task_state("b", {"status": TaskStatus.CANCELLED})
    parsed.clear()  # (what the write read)
    seen = await view.current(full=True)
    assert parsed == ["b"] and seen["b"].status == TaskStatus.CANCELLED
    assert view.take_changes() == {"b"}
