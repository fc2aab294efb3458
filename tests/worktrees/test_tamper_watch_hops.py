"""A confined session's watch is one worker-thread call (issue 51): the look for cut-off
checkouts, this worktree's admin directory and the snapshot together, its ledger window open
before it (a check ending meanwhile counts it as running beside), yet not a suspect of anything
found before its watch has looked, nor a source of another check's lock or ready mark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.tamper.blame import OUTSIDE, Finding, Ledger, Window
from tests.support.scheduler_helpers import new_repo


async def test_a_confined_watch_is_one_hop_and_knows_its_admin_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repo(tmp_path)
    manager = WorktreeManager(repo, base_branch="main")
    one = await manager.create_session_worktree("one", "cli", "t1")
    guard = await manager.tamper_guard()
    hopped: list[object] = []
    real = anyio.to_thread.run_sync

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        hopped.append(fn)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    watch = await guard.watch(one.path, one.branch, confined=True)
    monkeypatch.setattr(anyio.to_thread, "run_sync", real)
    assert len(hopped) == 1
    window = watch.window
    assert window.looked and window.admin is not None and window.admin.is_dir()
    assert window.lock is not None and one.session_id in window.lock  # as git has it
    assert await guard.finish(watch) is None  # nothing changed: nothing found


def test_a_window_that_has_not_looked_is_no_suspect_and_no_owner() -> None:
    ledger = Ledger()
    early = Window(1, Path("/w/one"), None, "refs/heads/council/t1/1", started=0.0)
    ledger.open(early)
    finding = Finding("a change before any session's CLI ran")
    # Only a window that has not looked is open: its CLI has not started, nobody is blamed.
    assert ledger.notice([finding]) == [f"{finding.what} ({OUTSIDE})"]
    early.admin, early.looked = Path("/r/.git/worktrees/one"), True
    assert ledger.notice([finding]) == []  # an unconfined session that had looked: a suspect


async def test_a_window_that_has_not_looked_gives_no_lock_to_put_back(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    manager = WorktreeManager(repo, base_branch="main")
    one = await manager.create_session_worktree("one", "cli", "t1")
    guard = await manager.tamper_guard()
    own = f"refs/heads/{one.branch}"
    kept = guard._cutoff.owners()[one.path]
    assert kept[1] is not None  # its lock reason, from the session the run keeps
    guard._ledger.open(Window(99, one.path, None, own, started=0.0))  # watch under way
    assert guard._cutoff.owners()[one.path] == kept  # not the unread (None) lock and mark
