"""What the file backend does beyond the contract: layout, integrity, durability, locks."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from orchestrator import filelock
from orchestrator.errors import (
    LockTimeout,
    StateCorrupted,
    StateError,
    StateWriteError,
    TaskInActiveSession,
    VersionConflict,
)
from orchestrator.events import Event, EventType
from orchestrator.models import SessionStatus, TaskStatus
from orchestrator.state import FileStateStore
from orchestrator.state.file.fsops import FileOps


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileStateStore]:
    async with FileStateStore.for_repo(tmp_path) as store:
        yield store


def task_dir(store: FileStateStore, task_id: str) -> Path:
    return store.root / "tasks" / task_id


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


async def test_layout_under_dot_council(tmp_path: Path, store: FileStateStore) -> None:
    for n in range(3):
        await store.update_task_state("t1", {"priority": n})
    directory = tmp_path / ".council" / "state" / "tasks" / "t1"
    names = sorted(p.name for p in directory.iterdir())
    # No lock file: the record's lock is its directory.
    assert names == ["current.json", "v000000000001.json", "v000000000002.json"]
    first_line = (directory / "current.json").read_bytes().split(b"\n")[0]
    assert json.loads(first_line)["version"] == 3
    assert (tmp_path / ".council" / "events.jsonl").exists()


async def test_history_files_are_pruned_to_ten(store: FileStateStore) -> None:
    for n in range(25):
        await store.update_task_state("t1", {"priority": n})
    versions = sorted(p.name for p in task_dir(store, "t1").glob("v*.json"))
    assert len(versions) == 10 and versions[-1] == "v000000000024.json"


async def test_history_stays_at_ten_after_recoveries_skipped_versions(
    store: FileStateStore,
) -> None:
    # Each recovery hands out a version two above the newest kept one, so history has gaps;
    # the version that falls off the end is then not always there (found by the stateful
    # test: 11 files after eight recoveries and four updates).
    current = task_dir(store, "t1") / "current.json"
    for step in "UU" + "DU" * 4 + "U" + "DU" * 4 + "U" * 12:
        if step == "D":
            flip_byte(current, 0)
            continue
        await store.update_task_state("t1", {"priority": 1})
        assert len(list(task_dir(store, "t1").glob("v*.json"))) <= 10
    task = await store.get_task_state("t1")
    assert task is not None and task.priority == 1


async def test_damaged_record_is_quarantined_and_recovered(store: FileStateStore) -> None:
    warnings: list[Event] = []
    store.subscribe(lambda e: warnings.append(e) if e.level == "warning" else None)
    for n in range(3):
        await store.update_task_state("t1", {"priority": n})
    current = task_dir(store, "t1") / "current.json"
    flip_byte(current, 20)
    damaged = current.read_bytes()

    task = await store.get_task_state("t1")

    assert task is not None and task.priority == 1  # version 2's content
    assert task.version == 4  # above the lost version 3
    quarantined = list((store.root / "quarantine" / "tasks").iterdir())
    assert [q.read_bytes() for q in quarantined] == [damaged]
    assert [w.type for w in warnings] == [EventType.STATE_RECOVERED]
    assert warnings[0].data["recovered_from_version"] == 2
    logged = [json.loads(line) for line in store.events.path.read_text().splitlines()]
    assert any(e["type"] == "state.recovered" for e in logged)
    with pytest.raises(VersionConflict):
        await store.update_task_state("t1", {"priority": 9}, expected_version=3)


async def test_damage_twice_still_raises_the_version(store: FileStateStore) -> None:
    for n in range(3):
        await store.update_task_state("t1", {"priority": n})
    current = task_dir(store, "t1") / "current.json"
    flip_byte(current, 5)
    first = await store.get_task_state("t1")
    flip_byte(current, 5)
    second = await store.get_task_state("t1")
    assert first is not None and second is not None
    assert second.version > first.version > 3


async def test_damaged_history_is_skipped(store: FileStateStore) -> None:
    for n in range(4):
        await store.update_task_state("t1", {"priority": n})
    directory = task_dir(store, "t1")
    flip_byte(directory / "current.json", 3)
    (directory / "v000000000003.json").write_bytes(b"{}")
    task = await store.get_task_state("t1")
    assert task is not None and task.priority == 1 and task.version == 5


async def test_without_history_damage_is_an_error_never_a_reset(store: FileStateStore) -> None:
    await store.update_task_state("t1", {"priority": 1})
    current = task_dir(store, "t1") / "current.json"
    current.write_bytes(current.read_bytes()[:10])
    damaged = current.read_bytes()
    for _ in range(2):
        with pytest.raises(StateCorrupted) as caught:
            await store.get_task_state("t1")
        assert str(current) in str(caught.value) and "restore a checkpoint" in str(caught.value)
    with pytest.raises(StateCorrupted):
        await store.update_task_state("t1", {"priority": 2})
    assert current.read_bytes() == damaged  # left where it was, for the user to see
    copies = list((store.root / "quarantine" / "tasks").iterdir())
    assert len(copies) == 1 and copies[0].read_bytes() == damaged


async def test_a_missing_current_with_history_is_recovered(store: FileStateStore) -> None:
    for n in range(2):
        await store.update_task_state("t1", {"priority": n})
    (task_dir(store, "t1") / "current.json").unlink()
    task = await store.get_task_state("t1")
    assert task is not None and task.priority == 0 and task.version == 3


async def test_verify_records_recovers_and_reports(store: FileStateStore) -> None:
    await store.create_session({}, ["a", "b"], session_id="s1")
    await store.update_task_state("a", {"priority": 1})
    flip_byte(task_dir(store, "a") / "current.json", 1)
    (task_dir(store, "b") / "current.json").write_bytes(b"garbage")
    problems = {p.key: p for p in await store.verify_records()}
    assert problems["a"].recovered and not problems["b"].recovered
    assert "checksum" in problems["b"].reason
    assert await store.verify_records() == [problems["b"]]


class FailingOps(FileOps):
    """Fails the nth fsync with an OSError of the chosen errno."""

    def __init__(self, code: int, nth: int) -> None:
        self.code = code
        self.remaining = nth

    def fsync(self, fd: int) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            raise OSError(self.code, os.strerror(self.code))
        super().fsync(fd)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EACCES])
async def test_a_failed_write_leaves_the_previous_version(tmp_path: Path, code: int) -> None:
    ops = FailingOps(code, nth=2)
    async with FileStateStore(tmp_path, file_ops=ops) as store:
        await store.update_task_state("t1", {"priority": 1})
        with pytest.raises(StateError) as caught:
            await store.update_task_state("t1", {"priority": 2})
        assert "current.json" in str(caught.value) and os.strerror(code) in str(caught.value)
        task = await store.get_task_state("t1")
        assert task is not None and (task.version, task.priority) == (1, 1)
        assert not list((tmp_path / "tasks" / "t1").glob("*.tmp"))
        again = await store.update_task_state("t1", {"priority": 3})
        assert again.version == 2


async def test_a_held_write_lock_times_out(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path, lock_timeout=0.2) as store:
        await store.update_task_state("t1", {})
        with filelock.try_acquire(store.tasks.lock_path("t1"), directory=True) as held:
            assert held is not None
            with pytest.raises(LockTimeout):
                await store.update_task_state("t1", {"priority": 1})
            (store.tasks.current_path("t1")).write_bytes(b"damaged")
            with pytest.raises(LockTimeout):
                await store.get_task_state("t1")  # recovering needs the lock


async def test_reads_take_no_lock_and_a_damaged_record_waits_for_the_writer(
    store: FileStateStore,
) -> None:
    await store.update_task_state("t1", {"priority": 1})
    await store.update_task_state("t1", {"priority": 2})
    lock_path = store.tasks.lock_path("t1")
    writer = filelock.try_acquire(lock_path, directory=True)
    assert writer is not None
    # Records are replaced atomically: a read while someone writes sees the last whole version.
    task = await store.get_task_state("t1")
    assert task is not None and task.priority == 2 and task.version == 2
    # A damaged record is recovered under the lock, so that read waits for the writer.
    store.tasks.current_path("t1").write_bytes(b"damaged")
    ticks = 0

    async def release_later() -> None:
        nonlocal ticks
        await anyio.sleep(0.1)
        ticks += 1  # the loop kept running while the read waited
        writer.release()

    async with anyio.create_task_group() as group:
        group.start_soon(release_later)
        task = await store.get_task_state("t1")
    assert ticks == 1
    assert task is not None and task.priority == 1  # recovered from history (version 1)


async def test_clean_stale_locks(store: FileStateStore) -> None:
    await store.create_session({}, ["a"], session_id="s1")
    leftover = task_dir(store, "a") / ".current.json.999.dead.tmp"
    leftover.write_bytes(b"half")
    ghost = store.root / "tasks" / "ghost"
    ghost.mkdir()
    (ghost / ".lock").touch()
    held = filelock.try_acquire(store.tasks.lock_path("b-held"), directory=True)
    assert held is not None
    try:
        assert await store.clean_stale_locks() == 2
    finally:
        held.release()
    assert not leftover.exists() and not ghost.exists()
    assert (store.root / "tasks" / "b-held").is_dir()  # its lock, held: left alone
    assert await store.get_task_state("a") is not None


async def test_event_log_lines_are_whole_json(store: FileStateStore) -> None:
    await store.create_session({}, ["a"], session_id="s1")
    await store.update_task_state("a", {"status": TaskStatus.RUNNING})
    events = list(store.events.read())
    assert [e.type for e in events][:1] == [EventType.STATE_UPDATED]
    assert EventType.SESSION_CREATED in [e.type for e in events]


async def test_a_lost_session_is_recovered_from_its_checkpoint(store: FileStateStore) -> None:
    await store.create_session({"run": "x"}, ["a", "b"], session_id="s1")
    await store.update_task_state("a", {"status": TaskStatus.DONE})
    await store.create_checkpoint("s1", "before the crash")
    session_dir = store.root / "sessions" / "s1"
    for path in session_dir.iterdir():
        if path.name != ".lock":
            path.write_bytes(b"\x00" * 10)  # current and its whole history destroyed
    snapshot = await store.recover_session("s1")
    assert snapshot.session.options == {"run": "x"}
    assert snapshot.session.metrics.completed == 1
    assert sorted(t.task_id for t in snapshot.tasks) == ["a", "b"]
    assert list((store.root / "quarantine" / "sessions").iterdir())


async def test_emitted_and_written_events_keep_their_order_in_the_log(tmp_path: Path) -> None:
    # ``emit`` queues its line for the log's writer thread; a store write appends its own
    # events at once. Both go through one queue, so the file keeps the order they came in.
    async with FileStateStore.for_repo(tmp_path) as store:
        for n in range(50):
            await store.emit(Event(type="test.emitted", data={"n": n}))
            await store.update_task_state("t1", {"priority": n})
        logged = [(e.type, e.data.get("n", e.data.get("version"))) for e in store.events.read()]
    expected: list[tuple[str, object]] = []
    for n in range(50):
        expected += [("test.emitted", n), (EventType.STATE_UPDATED, n + 1)]
    assert logged == expected


async def test_closing_the_store_writes_every_emitted_event(tmp_path: Path) -> None:
    async with FileStateStore.for_repo(tmp_path) as store:
        for n in range(200):
            await store.emit(Event(type="test.emitted", data={"n": n}))
    lines = (tmp_path / ".council" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["data"]["n"] for line in lines] == list(range(200))
    # A store used again after closing starts a new writer.
    await store.emit(Event(type="test.emitted", data={"n": 200}))
    await store.aclose()
    assert len((tmp_path / ".council" / "events.jsonl").read_text().splitlines()) == 201


async def test_session_metrics_are_computed_from_the_tasks_when_read(
    store: FileStateStore,
) -> None:
    await store.create_session({}, ["a", "b"], session_id="s1")
    before = (store.root / "sessions" / "s1" / "current.json").read_bytes()
    await store.update_task_state("a", {"status": TaskStatus.DONE})
    await store.update_task_state("b", {"status": TaskStatus.RUNNING})
    # A task write no longer touches its session record...
    assert (store.root / "sessions" / "s1" / "current.json").read_bytes() == before
    # ...yet every read of the session counts the tasks as they are now.
    session = await store.get_session("s1")
    assert session is not None
    assert (session.metrics.completed, session.metrics.in_progress) == (1, 1)
    listed = await store.get_active_sessions()
    assert [(s.session_id, s.metrics.completed) for s in listed] == [("s1", 1)]


async def test_a_session_naming_a_task_of_an_unfinished_one_is_refused_changing_nothing(
    store: FileStateStore,
) -> None:
    await store.create_session({}, ["a"], session_id="s1")  # left active: its run was killed
    await store.create_session({}, ["x"], session_id="s0")
    await store.update_session("s0", {"status": SessionStatus.COMPLETED})
    before = await store.get_task_state("x")

    with pytest.raises(TaskInActiveSession) as refused:
        await store.create_session({}, ["x", "a", "new"], session_id="s2")

    message = str(refused.value)
    assert "task 'a' belongs to session 's1'" in message
    assert "council resume" in message and "council cancel <config> a" in message
    # Checked before anything was taken: the finished session's task and the new one are
    # untouched, and no session s2 exists.
    assert await store.get_task_state("x") == before
    assert await store.get_task_state("new") is None
    assert await store.get_session("s2") is None
    # A task of a finished session is taken over by a new one.
    await store.create_session({}, ["x", "new"], session_id="s3")
    taken = await store.get_task_state("x")
    assert taken is not None and taken.session_id == "s3"


async def test_a_link_in_the_store_is_refused_as_a_write_error_never_followed(
    tmp_path: Path,
) -> None:
    # A damaged record is moved into quarantine/: with a link in place of that directory,
    # the recovery would have moved the damaged file (and its bytes) wherever it points.
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "state"
    async with FileStateStore(root) as store:
        await store.update_task_state("t1", {"priority": 1})
        await store.update_task_state("t1", {"priority": 2})
        (root / "quarantine").mkdir()
        (root / "quarantine" / "tasks").symlink_to(outside, target_is_directory=True)
        store.tasks.current_path("t1").write_bytes(b"damaged")
        with pytest.raises(StateWriteError, match="'tasks' on the way is a symbolic link") as no:
            await store.get_task_state("t1")
        assert "remove the link (its target is untouched)" in str(no.value)
        assert list(outside.iterdir()) == []
        (root / "quarantine" / "tasks").unlink()  # the advice, followed
        task = await store.get_task_state("t1")
        assert task is not None and task.priority == 1  # recovered from its history


async def test_the_identity_is_shared_by_every_store_on_the_data_and_lost_with_it(
    tmp_path: Path,
) -> None:
    # A deletion of the whole state, even one a racing write partly refilled, gives the data
    # another identity: record writes never make the mark again.
    async with (
        FileStateStore.for_repo(tmp_path) as first,
        FileStateStore.for_repo(tmp_path) as second,
    ):
        mark = await first.identity()
        assert await second.identity() == mark
        session = await first.create_session({}, [{"task_id": "t1"}])
        saved = (first.root / "sessions" / session.session_id / "current.json").read_bytes()
        shutil.rmtree(first.root)
        await first.update_task_state("t1", {"priority": 2})
        written_back = first.root / "sessions" / session.session_id / "current.json"
        written_back.parent.mkdir(parents=True)
        written_back.write_bytes(saved)
        assert await first.get_session(session.session_id) is not None
        assert not (first.root / "store-id").exists()
        assert await second.identity() not in (None, mark)


class _UnlinkOrder(FileOps):
    """Real file operations that note each file unlinked, and fail the ``fail_at``-th (a
    process dying part way through a delete)."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.unlinked: list[str] = []
        self.fail_at = fail_at

    def unlink(self, path: Path) -> None:
        if self.fail_at is not None and len(self.unlinked) + 1 == self.fail_at:
            raise OSError(errno.EIO, "the process died here", str(path))
        super().unlink(path)
        self.unlinked.append(path.name)


