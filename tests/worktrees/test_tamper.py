"""The tamper check itself (``orchestrator.worktrees.tamper.guard``), on real repositories: a change
nobody can be traced to rechecks (retries) every session side by side and fails none for good,
one made while a session ran alone is that session's, the main checkout is never looked at in
the middle of the merge queue's fast-forward, git's own lock on a config file is respected by the
guard while the run's seal still restores the config before git reads it, and a run whose
sessions overlap each other's merges flags nobody."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio

from orchestrator.council import Council
from orchestrator.merge.checkout import checkout_lock
from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import SessionWorktree
from orchestrator.worktrees.tamper.files import CAP
from orchestrator.worktrees.tamper.guard import TamperGuard
from tests.support.scheduler_helpers import merged_tasks, new_repo, run_config


async def two_sessions(
    tmp_path: Path,
) -> tuple[TamperGuard, Path, SessionWorktree, SessionWorktree]:
    repo = new_repo(tmp_path)
    manager = WorktreeManager(repo)
    one = await manager.create_session_worktree("one", "cli", "t1")
    two = await manager.create_session_worktree("two", "cli", "t2")
    return await manager.tamper_guard(), repo, one, two


async def test_a_change_nobody_can_be_traced_to_rechecks_every_session_beside_it(
    tmp_path: Path,
) -> None:
    guard, repo, one, two = await two_sessions(tmp_path)
    config = repo / ".git" / "config"
    before = config.read_bytes()
    first, second = await guard.watch(one.path), await guard.watch(two.path)
    config.write_bytes(before + b"[core]\n\thooksPath = /tmp/elsewhere\n")

    found = await guard.finish(second)  # one of the two did it: which cannot be told
    assert found is not None and found.retryable
    assert found.changes[0].startswith(".git/config: added core.hookspath=/tmp/elsewhere")
    assert "not traceable to one session: council/t1/1, council/t2/1 ran then" in found.message
    assert config.read_bytes() == before  # undone at once, before any other git command
    later = await guard.watch(one.path)
    found = await guard.finish(first)  # the compare alone no longer shows it
    assert found is not None and found.retryable
    (line,) = found.changes
    assert line.startswith(".git/config: added core.hookspath=/tmp/elsewhere (restored")
    assert line.endswith("(undone by the check of a session running beside this one)")
    assert await guard.finish(later) is None  # it started after the undo


async def test_a_change_made_while_one_session_ran_alone_is_that_sessions(
    tmp_path: Path,
) -> None:
    guard, repo, one, _ = await two_sessions(tmp_path)
    config = repo / ".git" / "config"
    watch = await guard.watch(one.path)
    config.write_bytes(config.read_bytes() + b"[alias]\n\tst = status\n")
    found = await guard.finish(watch)
    assert found is not None and not found.retryable
    assert found.message.startswith("changed outside its worktree: .git/config: added alias.st")


async def test_the_main_checkout_is_never_looked_at_mid_fast_forward(tmp_path: Path) -> None:
    guard, repo, one, _ = await two_sessions(tmp_path)
    watch = await guard.watch(one.path)
    half_moved = repo / "landing.txt"
    lock = checkout_lock(repo)
    looked = anyio.Event()

    async def finish() -> Any:
        found = await guard.finish(watch)
        looked.set()
        return found

    result: list[Any] = []
    await anyio.to_thread.run_sync(lock.acquire)  # as fast_forward holds it, in a thread
    half_moved.write_text("a file a fast-forward has written, HEAD not moved yet\n")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_append, result, finish())
        with anyio.move_on_after(0.5):
            await looked.wait()
        waited = not looked.is_set()
        half_moved.unlink()
        lock.release()
    assert waited, "it looked while the fast-forward held the checkout"
    assert result == [None]


async def _append(into: list[Any], awaitable: Any) -> None:
    into.append(await awaitable)


async def test_a_config_git_is_writing_keeps_its_lock_and_the_seal_still_restores_it(
    tmp_path: Path,
) -> None:
    guard, repo, one, _ = await two_sessions(tmp_path)
    config = repo / ".git" / "config"
    sealed = config.read_bytes()
    watch = await guard.watch(one.path)
    config.write_bytes(sealed + b"[alias]\n\tst = status\n")
    (repo / ".git" / "config.lock").write_bytes(b"git's own pending write\n")

    found = await guard.finish(watch)
    assert found is not None
    assert found.changes[0].startswith(".git/config: added alias.st=status (restored;")
    # git's own pending write is left alone, but no git command of the orchestrator reads the
    # config as it was left: the run's seal puts it back whatever lock lies beside it (a lock
    # left lying around must not keep a planted filter in force).
    assert (repo / ".git" / "config.lock").read_bytes() == b"git's own pending write\n"
    assert config.read_bytes() == sealed


async def test_a_huge_planted_hook_is_moved_aside_unread(tmp_path: Path) -> None:
    guard, repo, one, _ = await two_sessions(tmp_path)
    watch = await guard.watch(one.path)
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_bytes(b"#!/bin/sh\n" + b"#" * (2 * CAP))

    found = await guard.finish(watch)
    assert found is not None
    assert found.changes[0].startswith(".git/hooks/post-checkout: created (moved aside to ")
    assert not hook.exists()
    (aside,) = hook.parent.glob("post-checkout.council-tampered-*")
    assert aside.stat().st_size == 10 + 2 * CAP


def test_checkout_lock_is_one_lock_per_checkout(tmp_path: Path) -> None:
    assert checkout_lock(tmp_path) is checkout_lock(tmp_path / "." / "")
    assert checkout_lock(tmp_path) is not checkout_lock(tmp_path / "other")
    assert isinstance(checkout_lock(tmp_path), type(threading.Lock()))


async def test_sessions_overlapping_merges_and_fast_forwards_flag_nobody(tmp_path: Path) -> None:
    # Quick tasks land (the merge queue fast-forwards the clean main checkout) while slow
    # ones are still in their sessions: the main checkout's files change under them.
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": f"quick{n}", "prompt": f"WRITE quick{n}.txt {n}"} for n in range(3)
    ] + [{"id": f"slow{n}", "prompt": f"SLEEP 1\nWRITE slow{n}.txt {n}"} for n in range(2)]
    config = run_config(
        repo, tasks, adapters={"alpha": {"type": "scripted", "options": {"delay": 0}}}
    )
    async with Council(config) as council:
        report = await council.run()
    assert report.exit_code == 0, [t.error for t in report.tasks]
    assert sorted(merged_tasks(repo)) == sorted(t["id"] for t in tasks)


async def test_a_worktree_the_orchestrator_is_still_making_is_never_taken_for_tampering(
    tmp_path: Path,
) -> None:
    # A session's worktree directory appears before git writes its .git file; on a loaded
    # machine that can take longer than any wait. The guard knows the orchestrator's own.
    made, repo, one, _ = await two_sessions(tmp_path)
    ours = {"one", "two", "three"}
    guard = TamperGuard(
        made.git, made.git_dir, made.common_dir, made.worktrees_dir, ours=lambda: ours
    )
    watch = await guard.watch(one.path)
    worktrees = repo / ".council" / "worktrees"
    (worktrees / "three").mkdir()  # what `git worktree add` has made so far
    (worktrees / "stray").mkdir()  # what a CLI writing ../stray leaves
    found = await guard.finish(watch)
    assert found is not None
    assert found.changes == (".council/worktrees/stray: created",)
