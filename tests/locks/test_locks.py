"""The three protection layers: file locks, the ownership registry with its wait-for graph, and
the merge lock, with real lock files, a real state store and real OS processes."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.errors import (
    DeadlockError,
    InvalidIdError,
    LockError,
    LockTimeout,
    PathEscapeError,
    StaleClaim,
)
from orchestrator.events import Event
from orchestrator.events.locks import LockWaiting
from orchestrator.locks.manager import FileLockGrant, LockManager
from orchestrator.process import procid
from orchestrator.process.procid import ProcessId
from orchestrator.state import FileStateStore
from tests.support.hops import count_hops
from tests.support.timing import patience

Pair = tuple[LockManager, LockManager]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    return root


@pytest.fixture(params=["memory", "store"])
async def pair(request: pytest.FixtureRequest, project: Path) -> AsyncIterator[Pair]:
    """Two managers that see each other's locks: one manager twice (no store), or two managers
    on two store instances of the same directory, as two orchestrator processes would be."""
    if request.param == "memory":
        locks = LockManager(project)
        yield locks, locks
        await locks.aclose()
        return
    async with FileStateStore.for_repo(project) as one, FileStateStore.for_repo(project) as two:
        first, second = LockManager(project, store=one), LockManager(project, store=two)
        yield first, second
        await first.aclose()
        await second.aclose()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not await check():
            await anyio.sleep(0.005)


# -- file locks -------------------------------------------------------------------------------


async def test_acquire_and_release(pair: Pair) -> None:
    locks, other = pair
    grant = await locks.acquire_file_lock("a", "./src//app.py")
    assert (grant.path, grant.session) == ("src/app.py", "a")
    assert grant.token >= 1 and grant.since.tzinfo is not None
    assert await other.owner_of("src/app.py") == grant
    assert locks.held("a") == [grant]
    assert await locks.release_file_lock("a", "./src//app.py") is True
    assert await other.owner_of("src/app.py") is None
    assert await locks.release_file_lock("a", "src/app.py") is False
    assert locks.held("a") == []


async def test_a_second_session_times_out_naming_the_owner_then_gets_the_lock(pair: Pair) -> None:
    locks, other = pair
    first = await locks.acquire_file_lock("a", "src/app.py")
    started = time.monotonic()
    with pytest.raises(LockTimeout) as info:
        await other.acquire_file_lock("b", "src/app.py", timeout=patience(0.2))
    assert time.monotonic() - started >= 0.2
    assert info.value.owner == "a"
    assert "src/app.py" in str(info.value) and "session a" in str(info.value)

    async def release_soon() -> None:
        await anyio.sleep(0.1)
        await locks.release_file_lock("a", "src/app.py")

    async with anyio.create_task_group() as tg:
        tg.start_soon(release_soon)
        second = await other.acquire_file_lock("b", "src/app.py", timeout=patience(10))
    assert second.session == "b" and second.token > first.token
    assert (await locks.owner_of("src/app.py")) == second


async def test_a_session_cannot_take_a_path_twice(pair: Pair, project: Path) -> None:
    locks, _ = pair
    (project / "src" / "app.py").write_text("")
    (project / "alias.py").symlink_to("src/app.py")
    await locks.acquire_file_lock("a", "src/app.py")
    for spelling in ("src/app.py", "./src/app.py", project / "src" / "app.py", "alias.py"):
        with anyio.fail_after(patience(2)), pytest.raises(LockError, match="already holds") as info:
            await locks.acquire_file_lock("a", spelling, timeout=patience(30))
        assert not isinstance(info.value, LockTimeout | DeadlockError)
    assert [g.path for g in locks.held("a")] == ["src/app.py"]


async def test_a_release_spelled_differently_releases_the_same_lock(pair: Pair) -> None:
    locks, _ = pair
    await locks.acquire_file_lock("a", "src/app.py")
    assert await locks.release_file_lock("a", "./src/../src/app.py") is True
    assert await locks.owner_of("src/app.py") is None


async def test_paths_and_sessions_are_checked(pair: Pair) -> None:
    locks, _ = pair
    with pytest.raises(PathEscapeError):
        await locks.acquire_file_lock("a", "../elsewhere.py")
    with pytest.raises(InvalidIdError):
        await locks.acquire_file_lock("../evil", "src/app.py")
    assert locks.held("a") == []


async def test_tokens_keep_growing_across_managers(project: Path) -> None:
    tokens = []
    for _ in range(3):
        locks = LockManager(project)  # a fresh manager each time, as after a restart
        grant = await locks.acquire_file_lock("a", "src/app.py")
        tokens.append(grant.token)
        await locks.release_file_lock("a", "src/app.py")
    assert tokens == sorted(set(tokens))


async def test_several_paths_are_taken_all_or_none(pair: Pair) -> None:
    locks, other = pair
    await other.acquire_file_lock("b", "src/b.py")
    with pytest.raises(LockTimeout):
        await locks.acquire_file_locks(
            "a", ["src/c.py", "src/b.py", "src/a.py"], timeout=patience(0.1)
        )
    assert locks.held("a") == []
    await other.release_file_lock("b", "src/b.py")
    grants = await locks.acquire_file_locks("a", ["src/c.py", "./src/b.py", "src/a.py", "src/a.py"])
    assert [g.path for g in grants] == ["src/a.py", "src/b.py", "src/c.py"]


async def test_a_cancelled_wait_leaves_nothing_behind(pair: Pair) -> None:
    locks, other = pair
    await locks.acquire_file_lock("a", "src/app.py")
    with anyio.move_on_after(0.1):
        await other.acquire_file_lock("b", "src/app.py", timeout=patience(30))
    assert await other.registry.waits() == {}
    assert other.held("b") == []
    await locks.release_file_lock("a", "src/app.py")
    assert (await other.acquire_file_lock("b", "src/app.py")).session == "b"


# -- fencing ----------------------------------------------------------------------------------


async def test_a_stale_token_cannot_release_the_new_owners_lock(pair: Pair) -> None:
    locks, other = pair
    old = await locks.acquire_file_lock("a", "src/app.py")
    await locks.release_file_lock("a", "src/app.py")
    new = await other.acquire_file_lock("b", "src/app.py")
    assert new.token > old.token
    assert await locks.release_file_lock("a", "src/app.py") is False
    with pytest.raises(StaleClaim) as info:
        await locks.release_file_lock("a", "src/app.py", token=old.token)
    assert info.value.current == new.token
    with pytest.raises(StaleClaim):
        await other.release_file_lock("b", "src/app.py", token=old.token)
    assert await locks.owner_of("src/app.py") == new
    with pytest.raises(LockTimeout):
        await locks.acquire_file_lock("a", "src/app.py", timeout=patience(0.05))
    assert await other.release_file_lock("b", "src/app.py", token=new.token) is True


async def test_another_manager_cannot_release_a_lock_it_does_not_hold(project: Path) -> None:
    async with FileStateStore.for_repo(project) as store:
        holder, stranger = LockManager(project, store=store), LockManager(project, store=store)
        grant = await holder.acquire_file_lock("a", "src/app.py")
        assert await stranger.release_file_lock("a", "src/app.py") is False
        assert await stranger.owner_of("src/app.py") == grant
        with pytest.raises(LockTimeout):
            await stranger.acquire_file_lock("b", "src/app.py", timeout=patience(0.05))
        await holder.aclose()


# -- a holder killed with SIGKILL -------------------------------------------------------------


def hold_locks(project: str, paths: list[str], ready: ProcessEvent) -> None:
    async def run() -> None:
        async with FileStateStore.for_repo(project) as store:
            locks = LockManager(project, store=store)
            for path in paths:
                await locks.acquire_file_lock("victim", path)
            ready.set()
            await anyio.sleep(600)

    anyio.run(run)


async def test_a_killed_holder_releases_its_locks_and_its_entries_are_reclaimed(
    project: Path,
) -> None:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(
        target=hold_locks, args=(str(project), ["src/a.py", "src/b.py"], ready)
    )
    holder.start()
    try:
        assert await anyio.to_thread.run_sync(ready.wait, 60)
        async with FileStateStore.for_repo(project) as store:
            events: list[Event] = []
            store.subscribe(events.append)
            locks = LockManager(project, store=store)
            victim = await locks.owner_of("src/a.py")
            assert victim is not None and victim.session == "victim"
            with pytest.raises(LockTimeout) as info:
                await locks.acquire_file_lock("heir", "src/a.py", timeout=patience(0.2))
            assert info.value.owner == "victim"

            assert holder.pid is not None
            os.kill(holder.pid, signal.SIGKILL)
            await anyio.to_thread.run_sync(holder.join, 30)
            assert holder.exitcode == -signal.SIGKILL

            # The entries survive the process; the kernel dropped the OS locks.
            assert await locks.owner_of("src/b.py") is None
            grant = await locks.acquire_file_lock("heir", "src/a.py", timeout=patience(5))
            assert grant.session == "heir" and grant.token > victim.token
            reclaimed = [e for e in events if e.data.get("reclaimed_from") == "victim"]
            assert [e.data["path"] for e in reclaimed] == ["src/a.py"]

            # The dead session's other entry goes with release_all, from any process.
            assert await locks.release_all_session_locks("victim") == 1
            assert await locks.registry.owner(locks._key("src/b.py")[0]) is None
            assert await locks.registry.index("victim") == {}
            assert await locks.owner_of("src/a.py") == grant
            await locks.aclose()
    finally:
        if holder.is_alive():
            holder.kill()
            holder.join(30)


# -- process identity -------------------------------------------------------------------------


def test_a_reused_pid_is_not_mistaken_for_the_holder() -> None:
    me = procid.current()
    assert procid.is_alive(me) is True
    assert procid.is_alive(ProcessId(me.pid, me.host, "another-boot:123")) is False
    assert procid.is_alive(ProcessId(me.pid, me.host + ".elsewhere", me.started)) is None
    child = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    child.start()
    child.join(30)
    assert child.pid is not None
    assert procid.is_alive(ProcessId(child.pid, me.host, me.started)) is False
    assert ProcessId.from_dict(me.as_dict()) == me
    assert ProcessId.from_dict({"pid": "1"}) is None


# -- deadlocks --------------------------------------------------------------------------------


async def test_a_wait_that_closes_a_cycle_is_refused_and_the_first_wait_goes_on(
    pair: Pair,
) -> None:
    locks_a, locks_b = pair
    await locks_a.acquire_file_lock("a", "src/x.py")
    await locks_b.acquire_file_lock("b", "src/y.py")
    got: list[FileLockGrant] = []
    said: list[Event] = []
    store_a = locks_a._store  # a's events go there (None: no store, nothing said)
    if store_a is not None:
        store_a.subscribe(said.append)

    async def a_waits_for_y() -> None:
        got.append(await locks_a.acquire_file_lock("a", "src/y.py", timeout=patience(30)))

    async def a_is_waiting() -> bool:
        """a's wait is written and looked at: with a store, its edge is written, then the graph
        read in another worker-thread hop, and ``lock.waiting`` said once no cycle was found.
        b must try only then for its wait to be the one that closes the cycle: had b written
        its edge before a read the graph, both would see the cycle and both be refused (each
        wait's look reads after its own write, so a cycle is never missed; two that close one
        at the same moment are both refused, never neither)."""
        if "a" not in await locks_b.registry.waits():
            return False
        return store_a is None or any(isinstance(e, LockWaiting) and e.session == "a" for e in said)

    async with anyio.create_task_group() as tg:
        tg.start_soon(a_waits_for_y)
        await eventually(a_is_waiting)
        with pytest.raises(DeadlockError) as info:  # refused at once: waited, it would hang
            await locks_b.acquire_file_lock("b", "src/x.py", timeout=3600)
        error = info.value
        assert error.cycle == [("b", "src/x.py", "a"), ("a", "src/y.py", "b")]
        assert error.sessions == ["b", "a"] and error.paths == ["src/x.py", "src/y.py"]
        for word in ("session a", "session b", "src/x.py", "src/y.py"):
            assert word in str(error)
        assert set(await locks_a.registry.waits()) == {"a"}  # b's refused wait is gone
        await anyio.sleep(0.1)
        assert got == []  # a still waits
        await locks_b.release_file_lock("b", "src/y.py")
    assert [(g.session, g.path) for g in got] == [("a", "src/y.py")]
    assert await locks_a.registry.waits() == {}


async def test_deadlock_and_wait_events_reach_the_store(project: Path) -> None:
    async with FileStateStore.for_repo(project) as store:
        events: list[Event] = []
        store.subscribe(events.append)
        locks = LockManager(project, store=store)
        await locks.acquire_file_lock("a", "src/x.py")
        await locks.acquire_file_lock("b", "src/y.py")
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: locks.acquire_file_lock("a", "src/y.py", timeout=patience(30)))
            await eventually(lambda: _has(events, "lock.waiting"))
            with pytest.raises(DeadlockError):
                await locks.acquire_file_lock("b", "src/x.py")
            await locks.release_file_lock("b", "src/y.py")
        kinds = [e.type for e in events if e.type.startswith("lock.")]
        assert kinds.count("lock.acquired") == 3 and "lock.released" in kinds
        deadlock = next(e for e in events if e.type == "lock.deadlock")
        assert deadlock.data["session"] == "b"
        assert {tuple(s) for s in deadlock.data["cycle"]} == {
            ("b", "src/x.py", "a"),
            ("a", "src/y.py", "b"),
        }
        assert [e.type for e in store.events.read() if e.type.startswith("lock.")] == kinds
        await locks.aclose()


async def _has(events: list[Event], kind: str) -> bool:
    return any(e.type == kind for e in events)


# -- release_all ------------------------------------------------------------------------------


async def test_release_all_counts_file_locks_and_the_merge_lock(pair: Pair) -> None:
    locks, other = pair
    for path in ("src/a.py", "src/b.py", "src/c.py"):
        await locks.acquire_file_lock("a", path)
    kept = await other.acquire_file_lock("b", "src/d.py")
    await locks.acquire_merge_lock("a")
    assert await locks.release_all_session_locks("a") == 4
    assert locks.held("a") == [] and locks.merge_holder is None
    assert await other.owner_of("src/d.py") == kept
    assert await locks.release_all_session_locks("a") == 0
    for path in ("src/a.py", "src/b.py", "src/c.py"):
        assert (await other.acquire_file_lock("c", path)).session == "c"
    async with other.merge_lock("c", timeout=patience(1)) as grant:
        assert grant.session == "c"


async def test_a_fresh_session_that_took_no_file_lock_ends_with_no_look_for_leftovers(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session drawn just now by this process (``fresh``) that took and waited for no file
    lock here, merged or not: its end reads and deletes nothing (no dead process can have left
    anything of it). Once it takes a file lock, its end looks as for any other session."""
    async with FileStateStore.for_repo(project) as store:
        locks = LockManager(project, store=store)
        asked: list[tuple[str, str, str]] = []
        real_get, real_delete = store.get_record, store.delete_record

        async def get_record(namespace: str, key: str) -> object:
            asked.append(("get", namespace, key))
            return await real_get(namespace, key)

        async def delete_record(namespace: str, key: str, *args: Any, **kw: Any) -> bool:
            asked.append(("delete", namespace, key))
            return await real_delete(namespace, key, *args, **kw)

        monkeypatch.setattr(store, "get_record", get_record)
        monkeypatch.setattr(store, "delete_record", delete_record)
        locks.fresh("new")
        assert await locks.release_all_session_locks("new") == 0
        assert asked == []
        assert await locks.release_all_session_locks("new") == 0  # ended: looked for again
        assert ("get", "session-locks", "new") in asked
        assert ("delete", "lock-waits", "new") in asked
        locks.fresh("merger")
        async with locks.merge_lock("merger"):
            pass
        asked.clear()
        assert await locks.release_all_session_locks("merger") == 0
        assert asked == []
        locks.fresh("owner")
        await locks.acquire_file_lock("owner", "src/a.py")
        asked.clear()
        assert await locks.release_all_session_locks("owner") == 1
        assert ("delete", "lock-waits", "owner") in asked  # as for any other session
        await locks.aclose()


