"""Worktrees of a run whose state was deleted are adopted, by the next ``council run`` before
it dispatches anything and by ``council worktrees prune``: the uncommitted work ends in a
commit on the worktree's branch (with the orchestrator's trailers), the worktree is
unregistered and removed, the branch kept, and a line says so; a prune while a live run holds
the repository's run lock adopts nothing. Real git, the real ``council`` process (killed with
SIGKILL), the scripted CLI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from tests.support.cli_process_helpers import (
    council,
    reap,
    scripted_clis,
    sleeping,
    spawn,
    wait_for,
)
from tests.support.council_process import task, write_config
from tests.support.scheduler_helpers import new_repo
from tests.support.timing import patience


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def _registered(repo: Path) -> list[str]:
    listed = _git(repo, "worktree", "list", "--porcelain")
    return [
        line.removeprefix("worktree ")
        for line in listed.splitlines()
        if line.startswith("worktree ")
    ]


def _orphaned(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A run killed while its CLI had written one.txt, uncommitted, then its state deleted:
    the repository, the config and the worktree it left."""
    repo = new_repo(tmp_path)
    config = write_config(tmp_path, repo, task("one", "WRITE one.txt 1\nSLEEP 60"))
    process = spawn("run", config, cwd=tmp_path)
    try:
        wait_for(lambda: any(map(sleeping, scripted_clis(tmp_path))), "the build's CLI", 30)
        (worktree,) = (repo / ".council" / "worktrees").iterdir()
        assert (worktree / "one.txt").read_text().strip() == "1"
        while_live = council("worktrees", "prune", config, cwd=tmp_path)
        assert while_live.returncode == 0, while_live.stderr
        assert "nothing was adopted and every worktree was kept: another orchestrator" in (
            while_live.stderr
        )
        assert str(worktree) in _registered(repo)  # a live run's worktree is never adopted
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=patience(10))
    finally:
        reap(process)
    for pid in scripted_clis(tmp_path):  # in a process group of its own: not killed with it
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not scripted_clis(tmp_path), "the CLI gone", 10)
    shutil.rmtree(repo / ".council" / "state")
    assert str(worktree) in _registered(repo)
    assert _git(repo, "rev-parse", "council/one/1") == _git(repo, "rev-parse", "main")
    return repo, config, worktree


def _adopted_on_its_branch(repo: Path, worktree: Path) -> str:
    """The worktree is gone and unregistered; its work is a commit on council/one/1."""
    assert str(worktree) not in _registered(repo) and not worktree.exists()
    assert _git(repo, "show", "council/one/1:one.txt") == "1"
    message = _git(repo, "log", "-1", "--format=%B", "council/one/1")
    assert "Council-Task: one" in message
    assert _git(repo, "rev-parse", "council/one/1") != _git(repo, "rev-parse", "main")
    return _git(repo, "rev-parse", "council/one/1")


def test_prune_adopts_the_worktrees_of_a_run_whose_state_was_deleted(tmp_path: Path) -> None:
    repo, config, worktree = _orphaned(tmp_path)

    pruned = council("worktrees", "prune", config, cwd=tmp_path)

    assert pruned.returncode == 0, pruned.stderr
    tip = _adopted_on_its_branch(repo, worktree)
    assert (
        f"adopted {worktree}, left by a run whose state is gone: its uncommitted work "
        f"committed as {tip[:12]}; the work is on branch council/one/1 at {tip[:12]}; the "
        "worktree is removed"
    ) in pruned.stdout
    again = council("worktrees", "prune", config, cwd=tmp_path)
    assert again.returncode == 0 and "adopted" not in again.stdout  # once


def test_the_next_run_adopts_them_before_it_dispatches(tmp_path: Path) -> None:
    repo, _, worktree = _orphaned(tmp_path)
    (tmp_path / "next").mkdir()
    config = write_config(tmp_path / "next", repo, task("two", "WRITE two.txt 2"))

    ran = council("run", config, cwd=tmp_path, timeout=60)

    assert ran.returncode == 0, ran.stderr
    tip = _adopted_on_its_branch(repo, worktree)
    assert f"warning: one: adopted {worktree}, left by a run whose state is gone" in ran.stderr
    assert f"the work is on branch council/one/1 at {tip[:12]}" in ran.stderr
    assert _git(repo, "show", "main:two.txt") == "2"
    assert _git(repo, "rev-parse", "--verify", "-q", "refs/council/rescue/" + worktree.name)
