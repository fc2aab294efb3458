"""The merge lock taken in the first blocking work run under it (``LockManager.merge_hold``,
``locks.merge_lock.MergeHold``): the lock's try, its token, the record naming the holder and
the work in one worker-thread call; the lock let go (or the turn, when never taken) at the
end."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from orchestrator import filelock
from orchestrator.errors import LockError
from orchestrator.locks.manager import LockManager
from orchestrator.state import FileStateStore
from tests.support.hops import count_hops
from tests.support.timing import patience


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return root


def merge_lock_file(project: Path) -> Path:
    return project / ".council" / "locks" / "merge.lock"


async def test_a_free_lock_is_taken_in_its_first_works_call_with_the_record_written_first(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One worker-thread call takes the lock, writes its record and runs the work, which
    finds the OS lock held; a second work is a call of its own; the end deletes the record:
    three calls for a hold that ran two works, where ``merge_lock`` plus two works is four."""
    async with FileStateStore.for_repo(project) as store:
        locks = LockManager(project, store=store)
        first = await locks.acquire_merge_lock("a")  # the lock file and counter made
        await locks.release_merge_lock("a")
        hopped = count_hops(monkeypatch)
        seen: list[bool] = []

        def work() -> str:
            probe = filelock.try_acquire(merge_lock_file(project))
            seen.append(probe is None)  # taken by the hold before the work runs
            if probe is not None:
                probe.release()
            return "done"

        async with locks.merge_hold("b") as hold:
            assert locks.merge_holder is None and hopped == []  # nothing taken yet
            assert await hold.run_taking(work) == "done"
            assert len(hopped) == 1 and seen == [True]
            grant = locks.merge_holder
            assert grant is not None and grant.session == "b" and grant.token > first.token
            assert await hold.run_taking(lambda: 7) == 7
            assert len(hopped) == 2
            record = await store.get_record("merge-lock", "merge")  # (a call of the test's)
            assert record is not None and record.data["token"] == grant.token
            before_end = len(hopped)
        assert len(hopped) == before_end + 1  # the record's delete
        assert locks.merge_holder is None
        assert await store.get_record("merge-lock", "merge") is None
        await locks.aclose()


async def test_a_hold_never_taken_gives_its_turn_back(project: Path) -> None:
    async with FileStateStore.for_repo(project) as store:
        locks = LockManager(project, store=store)
        async with locks.merge_hold("a"):
            pass
        assert await store.get_record("merge-lock", "merge") is None
        with anyio.fail_after(patience(10)):
            grant = await locks.acquire_merge_lock("b")  # the turn is free at once
        assert grant.session == "b"
        await locks.release_merge_lock("b")
        await locks.aclose()


async def test_a_failing_first_work_leaves_the_lock_held_until_the_hold_ends(
    project: Path,
) -> None:
    async with FileStateStore.for_repo(project) as store:
        locks = LockManager(project, store=store)

        def fails() -> None:
            raise OSError("git went away")

        async with locks.merge_hold("a") as hold:
            with pytest.raises(OSError, match="git went away"):
                await hold.run_taking(fails)
            holder = locks.merge_holder
            assert holder is not None and holder.session == "a"
            assert filelock.try_acquire(merge_lock_file(project)) is None
            record = await store.get_record("merge-lock", "merge")
            assert record is not None and record.data["session"] == "a"
        assert locks.merge_holder is None
        assert await store.get_record("merge-lock", "merge") is None
        probe = filelock.try_acquire(merge_lock_file(project))
        assert probe is not None
        probe.release()
        await locks.aclose()


