"""The file store's read without the store (``state.file.record_files.peek_read``): what it
reads back from a store written through ``FileStateStore`` is what the store itself reads, and
it gives way (None) wherever the store would have to act first: a transaction's intent on disk,
a damaged record."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.models import TaskState, TaskStatus
from orchestrator.state import FileStateStore
from orchestrator.state.file.fsops import FileOps
from orchestrator.state.file.intents import IntentEntry, IntentLog
from orchestrator.state.file.record_files.layout import session_identities, task_identities
from orchestrator.state.file.record_files.peek_read import PeekRead

pytestmark = pytest.mark.anyio

NOTES = "notes"
MARKS = "marks"


async def written(tmp_path: Path) -> tuple[Path, list[str]]:
    """A store with two sessions, their tasks in several states, two namespaces of keyed
    records (one of them expired): every record written by the store itself."""
    root = tmp_path / "state"
    async with FileStateStore(root) as store:
        first = await store.create_session({"name": "first"}, ["a", "b"])
        second = await store.create_session({"name": "second"}, ["c", "d", "e"])
        await store.update_task_state("a", {"status": TaskStatus.DONE})
        await store.update_session(first.session_id, {"metadata": {"note": "renamed"}})
        await store.update_task_state("c", {"status": TaskStatus.FAILED, "error": "broke"})
        await store.update_task_state("d", {"status": TaskStatus.RUNNING, "metadata": {"n": 2}})
        await store.put_record(NOTES, "n-1", {"text": "one"})
        await store.put_record(NOTES, "n-2", {"text": "two"})
        await store.put_record(NOTES, "n-2", {"text": "two, again"})
        await store.put_record(MARKS, "m-1", {"on": True})
        await store.put_record(MARKS, "m-gone", {"on": False}, ttl=0.001)
    return root, [first.session_id, second.session_id]


def opened(root: Path) -> PeekRead:
    read = PeekRead.open(root)
    assert read is not None, "no intent is on disk: the read path must not give way"
    return read


async def test_it_reads_back_what_the_store_reads(tmp_path: Path) -> None:
    root, session_ids = await written(tmp_path)
    read = opened(root)
    sessions = read.sessions()
    tasks = read.tasks(["a", "b", "c", "d", "e", "never-written"])
    notes, marks = read.records(NOTES), read.records(MARKS)
    assert sessions is not None and tasks is not None and notes is not None and marks is not None
    async with FileStateStore(root) as store:
        by_store = await store.list_sessions(metrics=False)
        assert sorted(s.session_id for s in sessions) == sorted(session_ids)
        assert {s.session_id: s for s in sessions} == {s.session_id: s for s in by_store}
        for session in sessions:
            assert session == await store.get_session(session.session_id, metrics=False)
        assert [t.task_id for t in tasks] == ["a", "b", "c", "d", "e"]  # the unwritten left out
        assert tasks == [await store.get_task_state(t.task_id) for t in tasks]
        assert tasks == await store.list_tasks()
        assert [n.key for n in notes] == ["n-1", "n-2"] and notes[1].data == {"text": "two, again"}
        assert notes == await store.list_records(NOTES)
        # Expired records are on disk until purged: the reader leaves judging them to its caller.
        assert [m.key for m in marks] == ["m-1", "m-gone"]
        assert marks[:1] == await store.list_records(MARKS)
        assert read.records(NOTES, ["n-2", "n-9"]) == [await store.get_record(NOTES, "n-2")]
    assert read.records("no-such-namespace") == []
    assert opened(root).sessions(["no-such-session"]) == []
    assert set(session_identities(root)) == set(session_ids)
    assert set(task_identities(root, ["a", "zz"])) == {"a", "zz"}
    assert task_identities(root, ["a", "zz"])["zz"] is None


async def test_nothing_recorded_yet_is_an_empty_read(tmp_path: Path) -> None:
    root = tmp_path / "state"
    async with FileStateStore(root) as store:
        await store.put_record(NOTES, "n-1", {"text": "one"})
    read = opened(root)
    assert read.sessions() == [] and read.tasks(["a"]) == []
    assert PeekRead.open(tmp_path / "nowhere") is None


async def test_an_intent_on_disk_gives_way_to_the_store(tmp_path: Path) -> None:
    """A transaction committed (its intent durable) but cut short before its records were
    written: only the store may finish it, so the read path gives way; the store then reads
    the transaction's outcome."""
    root, _ = await written(tmp_path)
    current = opened(root).tasks(["c"])
    assert current is not None and current[0].error == "broke"
    task = current[0]
    following = TaskState.model_validate({**task.model_dump(), "version": task.version + 1})
    following.error = "from the intent"
    entry = IntentEntry("tasks", "", "c", task.version, task.version + 1, None)
    ops = FileOps()
    ops.confine(root)
    IntentLog(root / "transactions", ops).write([entry], [following])
    assert PeekRead.open(root) is None
    async with FileStateStore(root) as store:
        finished = await store.get_task_state("c")
    assert finished is not None and finished.error == "from the intent"
    after = opened(root).tasks(["c"])  # the store finished it: nothing left on disk to wait for
    assert after == [finished]


@pytest.mark.parametrize("where", ["sessions/SESSION", "tasks/c", f"records/{NOTES}/n-2"])
async def test_a_damaged_record_gives_way_to_the_store(tmp_path: Path, where: str) -> None:
    root, session_ids = await written(tmp_path)
    current = root / where.replace("SESSION", session_ids[0]) / "current.json"
    raw = bytearray(current.read_bytes())
    raw[5] ^= 1  # the checksum no longer matches
    current.write_bytes(bytes(raw))
    read = opened(root)
    kind = where.split("/")[0]
    if kind == "sessions":
        assert read.sessions() is None
        assert read.sessions([session_ids[1]]) is not None  # only a read of it gives way
    elif kind == "tasks":
        assert read.tasks(["a", "c"]) is None
        assert read.tasks(["a", "b"]) is not None
    else:
        assert read.records(NOTES) is None
        assert read.records(MARKS) is not None
    async with FileStateStore(root) as store:  # the store recovers it from its history
        assert len(await store.list_sessions(metrics=False)) == 2
        assert len(await store.list_tasks()) == 5
        assert [n.key for n in await store.list_records(NOTES)] == ["n-1", "n-2"]
    assert opened(root).sessions() is not None and opened(root).tasks(["c"]) is not None
    assert opened(root).records(NOTES) is not None


async def test_a_record_under_another_key_gives_way(tmp_path: Path) -> None:
    root, _ = await written(tmp_path)
    tasks = root / "tasks"
    (tasks / "b" / "current.json").write_bytes((tasks / "a" / "current.json").read_bytes())
    assert opened(root).tasks(["b"]) is None
    assert opened(root).tasks(["../b"]) is None  # no safe id: not for this reader to judge
