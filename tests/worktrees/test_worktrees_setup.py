"""Worktree set-up (copied files, setup commands), the reuse pool and sparse checkouts."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.config.sandbox import SandboxConfig
from orchestrator.config.sections import WorktreeConfig
from orchestrator.errors import PathEscapeError, WorkspaceError
from orchestrator.sandbox.choice import settings_for
from orchestrator.state import FileStateStore
from orchestrator.worktrees.manager import NAMESPACE, WorktreeManager
from orchestrator.worktrees.models import WorktreeSettings
from tests.support.worktree_helpers import (
    branches,
    commit_on_main,
    git,
    make_repo,
    registered_paths,
    write,
)

PY = sys.executable


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {
            ".gitignore": "build/\n",
            "README.md": "hello\n",
            "app/main.py": "print('main')\n",
            "docs/guide.md": "guide\n",
            "lib/util.py": "util = 1\n",
        },
    )


@pytest.fixture
async def store(repo: Path) -> AsyncIterator[FileStateStore]:
    async with FileStateStore.for_repo(repo) as opened:
        yield opened


def entries(repo: Path) -> list[Path]:
    return sorted((repo / ".council" / "pool").iterdir())


# --- set-up ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pool_size", [0, 1])
async def test_files_are_copied_in_and_setup_commands_run_and_log(
    repo: Path, store: FileStateStore, pool_size: int
) -> None:
    write(repo, {".env": "TOKEN=secret\n", "config/local.json": "{}\n"})
    settings = WorktreeSettings(
        copy_files=[".env", "config", "absent.txt"],
        setup=[
            [PY, "-c", "import os; print('installing for', os.environ['COUNCIL_SESSION_ID'])"],
            [PY, "-c", "import os; os.makedirs('build'); open('build/out', 'w').write('x')"],
        ],
        pool_size=pool_size,
    )
    manager = WorktreeManager(repo, store=store, settings=settings)
    session = await manager.create_session_worktree("s1", "claude", "t1")

    assert (session.path / ".env").read_text() == "TOKEN=secret\n"
    assert (session.path / "config" / "local.json").read_text() == "{}\n"
    assert (session.path / "build" / "out").exists()
    log = (repo / ".council" / "logs" / "setup-s1.log").read_text()
    assert "copy absent.txt: not in the main checkout, skipped" in log
    assert "installing for s1" in log and log.count("# exit code 0") == 2
    assert f"$ {PY} -c" in log

    # Copied files are configuration, not work: never committed, and no obstacle to removal.
    write(session.path, {"work.py": "done = True\n"})
    result = await manager.commit_in_worktree(session, "work")
    assert result.files == ["work.py"]
    assert not (await manager.get_session_stats(session)).dirty
    removed = await manager.remove_session_worktree(session)
    assert removed.worktree_removed and removed.rescue_commit is None
    assert removed.pooled == bool(pool_size) and not session.path.exists()
    assert git(repo, "ls-tree", "-r", "--name-only", removed.tip or "").splitlines() == [
        ".gitignore",
        "README.md",
        "app/main.py",
        "docs/guide.md",
        "lib/util.py",
        "work.py",
    ]
    assert (repo / ".env").read_text() == "TOKEN=secret\n"  # the user's file is untouched
    if pool_size:  # the pooled worktree keeps nothing of the session, copies included
        [pooled] = entries(repo)
        assert not (pooled / ".env").exists() and not (pooled / "build").exists()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ([PY, "-c", "print('boom'); raise SystemExit(3)"], "failed with exit code 3"),
        ([PY, "-c", "import time; time.sleep(30)"], "timed out after 0.5s"),
        (["council-no-such-binary"], "could not start"),
    ],
)
async def test_failing_setup_is_an_error_and_leaves_nothing(
    repo: Path, store: FileStateStore, command: list[str], expected: str
) -> None:
    settings = WorktreeSettings(setup=[command], setup_timeout=0.5)
    manager = WorktreeManager(repo, store=store, settings=settings)
    with pytest.raises(WorkspaceError, match=expected) as caught:
        await manager.create_session_worktree("s1", "claude", "t1")
    log = repo / ".council" / "logs" / "setup-s1.log"
    assert str(log) in str(caught.value) and command[0] in str(caught.value)
    if "boom" in command[-1]:
        assert "boom" in log.read_text()
    assert not (repo / ".council" / "worktrees" / "s1").exists()
    assert registered_paths(repo) == {repo.resolve()}
    assert branches(repo) == set() and await store.get_record(NAMESPACE, "s1") is None


async def test_setup_output_that_is_not_ignored_is_rescued_not_lost(repo: Path) -> None:
    settings = WorktreeSettings(
        setup=[[PY, "-c", "open('generated.txt', 'w').write('made'); raise SystemExit(1)"]]
    )
    with pytest.raises(WorkspaceError):
        await WorktreeManager(repo, settings=settings).create_session_worktree("s1", "c", "t1")
    assert git(repo, "show", "refs/council/rescue/s1:generated.txt") == "made"
    assert branches(repo) == {"council/t1/1"}


async def test_a_copy_that_leaves_the_repository_is_refused(tmp_path: Path, repo: Path) -> None:
    outside = tmp_path / "outside-secret"
    outside.write_text("not yours\n")
    os.symlink(outside, repo / "link")
    manager = WorktreeManager(repo, settings=WorktreeSettings(copy_files=["link"]))
    with pytest.raises(PathEscapeError):
        await manager.create_session_worktree("s1", "claude", "t1")
    assert registered_paths(repo) == {repo.resolve()} and branches(repo) == set()


# --- the pool ----------------------------------------------------------------------------------


async def test_pool_reuse_gives_a_clean_worktree_on_a_fresh_branch(
    repo: Path, store: FileStateStore
) -> None:
    manager = WorktreeManager(repo, store=store, settings=WorktreeSettings(pool_size=2))
    first = await manager.create_session_worktree("s1", "claude", "t1")
    write(first.path, {"committed.py": "a = 1\n"})
    await manager.commit_in_worktree(first, "committed")
    write(first.path, {"uncommitted.py": "b = 2\n", "build/artifact": "junk\n"})
    removed = await manager.remove_session_worktree(first)
    assert removed.pooled and not first.path.exists()
    assert len(entries(repo)) == 1

    new_tip = commit_on_main(repo, {"later.md": "later\n"})
    second = await manager.create_session_worktree("s2", "codex", "t2")

    assert entries(repo) == []  # the pooled worktree was taken
    assert second.path == repo.resolve() / ".council" / "worktrees" / "s2"
    assert second.branch == "council/t2/1" and second.base_commit == new_tip
    assert git(second.path, "symbolic-ref", "HEAD") == "refs/heads/council/t2/1"
    assert git(second.path, "rev-parse", "HEAD") == new_tip
    assert git(second.path, "status", "--porcelain", "--ignored", "--untracked-files=all") == ""
    for leftover in ("committed.py", "uncommitted.py", "build"):
        assert not (second.path / leftover).exists()
    assert (second.path / "later.md").exists()
    listed = git(repo, "worktree", "list", "--porcelain")
    assert "locked council session=s2 cli=codex task=t2" in listed
    # The first session's work is all on its branch.
    assert git(repo, "show", "council/t1/1:committed.py") == "a = 1"
    assert git(repo, "show", "council/t1/1:uncommitted.py") == "b = 2"
    # And the reused worktree works like a fresh one.
    write(second.path, {"x.py": "x = 1\n"})
    assert (await manager.commit_in_worktree(second, "x")).committed


async def test_pool_keeps_at_most_its_size_and_reconcile_trims_it(repo: Path) -> None:
    manager = WorktreeManager(repo, settings=WorktreeSettings(pool_size=1))
    sessions = [await manager.create_session_worktree(f"s{n}", "claude", "t1") for n in (1, 2)]
    results = [await manager.remove_session_worktree(s) for s in sessions]
    assert [r.pooled for r in results] == [True, False]
    assert results[1].worktree_removed and len(entries(repo)) == 1

    # A run without a pool (or with another checkout shape) removes what was pooled.
    pooled = entries(repo)
    report = await WorktreeManager(repo).reconcile()
    assert report.pool_trimmed == pooled
    assert entries(repo) == [] and registered_paths(repo) == {repo.resolve()}


async def test_work_found_in_a_pooled_worktree_is_saved_before_reuse(repo: Path) -> None:
    manager = WorktreeManager(repo, settings=WorktreeSettings(pool_size=1))
    first = await manager.create_session_worktree("s1", "claude", "t1")
    await manager.remove_session_worktree(first)
    [pooled] = entries(repo)
    write(pooled, {"someone-wrote-here.txt": "precious\n"})

    second = await manager.create_session_worktree("s2", "claude", "t2")

    assert not (second.path / "someone-wrote-here.txt").exists()
    saved = git(repo, "for-each-ref", "--format=%(refname)", "refs/council/rescue-pool/")
    assert saved and git(repo, "show", f"{saved}:someone-wrote-here.txt") == "precious"


# --- sparse checkouts --------------------------------------------------------------------------


async def test_a_sparse_worktree_cut_off_from_git_never_commits_deleting_its_uncut_files(
    repo: Path,
) -> None:
    # Its sparse-checkout file went with its admin directory: the files never checked out are
    # kept out of the next commit (skip-worktree), the edits in it committed.
    manager = WorktreeManager(repo, settings=WorktreeSettings(sparse=["app"]))
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"app/new.py": "n = 1\n"})
    admin = Path((session.path / ".git").read_text().removeprefix("gitdir: ").strip())
    shutil.rmtree(admin)

    await manager.recreate_session_worktree(session)
    result = await manager.commit_in_worktree(session, "after the repair")
    assert result.files == ["app/new.py"]
    assert git(repo, "show", f"{session.branch}:lib/util.py") == "util = 1"  # not deleted
    assert not (session.path / "lib").exists()


async def test_sparse_checkout(repo: Path) -> None:
    manager = WorktreeManager(repo, settings=WorktreeSettings(sparse=["app"], pool_size=1))
    session = await manager.create_session_worktree("s1", "claude", "t1")
    assert (session.path / "app" / "main.py").exists() and (session.path / "README.md").exists()
    assert not (session.path / "lib").exists() and not (session.path / "docs").exists()

    # Work outside the cone is still work: committed, not dropped.
    write(session.path, {"app/new.py": "n = 1\n", "lib/extra.py": "e = 1\n"})
    result = await manager.commit_in_worktree(session, "sparse work")
    assert sorted(result.files) == ["app/new.py", "lib/extra.py"]
    stats = await manager.get_session_stats(session)
    assert stats.files_changed == 2 and not stats.dirty
    assert git(repo, "show", f"{session.branch}:lib/util.py") == "util = 1"  # not deleted

    # The pool keeps the shape: a reused worktree is just as sparse.
    await manager.remove_session_worktree(session)
    again = await manager.create_session_worktree("s2", "claude", "t2")
    assert entries(repo) == [] and (again.path / "app").exists()
    assert not (again.path / "lib").exists()
    write(again.path, {"app/again.py": "a = 1\n"})
    result = await manager.commit_in_worktree(again, "sparse work again")
    assert result.files == ["app/again.py"]  # nothing of the cone's outside taken for deleted
    assert git(repo, "show", f"{again.branch}:lib/util.py") == "util = 1"


# A setup command as a Python program: it tries to write into the main checkout and to see a
# file beside the repository, then writes what happened into the worktree it sets up.
_PROBING_SETUP = """\
import os, pathlib, sys
try:
    (pathlib.Path(sys.argv[1]) / "set-up.txt").write_text("x")
    wrote = "wrote"
except OSError:
    wrote = "refused"
seen = "seen" if os.path.exists(sys.argv[2]) else "hidden"
os.makedirs("build", exist_ok=True)
pathlib.Path("build/probe").write_text(wrote + " " + seen)
"""


@pytest.mark.sandbox
async def test_setup_commands_run_in_the_runs_sandbox(
    tmp_path: Path, repo: Path, store: FileStateStore
) -> None:
    """The package scripts a setup command runs come from landed work, which CLIs wrote: they
    reach what a CLI could (the worktree), not what the user can."""
    beside = tmp_path / "beside.txt"
    beside.write_text("not the setup's\n")
    sandbox = await settings_for(SandboxConfig(mode="bubblewrap"))
    settings = WorktreeSettings(
        WorktreeConfig(setup=[[PY, "-c", _PROBING_SETUP, str(repo), str(beside)]]),
        sandbox=sandbox,
    )
    manager = WorktreeManager(repo, store=store, settings=settings)
    session = await manager.create_session_worktree("s1", "claude", "t1")

    assert (session.path / "build" / "probe").read_text() == "refused hidden"
    assert not (repo / "set-up.txt").exists()