async def test_a_lock_another_process_holds_is_waited_for_before_the_work_runs(
    project: Path,
) -> None:
    """Another manager on its own store (another process's): the hold's first work waits
    for its release, then runs with the lock taken and the record naming the hold's session."""
    async with FileStateStore.for_repo(project) as one, FileStateStore.for_repo(project) as two:
        mine, theirs = LockManager(project, store=one), LockManager(project, store=two)
        await theirs.acquire_merge_lock("other")
        ran: list[str] = []

        async def let_go_soon() -> None:
            await anyio.sleep(0.3)
            ran.append("released")
            await theirs.release_merge_lock("other")

        async with anyio.create_task_group() as tg, mine.merge_hold("a") as hold:
            tg.start_soon(let_go_soon)
            with anyio.fail_after(patience(20)):
                await hold.run_taking(lambda: ran.append("work"))
            assert ran == ["released", "work"]
            record = await one.get_record("merge-lock", "merge")
            assert record is not None and record.data["session"] == "a"
        assert mine.merge_holder is None
        await mine.aclose()
        await theirs.aclose()


async def test_a_last_work_lets_go_of_the_lock_in_its_own_call_and_the_turn_at_the_end(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``take_in`` with ``last`` saying the work's answer is the last: the lock taken, its
    record written, the work run (the OS lock held, the record naming the session), the
    record deleted: one worker-thread call; the OS lock is free after it (another process
    takes it), this process's turn only at the end, which takes no call."""
    async with FileStateStore.for_repo(project) as one, FileStateStore.for_repo(project) as two:
        mine, theirs = LockManager(project, store=one), LockManager(project, store=two)
        first = await mine.acquire_merge_lock("a")
        await mine.release_merge_lock("a")
        hopped = count_hops(monkeypatch)
        seen: list[tuple[bool, object]] = []

        def work() -> str:
            probe = filelock.try_acquire(merge_lock_file(project))
            if probe is not None:
                probe.release()
            named = (project / ".council" / "state" / "records" / "merge-lock" / "merge").exists()
            seen.append((probe is None, named))
            return "landed"

        async with mine.merge_hold("b") as hold:
            assert await hold.take_in(work, lambda answer: answer == "landed") == (True, "landed")
            assert len(hopped) == 1 and seen == [(True, True)]
            assert mine.merge_holder is None
            with pytest.raises(LockError, match="turn is over"):
                await hold.take_in(work)  # nothing more runs under a lock let go
            grant = await theirs.acquire_merge_lock("c", timeout=patience(10))
            assert grant.token > first.token  # the OS lock was free: taken elsewhere
            await theirs.release_merge_lock("c")
            taken: list[str] = []

            async def mine_again() -> None:
                await mine.acquire_merge_lock("d")
                taken.append("d")

            async with anyio.create_task_group() as tg:
                tg.start_soon(mine_again)
                await anyio.sleep(0.1)
                assert taken == []  # this process's next merge waits for the turn
                hopped.clear()
                await hold.end()
                assert hopped == []  # the turn given back: no call
            assert taken == ["d"]
            await mine.release_merge_lock("d")
        assert await one.get_record("merge-lock", "merge") is None
        await mine.aclose()
        await theirs.aclose()


async def test_a_work_not_the_last_or_failing_keeps_the_lock_until_the_end(
    project: Path,
) -> None:
    async with FileStateStore.for_repo(project) as store:
        locks = LockManager(project, store=store)

        def fails() -> str:
            raise OSError("git went away")

        for work, answer in ((lambda: "retry", True), (fails, None)):
            async with locks.merge_hold("a") as hold:
                if answer is None:
                    with pytest.raises(OSError, match="git went away"):
                        await hold.take_in(work, lambda _: True)
                else:
                    assert await hold.take_in(work, lambda got: got != "retry") == (
                        True,
                        "retry",
                    )
                holder = locks.merge_holder
                assert holder is not None and holder.session == "a"
                assert filelock.try_acquire(merge_lock_file(project)) is None
                record = await store.get_record("merge-lock", "merge")
                assert record is not None and record.data["session"] == "a"
            assert locks.merge_holder is None
            assert await store.get_record("merge-lock", "merge") is None
        await locks.aclose()
