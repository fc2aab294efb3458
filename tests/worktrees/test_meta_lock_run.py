"""The metadata lock's one-call path (issue 51): a worktree's making forks its branch, writes
its record, tries the lock, registers the worktree, checks it out, marks it ready and snapshots
its pointers for the seal in one worker-thread call (its record's, ``put_made_record_then``)
while no other holder has the lock; a holder is waited for as before, in line in this
process, the worktree then checked out in a call of its own after its record's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from orchestrator import filelock
from orchestrator.git import seal
from orchestrator.state import FileStateStore
from orchestrator.worktrees import making
from orchestrator.worktrees.layout import MetaLock
from orchestrator.worktrees.manager import WorktreeManager
from tests.support.hops import count_hops
from tests.support.worktree_helpers import git, make_repo


async def test_a_worktree_is_made_in_one_hop_and_is_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo")
    async with FileStateStore.for_repo(repo) as store:
        manager = WorktreeManager(repo, store=store)
        await manager.create_session_worktree("s0", "claude", "warm")  # the layout, once
        recorded: list[bool] = []
        real_ready = making._mark_ready

        def ready(ws: Any, session: Any) -> None:
            # behind its record: the record is on disk when the checkout is marked ready
            recorded.append(any(store.root.rglob("records/worktrees/s1*")))
            real_ready(ws, session)

        monkeypatch.setattr(making, "_mark_ready", ready)
        hopped = count_hops(monkeypatch)
        session = await manager.create_session_worktree("s1", "claude", "fix-login")
        # the fork, its record, then the lock + registration with its checkout (``worktree
        # add``) + the index taken + ready mark + the seal's snapshot of its pointers
        assert len(hopped) == 1, hopped
        assert recorded == [True]
        assert seal.expect_worktree not in hopped
        assert not any(
            getattr(fn, "__qualname__", "").endswith("create.<locals>.fork") for fn in hopped
        )
        assert making._mark_ready not in hopped
        assert filelock._try not in hopped  # the lock's try rode with the registration
        assert git(session.path, "status", "--porcelain") == ""
        admin = Path(git(session.path, "rev-parse", "--absolute-git-dir"))
        assert (admin / "index").exists() and (admin / making._READY).is_file()
        assert (admin / "locked").is_file()  # registered locked, as before
        # removed through the same one-call path, and the metadata lock is free after
        gone = await manager.remove_session_worktree(session, force=True)
        assert gone.worktree_removed


async def test_a_held_lock_is_waited_for_and_the_steps_run_under_it(tmp_path: Path) -> None:
    path = tmp_path / "meta.lock"
    meta = MetaLock(path, timeout=10.0, root=tmp_path)
    held = filelock.try_acquire(path, root=tmp_path)  # another holder (another process, say)
    assert held is not None
    seen: list[str] = []

    def steps() -> int:
        # under the lock: nobody else can take it now
        seen.append("steps" if filelock.try_acquire(path, root=tmp_path) is None else "free")
        return 7

    async with anyio.create_task_group() as group:

        async def release_soon() -> None:
            await anyio.sleep(0.05)
            seen.append("released")
            held.release()

        group.start_soon(release_soon)
        assert await meta.run(steps) == 7
    assert seen == ["released", "steps"]
    again = filelock.try_acquire(path, root=tmp_path)
    assert again is not None  # given back
    again.release()


async def test_steps_that_fail_release_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "meta.lock"
    meta = MetaLock(path, timeout=10.0, root=tmp_path)

    def steps() -> None:
        raise RuntimeError("git refused")

    with pytest.raises(RuntimeError, match="git refused"):
        await meta.run(steps)
    again = filelock.try_acquire(path, root=tmp_path)
    assert again is not None  # given back
    again.release()


async def test_a_holder_of_this_process_is_waited_for_in_line(tmp_path: Path) -> None:
    path = tmp_path / "meta.lock"
    meta = MetaLock(path, timeout=10.0, root=tmp_path)
    order: list[str] = []
    hops: list[object] = []  # the steps' call, counted once the holder has it
    async with anyio.create_task_group() as group:

        async def holder() -> None:
            async with meta.hold():
                order.append("hold")
                await anyio.sleep(0.05)
                order.append("let go")

        group.start_soon(holder)
        await anyio.sleep(0.01)
        with pytest.MonkeyPatch.context() as patch:
            hops = count_hops(patch)
            await meta.run(lambda: order.append("steps"))
    assert order == ["hold", "let go", "steps"]
    assert len(hops) == 1  # waited in line without a worker-thread try, then one call


async def test_a_lock_held_past_its_timeout_is_a_clear_error(tmp_path: Path) -> None:
    from orchestrator.errors import LockTimeout

    path = tmp_path / "meta.lock"
    meta = MetaLock(path, timeout=0.05, root=tmp_path)
    held = filelock.try_acquire(path, root=tmp_path)
    assert held is not None
    ran: list[str] = []
    try:
        with pytest.raises(LockTimeout, match=r"meta\.lock"):
            await meta.run(lambda: ran.append("steps"))
    finally:
        held.release()
    assert ran == []


async def test_a_busy_lock_leaves_the_checkout_to_a_call_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record's call only tries the lock: held by another (process), the worktree is
    checked out after, waiting its turn as before, and is whole."""
    repo = make_repo(tmp_path / "repo")
    async with FileStateStore.for_repo(repo) as store:
        manager = WorktreeManager(repo, store=store)
        await manager.create_session_worktree("s0", "claude", "warm")  # the layout, once
        layout = await manager.layout()
        held = filelock.try_acquire(layout.meta_lock_path, root=layout.root)
        assert held is not None

        async def release_soon() -> None:
            await anyio.sleep(0.2)
            held.release()

        hopped: list[object] = []
        async with anyio.create_task_group() as group:
            group.start_soon(release_soon)
            hopped = count_hops(monkeypatch)
            session = await manager.create_session_worktree("s1", "claude", "fix-login")
        assert len(hopped) >= 2  # the record's call, then the checkout's own
        assert git(session.path, "status", "--porcelain") == ""
        admin = Path(git(session.path, "rev-parse", "--absolute-git-dir"))
        assert (admin / making._READY).is_file()


async def test_a_checkout_that_fails_in_its_records_call_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo")
    async with FileStateStore.for_repo(repo) as store:
        manager = WorktreeManager(repo, store=store)
        await manager.create_session_worktree("s0", "claude", "warm")  # the layout, once

        def ready(ws: Any, session: Any) -> None:
            raise OSError("the disk is full")

        monkeypatch.setattr(making, "_mark_ready", ready)
        with pytest.raises(OSError, match="the disk is full"):
            await manager.create_session_worktree("s1", "claude", "fix-login")
        assert await store.get_record("worktrees", "s1") is None  # its record forgotten
        listed = git(repo, "worktree", "list", "--porcelain")
        assert "s1" not in listed  # and the half-made worktree removed
