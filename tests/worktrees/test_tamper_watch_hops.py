"""A confined session's watch is one worker-thread call (issue 51): the look for cut-off
checkouts, this worktree's admin directory and the snapshot together, its ledger window open
before it (a check ending meanwhile counts it as running beside), yet not a suspect of anything
found before its watch has looked, nor a source of another check's lock or ready mark."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.tamper.blame import OUTSIDE, Finding, Ledger, Window
from tests.support.hops import count_hops
from tests.support.merge_repo import git
from tests.support.scheduler_helpers import new_repo


async def test_a_confined_watch_is_one_hop_and_knows_its_admin_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repo(tmp_path)
    manager = WorktreeManager(repo, base_branch="main")
    one = await manager.create_session_worktree("one", "cli", "t1")
    guard = await manager.tamper_guard()
    hopped = count_hops(monkeypatch)
    watch = await guard.watch(one.path, one.branch, confined=True)
    assert len(hopped) == 1
    window = watch.window
    assert window.looked and window.admin is not None and window.admin.is_dir()
    assert window.lock is not None and one.session_id in window.lock  # as git has it
    hopped.clear()
    assert await guard.finish(watch) is None  # nothing changed: nothing found
    assert len(hopped) == 1  # its setup, cut-off checkouts, refs and entries: one call


async def test_a_confined_check_in_one_call_still_finds_a_ref_its_cli_made(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    manager = WorktreeManager(repo, base_branch="main")
    one = await manager.create_session_worktree("one", "cli", "t1")
    guard = await manager.tamper_guard()
    watch = await guard.watch(one.path, one.branch, confined=True)
    git(repo, "branch", "council/t1/99")  # beside its own, in its task's namespace
    found = await guard.finish(watch)
    assert found is not None and not found.retryable  # its own task's: it fails for good
    assert any("council/t1/99" in change for change in found.changes)
    assert "council/t1/99" not in git(repo, "branch", "--list", "council/t1/99")  # moved


def test_the_ledgers_windows_are_read_from_a_thread_while_they_change() -> None:
    import threading

    ledger = Ledger()
    mine = Window(0, Path("/w/0"), None, "refs/heads/council/t0/1", started=0.0)
    ledger.open(mine)
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                ledger.overlapping(mine)
        except BaseException as exc:  # a change seen mid-pass would raise here
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for serial in range(1, 3000):
            window = Window(serial, Path(f"/w/{serial}"), None, None, started=float(serial))
            ledger.open(window)
            ledger.close(window)
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert mine in ledger.overlapping(mine)


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
