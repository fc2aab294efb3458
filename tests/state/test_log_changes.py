"""The file backend's watcher from below: following ``events.jsonl`` (appends, torn lines, a
log rotated away or trimmed) and the wake-up (inotify, and the interval where it is missing),
on real files."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from orchestrator.state import FileStateStore, RecordRef
from orchestrator.state.file.log.log_changes import LogFollower, record_change
from orchestrator.state.file.log.log_wake import LogWake
from tests.support.timing import patience


def append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def test_a_follower_reads_only_what_is_appended_after_it_started(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    append(log, b"old\n")
    follower = LogFollower(log)
    assert follower.read_new() == []
    append(log, b"one\ntw")
    assert follower.read_new() == [b"one"]  # a line is whole only with its newline
    append(log, b"o\n")
    assert follower.read_new() == [b"two"]
    follower.close()


def test_a_follower_follows_the_log_rotated_away_and_started_afresh(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    append(log, b"before\n")
    follower = LogFollower(log)
    append(log, b"last of the old\n")
    log.rename(tmp_path / "events.1.jsonl")
    append(log, b"first of the new\n")
    assert follower.read_new() == [b"last of the old", b"first of the new"]
    append(log, b"next\n")
    assert follower.read_new() == [b"next"]
    follower.close()


def test_a_follower_reads_a_log_trimmed_in_place_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    append(log, b"a long line that goes\n")
    follower = LogFollower(log)
    log.write_bytes(b"")
    append(log, b"kept\n")
    assert follower.read_new() == [b"kept"]
    follower.close()


def test_a_follower_of_a_log_not_made_yet_reads_it_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    follower = LogFollower(log)
    assert follower.read_new() == []
    append(log, b"first\n")
    assert follower.read_new() == [b"first"]
    follower.close()


def test_record_writes_are_told_apart_from_other_lines() -> None:
    updated = b'{"type":"state.updated","data":{"kind":"tasks","key":"t1","version":3}}'
    keyed = b'{"type":"state.updated","data":{"kind":"owners","key":"k","version":1}}'
    recovered = b'{"type":"state.recovered","data":{"kind":"sessions","key":"s1","new_version":7}}'
    change = record_change(updated)
    assert change is not None and (change.path, change.version) == ("tasks/t1", 3)
    change = record_change(keyed)
    assert change is not None and change.path == "records/owners/k"
    change = record_change(recovered)
    assert change is not None and (change.path, change.version) == ("sessions/s1", 7)
    assert record_change(b'{"type":"task.dispatched","data":{"task_id":"t1"}}') is None
    assert record_change(b'{"type":"state.updated","data":{"kind":"counters","key":"f"}}') is None
    assert record_change(b'{"type":"state.updated", torn') is None


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "interval"])
async def test_a_wake_up_comes_after_an_append(tmp_path: Path, inotify: bool) -> None:
    log = tmp_path / "events.jsonl"
    wake = LogWake(log, inotify=inotify)
    try:
        assert wake.efficient is inotify
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, append, log, b"line\n")
            with anyio.fail_after(patience(10)):
                await wake.wait()
    finally:
        wake.close()


async def test_a_watch_goes_on_across_a_rotation_of_the_log(tmp_path: Path) -> None:
    async with FileStateStore.for_repo(tmp_path) as store:
        await store.update_task_state("t1", {})
        log = store.events.path
        async with store.watch("tasks/*") as changes:
            # Another process rotates the log; a writer started afterwards makes a new one.
            log.rename(log.with_name("events.1.jsonl"))
            async with FileStateStore.for_repo(tmp_path) as writer:
                await writer.update_task_state("t2", {})
                with anyio.fail_after(patience(10)):
                    (change,) = await changes.next_batch()
        assert (change.path, change.version) == ("tasks/t2", 1)
        written = await store.wait_for_update(RecordRef.task("t2"), 0, timeout=patience(5))
        assert written is not None and written.version == 1


def _inotify_instances() -> int:
    fds = Path("/proc/self/fd")
    return sum(os.readlink(fd) == "anon_inode:inotify" for fd in fds.iterdir() if fd.exists())


async def test_many_waiters_share_one_inotify_instance_and_all_wake(tmp_path: Path) -> None:
    async with FileStateStore.for_repo(tmp_path) as store:
        await store.update_task_state("t1", {})
        before = _inotify_instances()
        woken: list[int] = []

        async def waiter() -> None:
            found = await store.wait_for_update(RecordRef.task("t1"), 1, timeout=patience(20))
            assert found is not None
            woken.append(found.version)

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(waiter)
            await anyio.sleep(0.3)
            assert _inotify_instances() == before + 1
            async with FileStateStore.for_repo(tmp_path) as writer:
                await writer.update_task_state("t1", {})
        assert woken == [2] * 20
        assert _inotify_instances() == before


def test_a_log_rotated_away_is_still_read_while_its_writers_move_on(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    append(log, b"")
    follower = LogFollower(log)
    rotated = tmp_path / "events.20260101T000000Z.jsonl"
    log.rename(rotated)
    append(log, b"new\n")
    assert follower.read_new() == [b"new"]
    append(rotated, b"late to the old one\n")  # a writer that has not looked yet
    assert follower.read_new() == [b"late to the old one"]
    follower.close()


async def test_a_watch_hears_every_write_while_the_writer_rotates_the_log(tmp_path: Path) -> None:
    async with (
        FileStateStore.for_repo(tmp_path) as store,
        FileStateStore.for_repo(tmp_path, events_rotate_bytes=1) as writer,
    ):
        writer.events.recheck = 0  # rotate on every append past the first
        await writer.update_task_state("t0", {})  # the log exists when the watch starts
        async with store.watch("tasks/*") as changes:
            heard: list[str] = []
            for n in range(1, 11):
                await writer.update_task_state(f"t{n}", {})
                with anyio.fail_after(patience(10)):
                    heard += [c.key for c in await changes.next_batch()]
        assert heard == [f"t{n}" for n in range(1, 11)]
        assert len(writer.events.archives()) >= 9  # it did rotate, again and again