async def test_a_session_that_let_go_of_the_merge_lock_here_is_not_looked_for_again(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its release deleted the record naming it: the release of all its locks does not read
    the merge lock's record again (a worker-thread hop a task); a session that never merged
    here still is looked for (a dead holder's record is cleared, ``test_stale_locks``)."""
    async with FileStateStore.for_repo(project) as store:
        locks = LockManager(project, store=store)
        async with locks.merge_lock("a"):
            pass
        asked: list[tuple[str, str]] = []
        real = store.get_record

        async def get_record(namespace: str, key: str) -> object:
            asked.append((namespace, key))
            return await real(namespace, key)

        monkeypatch.setattr(store, "get_record", get_record)
        assert await locks.release_all_session_locks("a") == 0
        assert ("merge-lock", "merge") not in asked
        assert await store.get_record("merge-lock", "merge") is None
        asked.clear()
        assert await locks.release_all_session_locks("b") == 0
        assert ("merge-lock", "merge") in asked
        await locks.aclose()


async def test_a_free_merge_lock_is_taken_with_its_token_in_one_worker_thread_call(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OS lock's try, the counter's bump and the record naming the holder ride in one
    worker-thread call, the record's write (the record read before, its delete after): three
    hops a grant, not five."""
    from orchestrator.filelock import FileLock

    async with FileStateStore.for_repo(project) as store:
        locks = LockManager(project, store=store)
        first = await locks.acquire_merge_lock("a")
        await locks.release_merge_lock("a")
        hopped = count_hops(monkeypatch)
        grant = await locks.acquire_merge_lock("b")
        assert grant.token > first.token  # the token still grows with every grant
        assert (await store.get_record("merge-lock", "merge")).data["token"] == grant.token  # type: ignore[union-attr]
        assert await locks.release_merge_lock("b")
        assert FileLock.bump_counter not in hopped
        assert len(hopped) == 3, hopped
        await locks.aclose()


async def test_a_merge_lock_whose_record_fails_is_let_go(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OS lock taken in the record write's call, the write then failing: the lock is let
    go (another manager takes it at once) and no grant is held."""
    async with FileStateStore.for_repo(project) as store:
        locks = LockManager(project, store=store)
        real = store.put_made_record_then

        async def failing(namespace: str, key: str, make: Any, *args: Any, **kw: Any) -> Any:
            await anyio.to_thread.run_sync(make)  # the lock taken, then the write fails
            raise OSError("disk full")

        monkeypatch.setattr(store, "put_made_record_then", failing)
        with pytest.raises(OSError, match="disk full"):
            await locks.acquire_merge_lock("a")
        assert locks.merge_holder is None
        monkeypatch.setattr(store, "put_made_record_then", real)
        async with FileStateStore.for_repo(project) as other_store:
            other = LockManager(project, store=other_store)
            grant = await other.acquire_merge_lock("b", timeout=patience(10))
            assert grant.session == "b"
            await other.release_merge_lock("b")
            await other.aclose()
        await locks.aclose()


async def test_a_merge_lock_waited_for_still_draws_a_token_above_the_last(project: Path) -> None:
    """Held by another process's manager when asked: waited for, the floor read again."""
    async with FileStateStore.for_repo(project) as one, FileStateStore.for_repo(project) as two:
        first, second = LockManager(project, store=one), LockManager(project, store=two)
        held = await first.acquire_merge_lock("a")
        async with anyio.create_task_group() as group:
            got: list[int] = []

            async def wait() -> None:
                got.append((await second.acquire_merge_lock("b", timeout=patience(10))).token)

            group.start_soon(wait)
            await anyio.sleep(0.05)
            assert got == []  # still held by "a"
            await first.release_merge_lock("a")
        assert got[0] > held.token
        record = await two.get_record("merge-lock", "merge")
        assert record is not None and record.data["session"] == "b"
        assert record.data["token"] == got[0]  # the waited-for grant recorded as before
        await second.release_merge_lock("b")
        await first.aclose()
        await second.aclose()


async def test_a_session_that_merges_again_is_looked_for_once_more(project: Path) -> None:
    """Granted again after a release: a record may name it again, so it is looked for."""
    async with FileStateStore.for_repo(project) as store:
        locks = LockManager(project, store=store)
        async with locks.merge_lock("a"):
            pass
        await locks.acquire_merge_lock("a")
        assert await locks.release_all_session_locks("a") == 1
        assert await store.get_record("merge-lock", "merge") is None
        await locks.aclose()


# -- merge lock -------------------------------------------------------------------------------


async def test_concurrent_merges_never_overlap(pair: Pair) -> None:
    locks, other = pair
    intervals: list[tuple[float, float, int]] = []

    async def merge(manager: LockManager, session: str) -> None:
        async with manager.merge_lock(session) as grant:
            entered = time.monotonic()
            await anyio.sleep(0.005)
            intervals.append((entered, time.monotonic(), grant.token))

    async with anyio.create_task_group() as tg:
        for n in range(8):
            tg.start_soon(merge, locks if n % 2 else other, f"s{n}")
    assert len(intervals) == 8
    intervals.sort()
    for (_, left_exit, left_token), (right_enter, _, right_token) in itertools.pairwise(intervals):
        assert left_exit <= right_enter
        assert left_token < right_token


async def test_only_the_holder_releases_the_merge_lock(pair: Pair) -> None:
    locks, other = pair
    grant = await locks.acquire_merge_lock("a")
    assert await other.release_merge_lock("b") is False
    assert await locks.release_merge_lock("b") is False
    with pytest.raises(LockError, match="already holds the merge lock"):
        await locks.acquire_merge_lock("a")
    with pytest.raises(LockTimeout) as info:
        await other.acquire_merge_lock("b", timeout=patience(0.1))
    assert info.value.owner == "a"
    assert locks.merge_holder == grant
    assert await locks.release_merge_lock("a") is True
    assert (await other.acquire_merge_lock("b", timeout=patience(1))).token > grant.token


async def test_the_merge_lock_is_released_when_the_body_fails_or_is_cancelled(
    pair: Pair,
) -> None:
    locks, other = pair
    with pytest.raises(RuntimeError, match="boom"):
        async with locks.merge_lock("a"):
            raise RuntimeError("boom")
    with anyio.move_on_after(0.05):
        async with locks.merge_lock("a"):
            await anyio.sleep(10)
    async with other.merge_lock("b", timeout=patience(1)) as grant:
        assert grant.session == "b"


async def test_another_task_may_release_a_sessions_merge_lock(project: Path) -> None:
    locks = LockManager(project)
    await locks.acquire_merge_lock("a")
    released: list[bool] = []

    async def reconcile() -> None:
        released.append(await locks.release_merge_lock("a"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(reconcile)
    assert released == [True]
    assert (await locks.acquire_merge_lock("b", timeout=patience(1))).session == "b"


def merge_in_process(
    project: str, name: str, merges: int, out: str, ready: ProcessEvent, go: ProcessEvent
) -> None:
    async def run() -> None:
        records: list[tuple[int, int, int, int, str]] = []

        async def merge(locks: LockManager, session: str) -> None:
            asked = time.monotonic_ns()  # CLOCK_MONOTONIC is one clock for all processes
            async with locks.merge_lock(session, timeout=patience(60)) as grant:
                entered = time.monotonic_ns()
                await anyio.sleep(0.02)
                records.append((entered, time.monotonic_ns(), grant.token, asked, name))

        async with FileStateStore.for_repo(project) as store:
            locks = LockManager(project, store=store)
            ready.set()
            await anyio.to_thread.run_sync(go.wait, 60)
            async with anyio.create_task_group() as tg:
                for n in range(merges):
                    tg.start_soon(merge, locks, f"{name}-{n}")
        Path(out).write_text(json.dumps(records))

    anyio.run(run)


async def test_merges_from_two_processes_never_overlap(project: Path, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    outs = [tmp_path / "p0.json", tmp_path / "p1.json"]
    readies = [context.Event(), context.Event()]
    go = context.Event()
    workers = [
        context.Process(
            target=merge_in_process, args=(str(project), f"p{n}", 6, str(out), readies[n], go)
        )
        for n, out in enumerate(outs)
    ]
    for worker in workers:
        worker.start()
    try:
        for ready in readies:
            assert await anyio.to_thread.run_sync(ready.wait, 60)
        go.set()  # both processes start merging at once
        for worker in workers:
            await anyio.to_thread.run_sync(worker.join, 120)
        assert [w.exitcode for w in workers] == [0, 0]
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
    merges = sorted(tuple(m) for out in outs for m in json.loads(out.read_text()))
    assert len(merges) == 12
    for left, right in itertools.pairwise(merges):
        assert left[1] <= right[0], "two merges overlapped"
        assert left[2] < right[2], "merge tokens must grow across processes"
    # The processes really contended: one asked before the other's merge ended and had to
    # wait for it.
    assert any(a[4] != b[4] and b[3] < a[1] and b[0] > a[0] for a in merges for b in merges), (
        "the two processes never competed for the merge lock"
    )


async def test_sessions_whose_locks_are_all_released_leave_nothing_remembered(
    pair: Pair,
) -> None:
    # A long run's ended sessions must not each leave an entry behind (issue 33).
    locks, _ = pair
    for n in range(20):
        session = f"s{n}"
        await locks.acquire_file_lock(session, f"src/f{n}.py")
        await locks.acquire_merge_lock(session)
        assert await locks.release_all_session_locks(session) == 2
    assert locks.registry._index == {}
    assert locks._taking == {} and locks._waiting == {} and locks._spelled == {}
    assert locks._held == {}
