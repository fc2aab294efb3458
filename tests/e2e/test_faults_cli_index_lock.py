"""An ``index.lock`` left in a CLI's worktree: the orchestrator's commit after the session
moves a stale one aside by itself (nobody is asked to delete files), and never touches one a
live git process holds (the commit fails naming that process; once it is gone, the next
commit goes through)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import anyio
import pytest

from orchestrator.errors import WorkspaceError
from orchestrator.git.gitfile import read_gitfile
from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import WorktreeSettings
from tests.support.cli_process_helpers import wait_gone
from tests.support.fault_helpers import FaultRun
from tests.support.scheduler_helpers import new_repo


async def test_a_stale_index_lock_left_by_a_cli_is_moved_aside_and_the_task_lands(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = FaultRun(tmp_path, "index_lock.py")
    report = await run.run_here()

    assert report["totals"]["done"] == 1, report["tasks"]
    assert run.on_main("work.txt")
    assert "moved a stale index.lock aside to index.lock.stale-" in caplog.text


def git_holding_the_index(worktree: Path) -> subprocess.Popen[bytes]:
    """``git commit -a`` waiting for its editor: it holds ``index.lock`` (closed, but in use)."""
    (worktree / "pending.txt").write_text("staged by a human's git\n")
    subprocess.run(["git", "-C", str(worktree), "add", "pending.txt"], check=True)
    env = {**os.environ, "GIT_EDITOR": "sleep 60; true"}
    return subprocess.Popen(
        ["git", "commit", "-a", "-q"],  # -a keeps index.lock until the commit is made
        cwd=worktree,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def test_a_lock_a_live_git_holds_is_never_moved(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    manager = WorktreeManager(repo, settings=WorktreeSettings(stale_lock_age=0.2))
    session = await manager.create_session_worktree("s1", "cli", "t1")
    admin = read_gitfile(session.path)
    assert admin is not None
    lock = admin / "index.lock"
    holder = git_holding_the_index(session.path)
    try:
        deadline = time.monotonic() + 20
        while not lock.exists():
            assert time.monotonic() < deadline, "git never took the index lock"
            await anyio.sleep(0.02)
        await anyio.sleep(0.5)  # older than stale_lock_age: only the holder protects it
        (session.path / "work.txt").write_text("the CLI's work\n")

        with pytest.raises(WorkspaceError, match=r"index\.lock is in use: pid \d+ \(git"):
            await manager.commit_in_worktree(session, "council: t1 build")
        assert lock.exists() and not list(admin.glob("index.lock.stale-*"))
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # git and its editor; the lock stays behind
        holder.wait()
    assert wait_gone([holder.pid]) == []

    committed = await manager.commit_in_worktree(session, "council: t1 build")
    assert committed.committed and "work.txt" in committed.files
    assert not lock.exists() and len(list(admin.glob("index.lock.stale-*"))) == 1
