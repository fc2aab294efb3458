"""The repository's workspace made ready at a run's start (issue 51): ``.council/`` prepared,
git's setup sealed and what CLIs of a dead run left taken in, in that order, in one
worker-thread call; the checkout's root found and git asked for its dirs in one before it: two
calls in all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.git import seal
from orchestrator.worktrees.manager import WorktreeManager
from tests.support.hops import count_hops
from tests.support.worktree_helpers import make_repo


async def test_the_workspace_is_ready_in_two_worker_thread_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo")
    done: list[str] = []
    real_seal = seal.seal_repository

    def sealing(root: Path, git_dir: Path, common_dir: Path) -> None:
        assert (repo / ".council" / "worktrees").is_dir()  # prepared before it
        done.append("sealed")
        real_seal(root, git_dir, common_dir)

    monkeypatch.setattr(seal, "seal_repository", sealing)
    hopped = count_hops(monkeypatch)
    layout = await WorktreeManager(repo).layout()
    assert done == ["sealed"]
    assert len(hopped) == 2, hopped
    assert ".council/" in layout.exclude_file.read_text()
    assert os.path.normpath(layout.root) in seal._repos  # sealed: git commands checked now
    await WorktreeManager(repo).layout()  # a second manager: the same, sealed again
    assert done == ["sealed", "sealed"]
