"""The demo's sample repository is created once, with one commit, and never overwritten."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import WorkspaceError
from orchestrator.run.demo_repo import SAMPLE_FILES, SampleState, ensure_sample_repo, sample_state
from tests.support.timing import patience


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


def half_made_by_an_older_version(repo: Path, files: dict[str, str]) -> None:
    """What the older, in-place build left when killed before its commit."""
    for relative, content in files.items():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(content)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)


async def test_a_half_made_sample_of_an_older_build_is_rebuilt(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    half_made_by_an_older_version(repo, dict(list(SAMPLE_FILES.items())[:2]))
    assert sample_state(repo) == SampleState.HALF_MADE
    assert await ensure_sample_repo(repo, "main")
    assert git(repo, "rev-list", "--count", "main").strip() == "1"
    assert sorted(git(repo, "ls-files").split()) == sorted(SAMPLE_FILES)
    assert [p.name for p in tmp_path.iterdir()] == ["repo"]  # no build directory left


async def test_a_half_made_sample_someone_edited_is_never_touched(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    half_made_by_an_older_version(repo, {**SAMPLE_FILES, "README.md": "my own words\n"})
    with pytest.raises(WorkspaceError, match="not the demo's sample"):
        await ensure_sample_repo(repo, "main")
    assert (repo / "README.md").read_text() == "my own words\n"


def council_run(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.app", "run", "run.yaml", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=patience(120),
        env={**os.environ, "COUNCIL_DISABLE_PLUGINS": "1", **env},
    )


def test_a_kill_while_the_sample_is_built_leaves_nothing_a_later_run_refuses(
    tmp_path: Path,
) -> None:
    (tmp_path / "run.yaml").write_text(
        "repo: demo/repo\nsample_repo: true\n"
        "adapters: {cli: {type: scripted, options: {delay: 0}}}\ndefault_adapter: cli\n"
        "workflow: {phases: [{name: build}]}\n"
        "tasks:\n  - {id: hello, prompt: 'WRITE hello.txt hi'}\n"
    )
    killed = council_run(tmp_path, COUNCIL_CRASH_AT="sample.half_made")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert "crash point sample.half_made reached" in killed.stderr
    demo = tmp_path / "demo"
    assert not (demo / "repo").exists()  # the half-made one is aside, not in place
    (left,) = demo.iterdir()
    assert left.name.startswith(".repo.sample-build-")

    done = council_run(tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["status"] == "completed"
    assert [p.name for p in demo.iterdir()] == ["repo"]  # the dead build was cleared away
    assert git(demo / "repo", "show", "main:hello.txt") == "hi\n"


async def test_a_build_directory_of_a_live_builder_is_left_alone(tmp_path: Path) -> None:
    other = tmp_path / f".repo.sample-build-{os.getpid()}-x"
    other.mkdir()
    (other / ".council-sample-build").write_text(f"{os.getpid()}\n")
    assert await ensure_sample_repo(tmp_path / "repo", "main")
    assert other.is_dir()  # this very process is alive: maybe building it right now
