"""Blame by reach (``orchestrator.worktrees.tamper.blame``), on real repositories and real git:
a session whose CLI runs in a sandbox (``confined``) is suspected only of what its sandbox
reaches, so a ref made in a task's namespace is that task's sessions' doing and never a
sibling's; without a sandbox a name proves nothing, and a sibling is rechecked, never failed for
good. The kernel's part (that a confined CLI really cannot write elsewhere) is
``test_sandbox_escapes.py``'s and ``test_faults_cli_stray_refs.py``'s."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import SessionWorktree
from orchestrator.worktrees.tamper.guard import TamperGuard
from tests.support.merge_repo import git
from tests.support.scheduler_helpers import new_repo


async def sessions(tmp_path: Path, *tasks: str) -> tuple[TamperGuard, Path, list[SessionWorktree]]:
    repo = new_repo(tmp_path)
    manager = WorktreeManager(repo, base_branch="main")
    made = [
        await manager.create_session_worktree(f"s{n}", "cli", task) for n, task in enumerate(tasks)
    ]
    return await manager.tamper_guard(), repo, made


def refs(repo: Path, prefix: str) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", prefix).split()


@pytest.mark.parametrize("maker_first", [True, False])
async def test_a_branch_made_in_its_own_namespace_is_the_makers_alone(
    tmp_path: Path, maker_first: bool
) -> None:
    guard, repo, (maker, sibling) = await sessions(tmp_path, "fault", "sibling")
    one = await guard.watch(maker.path, maker.branch, confined=True)
    two = await guard.watch(sibling.path, sibling.branch, confined=True)
    git(maker.path, "branch", "council/fault/99")  # its ref directory is writable: by design
    tip = git(repo, "rev-parse", "council/fault/99")

    if maker_first:
        found, clean = await guard.finish(one), await guard.finish(two)
    else:
        clean, found = await guard.finish(two), await guard.finish(one)

    assert clean is None  # the sibling is never suspected: its sandbox does not reach it
    assert found is not None and not found.retryable
    assert f"refs/heads/council/fault/99: created at {tip[:10]} (moved aside to" in found.message
    assert refs(repo, "refs/heads/council/fault/") == [f"refs/heads/{maker.branch}"]
    kept = refs(repo, "refs/council/tampered/")
    assert len(kept) == 1 and kept[0].endswith("/heads/council/fault/99")
    assert git(repo, "rev-parse", kept[0]) == tip  # nothing it pointed at is lost


async def test_a_confined_session_deleting_its_own_branch_is_the_only_one_blamed(
    tmp_path: Path,
) -> None:
    guard, repo, (maker, sibling) = await sessions(tmp_path, "fault", "sibling")
    one = await guard.watch(maker.path, maker.branch, confined=True)
    two = await guard.watch(sibling.path, sibling.branch, confined=True)
    tip = git(repo, "rev-parse", maker.branch)
    git(maker.path, "update-ref", "-d", f"refs/heads/{maker.branch}")

    assert await guard.finish(two) is None  # found, put back, owed to the maker
    found = await guard.finish(one)
    assert found is not None and not found.retryable
    assert f"refs/heads/{maker.branch}: deleted (it was at {tip[:10]})" in found.message
    assert git(repo, "rev-parse", maker.branch) == tip


async def test_sessions_of_one_task_share_their_namespace_and_no_other_task_is_suspected(
    tmp_path: Path,
) -> None:
    guard, repo, (first, second, other) = await sessions(tmp_path, "feature", "feature", "other")
    watches = [await guard.watch(s.path, s.branch, confined=True) for s in (first, second, other)]
    git(first.path, "branch", "council/feature/wip")

    assert await guard.finish(watches[2]) is None  # another task's session: not suspected
    found = [await guard.finish(watch) for watch in watches[:2]]
    for each in found:  # either could have: both run again, neither fails for good
        assert each is not None and each.retryable
        assert "council/feature/1, council/feature/2 ran then" in each.message
    assert refs(repo, "refs/heads/council/feature/") == [
        "refs/heads/council/feature/1",
        "refs/heads/council/feature/2",
    ]


async def test_without_a_sandbox_a_name_proves_nothing_and_the_sibling_is_only_rechecked(
    tmp_path: Path,
) -> None:
    guard, repo, (maker, sibling) = await sessions(tmp_path, "fault", "sibling")
    one = await guard.watch(maker.path, maker.branch)
    two = await guard.watch(sibling.path, sibling.branch, confined=True)
    git(maker.path, "branch", "council/sibling/99")  # in the sibling's name, by the maker

    for watch in (two, one):
        found = await guard.finish(watch)
        assert found is not None and found.retryable, "a sibling is never failed for good"
        assert "council/fault/1, council/sibling/1 ran then" in found.message
    assert refs(repo, "refs/heads/council/sibling/") == [f"refs/heads/{sibling.branch}"]


async def test_a_shared_change_beside_a_confined_sibling_is_the_unconfined_ones(
    tmp_path: Path,
) -> None:
    guard, repo, (maker, sibling) = await sessions(tmp_path, "fault", "sibling")
    config = repo / ".git" / "config"
    before = config.read_bytes()
    one = await guard.watch(maker.path, maker.branch)  # no sandbox: it reaches .git/config
    two = await guard.watch(sibling.path, sibling.branch, confined=True)
    config.write_bytes(before + b"[alias]\n\tst = status\n")

    assert await guard.finish(two) is None
    assert config.read_bytes() == before  # undone at the sibling's check, owed to the maker
    found = await guard.finish(one)
    assert found is not None and not found.retryable
    assert ".git/config: added alias.st=status" in found.message


async def test_a_change_no_sandbox_reaches_blames_nobody_and_is_undone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    guard, repo, (one, two) = await sessions(tmp_path, "fault", "sibling")
    config = repo / ".git" / "config"
    before = config.read_bytes()
    first = await guard.watch(one.path, one.branch, confined=True)
    second = await guard.watch(two.path, two.branch, confined=True)
    config.write_bytes(before + b"[alias]\n\tst = status\n")  # a person, another program

    with caplog.at_level(logging.WARNING):
        assert await guard.finish(first) is None
        assert await guard.finish(second) is None
    assert config.read_bytes() == before
    assert "made outside this run, nobody of it is blamed" in caplog.text