async def test_a_delete_cut_short_leaves_the_record_whole_never_history_alone(
    tmp_path: Path,
) -> None:
    ops = _UnlinkOrder()
    async with FileStateStore.for_repo(tmp_path, file_ops=ops) as store:
        for n in range(12):
            await store.put_record("notes", "k", {"n": n})
        assert await store.delete_record("notes", "k") is True
    deleted = [name for name in ops.unlinked if name != ".lock"]
    assert deleted[-1] == "current.json", deleted  # history first: never history alone
    ops = _UnlinkOrder(fail_at=3)
    async with FileStateStore.for_repo(tmp_path, file_ops=ops) as store:
        for n in range(5):
            await store.put_record("notes", "k2", {"n": n})
        with pytest.raises(OSError, match="the process died here"):
            await store.delete_record("notes", "k2")
        kept = await store.get_record("notes", "k2")
        assert kept is not None and kept.data == {"n": 4}  # whole, not recovered from history


async def test_record_caches_hold_a_bounded_number_of_records(store: FileStateStore) -> None:
    # The paths and bytes kept per kind stay as many however many records were written and
    # read (memory per task is flat: issue 33); the newest are the ones kept.
    from orchestrator.state.file.record_files import records

    assert records._CACHE_SIZE <= 128  # what is in use at once, not hundreds of ended tasks
    for n in range(3 * records._CACHE_SIZE):
        key = f"call-{n:04d}"
        await store.put_record("ledger", key, {"n": n})
        assert (await store.get_record("ledger", key)) is not None
    kind = store.core.namespace("ledger")
    assert len(kind._path_cache) <= records._CACHE_SIZE
    assert len(kind._bytes_cache) <= records._CACHE_SIZE
    newest = f"call-{3 * records._CACHE_SIZE - 1:04d}"
    assert newest in kind._path_cache and newest in kind._bytes_cache
    assert (await store.get_record("ledger", "call-0000")).data == {"n": 0}  # type: ignore[union-attr]


def test_record_caches_take_worker_threads_adding_at_once(store: FileStateStore) -> None:
    # A store's reads and writes run in worker threads side by side, all keeping records in
    # the same caches: dropping the oldest while another thread adds must not fail either.
    import sys
    import threading

    from orchestrator.state.file.record_files import records

    kind = store.core.namespace("ledger")
    failed: list[BaseException] = []

    def keep(thread: int) -> None:
        try:
            for n in range(2_000):
                kind._remember(f"k{thread}-{n}", (0, 0, 0, n), b"x")
                kind.dir_for(f"k{thread}-{n}")
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=keep, args=(t,)) for t in range(8)]
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the threads take turns between any two steps
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switching)
    assert failed == []
    assert len(kind._bytes_cache) <= records._CACHE_SIZE + len(threads)
