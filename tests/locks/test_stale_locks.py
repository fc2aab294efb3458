"""Locks left by a process killed with SIGKILL never block the next one, and never make anyone
delete a file; a lock whose holder is alive is never taken over.

One real process takes every kind of lock there is (a state record's lock in the middle of a
write, the fencing counter's, the checkpoints', the worktree metadata lock, a repository file
lock with its ownership-registry entry, the merge lock with its record) and is killed. While
it lives, each is refused to others with a ``LockTimeout`` naming the lock or its owner; once
it is dead, each is granted at once. Then ``council resume`` against a live ``council run``
is refused (even while the run holds no claim) and goes ahead the moment the run is killed.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path

import anyio
import pytest

from orchestrator import filelock
from orchestrator.errors import LockTimeout, StaleClaim
from orchestrator.locks.manager import LockManager
from orchestrator.state import FileStateStore
from orchestrator.state.file.fsops import FileOps
from orchestrator.worktrees.layout import MetaLock
from tests.support.council_process import council, start, task, task_record, wait_for, write_config
from tests.support.scheduler_helpers import merged_tasks, new_repo
from tests.support.timing import patience


class StuckBeforeReplace(FileOps):
    """Writes task t1's new version to its temp file, then hangs where it would replace the
    record (every other write goes through)."""

    def __init__(self, ready: ProcessEvent) -> None:
        self.ready = ready

    def replace(self, src: Path, dst: Path) -> None:
        if dst.parent.parts[-2:] == ("tasks", "t1"):
            self.ready.set()
            time.sleep(600)
        super().replace(src, dst)


def meta_lock(project: Path) -> Path:
    return project / ".council" / "locks" / "worktree-meta.lock"


def hold_every_lock(project: str, ready: ProcessEvent) -> None:
    async def run() -> None:
        root = Path(project)
        async with FileStateStore.for_repo(root, file_ops=StuckBeforeReplace(ready)) as store:
            locks = LockManager(root, store=store)
            await locks.acquire_file_lock("victim", "src/a.py")
            await locks.acquire_merge_lock("victim")
            held = [
                filelock.try_acquire(path)
                for path in (
                    store.checkpoints.lock_path,
                    meta_lock(root),
                )
            ]
            # A record's lock is its directory.
            counter = store.counters.lock_path("fencing")
            held.append(filelock.try_acquire(counter, root=store.core.anchor, directory=True))
            assert all(held)
            await store.update_task_state("t1", {"priority": 2})  # hangs holding t1's lock

    anyio.run(run)


async def blocked(action: Callable[[], Awaitable[object]], seconds: float = 0.3) -> bool:
    """Did ``action`` still wait after ``seconds`` (or give up with ``LockTimeout``)?"""
    try:
        with anyio.move_on_after(seconds) as scope:
            await action()
    except LockTimeout as exc:
        message = str(exc)
        assert "delete" not in message and "remove" not in message, message
        return True
    return scope.cancelled_caught


async def test_a_killed_holder_of_every_lock_blocks_nobody(tmp_path: Path) -> None:
    project = tmp_path / "repo"
    (project / "src").mkdir(parents=True)
    async with FileStateStore.for_repo(project) as store:
        await store.create_session({}, ["t1", "t2"], session_id="s1")
        await store.update_task_state("t1", {"priority": 1})
        before = await store.get_task_state("t1")

    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=hold_every_lock, args=(str(project), ready))
    holder.start()
    try:
        assert await anyio.to_thread.run_sync(ready.wait, 60)
        async with FileStateStore.for_repo(project, lock_timeout=0.3) as store:
            locks = LockManager(project, store=store)
            # Alive: every lock stays its holder's.
            assert await blocked(lambda: store.update_task_state("t1", {"priority": 3}))
            assert await blocked(lambda: store.acquire_claim("t2", "me", 60))
            assert await blocked(lambda: store.create_checkpoint("s1", "now"))
            assert await blocked(lambda: locks.acquire_file_lock("heir", "src/a.py", 0.3))
            assert await blocked(lambda: locks.acquire_merge_lock("heir", timeout=patience(0.3)))
            assert await blocked(lambda: hold_meta(project, 0.3))
            owner = await locks.owner_of("src/a.py")
            assert owner is not None and owner.session == "victim"
            with pytest.raises(LockTimeout) as merge_refused:
                await locks.acquire_merge_lock("heir", timeout=patience(0.1))
            assert merge_refused.value.owner == "victim"
            victim_merge = await store.get_record("merge-lock", "merge")
            assert victim_merge is not None

            assert holder.pid is not None
            os.kill(holder.pid, signal.SIGKILL)
            await anyio.to_thread.run_sync(holder.join, 30)
            assert holder.exitcode == -signal.SIGKILL

        # Dead: every lock is granted at once, without anyone deleting a file.
        async with FileStateStore.for_repo(project, lock_timeout=10) as store:
            locks = LockManager(project, store=store)
            assert await store.get_task_state("t1") == before  # its write never landed
            assert before is not None
            updated = await store.update_task_state("t1", {"priority": 3})
            assert updated.version == before.version + 1
            assert await store.acquire_claim("t2", "me", 60) is not None
            assert await store.create_checkpoint("s1", "now") is not None
            grant = await locks.acquire_file_lock("heir", "src/a.py", 10)
            assert grant.token > owner.token
            merge = await locks.acquire_merge_lock("heir", timeout=patience(10))
            assert merge.token > victim_merge.data["token"]
            await hold_meta(project, 10)
            # What the dead writer left is ignored by readers and swept by upkeep.
            assert list(store.tasks.dir_for("t1").glob("*.tmp"))
            assert await store.clean_stale_locks() >= 1
            assert not list(store.root.rglob("*.tmp"))
            assert await locks.release_all_session_locks("victim") == 0
            await locks.aclose()
    finally:
        if holder.is_alive():
            holder.kill()
            holder.join(30)


async def hold_meta(project: Path, timeout: float) -> None:
    async with MetaLock(meta_lock(project), timeout, project).hold():
        pass


async def test_the_lock_of_a_live_process_is_refused_with_its_owner(tmp_path: Path) -> None:
    # The same lock manager cannot take a path a live session of another process holds, and
    # it says who holds it; it never decides the holder is gone while it lives.
    project = tmp_path / "repo"
    (project / "src").mkdir(parents=True)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=hold_every_lock, args=(str(project), ready))
    holder.start()
    try:
        assert await anyio.to_thread.run_sync(ready.wait, 60)
        async with FileStateStore.for_repo(project, lock_timeout=0.2) as store:
            locks = LockManager(project, store=store)
            for _ in range(3):
                with pytest.raises(LockTimeout) as refused:
                    await locks.acquire_file_lock("heir", "src/a.py", timeout=patience(0.2))
                assert refused.value.owner == "victim"
                assert (await locks.release_all_session_locks("victim")) == 0
            owner = await locks.owner_of("src/a.py")
            assert owner is not None and owner.session == "victim"
            # Not even with the victim's name and token does another process release it.
            with pytest.raises(StaleClaim):
                await locks.release_file_lock("victim", "src/a.py", token=owner.token)
            assert await locks.owner_of("src/a.py") == owner
    finally:
        holder.kill()
        holder.join(30)


# -- council resume against a live run, then a killed one ---------------------------------------


def test_resume_is_refused_while_the_run_lives_and_goes_ahead_once_it_is_killed(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    # Parked on a rate limit, the run holds no claim, yet it will dispatch again by itself.
    # The park only has to outlast seeing it (timing.patience): the run is paused (SIGSTOP)
    # through the refused resume, alive but unable to touch its record, however long that takes.
    reset = round(patience(3))
    config = write_config(
        tmp_path, repo, task("limited", f"RATE_LIMIT reset={reset}\nWRITE limited.txt done")
    )
    run = start("run", config)
    try:
        wait_for(
            lambda: (task_record(repo, "limited") or {}).get("status") == "parked",
            "the task parked on its rate limit",
        )
        assert (task_record(repo, "limited") or {}).get("claim", {}).get("status") != "active"
        run.send_signal(signal.SIGSTOP)
        refused = council(["resume", str(config), "--json"], tmp_path)
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: another orchestrator"), lines
        assert f"pid {run.pid} on " in lines[0]
        assert (task_record(repo, "limited") or {}).get("status") == "parked"  # untouched

        run.send_signal(signal.SIGKILL)
        run.wait(timeout=patience(30))
    finally:
        if run.poll() is None:
            run.kill()
        run.communicate(timeout=patience(30))

    resumed = council(["resume", str(config), "--json"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads(resumed.stdout)["status"] == "completed"
    assert merged_tasks(repo) == ["limited"]
    shown = subprocess.run(
        ["git", "-C", str(repo), "show", "main:limited.txt"], capture_output=True, text=True
    )
    assert shown.stdout == "done\n"
