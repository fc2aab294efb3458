"""The demo's sample repository is created once, with one commit, and never overwritten."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.errors import WorkspaceError
from orchestrator.sample_repo import SAMPLE_FILES, ensure_sample_repo


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


async def test_created_once_with_one_commit(tmp_path: Path) -> None:
    repo = tmp_path / "demo" / "repo"
    assert await ensure_sample_repo(repo, "main")
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert git(repo, "rev-list", "--count", "main").strip() == "1"
    assert sorted(git(repo, "ls-files").split()) == sorted(k for k in SAMPLE_FILES if k)
    assert git(repo, "status", "--porcelain") == ""
    unittest = subprocess.run(
        ["python3", "-m", "unittest", "discover", "-s", "tests"], cwd=repo, capture_output=True
    )
    assert unittest.returncode == 0
    (repo / "textkit" / "words.py").write_text("changed\n")
    assert not await ensure_sample_repo(repo, "main")
    assert (repo / "textkit" / "words.py").read_text() == "changed\n"


async def test_a_foreign_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    with pytest.raises(WorkspaceError, match="not the demo's sample"):
        await ensure_sample_repo(tmp_path, "main")
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


async def test_a_plain_directory_inside_another_repository_is_refused(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    assert await ensure_sample_repo(outer, "main")
    inner = outer / "demo"
    inner.mkdir()
    with pytest.raises(WorkspaceError, match="not the demo's sample"):
        await ensure_sample_repo(inner, "main")
