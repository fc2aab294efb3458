"""The orchestrator's git runs nothing a CLI configured, and never with the orchestrator's
secrets (``orchestrator.git.repo``, ``git.seal``, ``git.environment``), on real repositories:

- a filter a CLI adds to the shared config after the run sealed it is taken out before the
  orchestrator's next git command (``git add`` here), so it never runs; the CLI's version is
  kept beside the config;
- a worktree's ``.git`` file pointed at a git dir of the CLI's own (with a filter configured
  there) is put back before any git command in that worktree;
- whatever git runs (a filter the user configured themselves) sees no API key, no token and
  no ``GIT_*`` variable the orchestrator did not set;
- the orchestrator's own change of git's setup (``extensions.worktreeConfig``) is its own."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from orchestrator.git import seal
from orchestrator.git.environment import git_environ
from orchestrator.git.repo import Git
from orchestrator.worktrees.manager import WorktreeManager
from tests.support.scheduler_helpers import new_repo
from tests.support.worktree_helpers import git


def dumping_filter(marker: Path) -> str:
    """A clean filter that records it ran, and the environment it ran with."""
    return f"sh -c 'env >> {marker}; cat'"


def git_dir_of_its_own(tmp_path: Path) -> Path:
    """A bare repository a CLI made, to point its worktree's ``.git`` file at."""
    evil = tmp_path / "evil.git"
    git(tmp_path, "init", "-q", "--bare", str(evil))
    return evil


async def test_a_filter_planted_after_the_seal_never_runs_in_the_orchestrators_git(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    manager = WorktreeManager(repo)
    session = await manager.create_session_worktree("one", "cli", "t1")
    config = repo / ".git" / "config"
    sealed = config.read_bytes()
    marker = tmp_path / "filter-ran"
    # What a CLI does mid-run: a filter for every path, in the shared config and attributes.
    git(repo, "config", "filter.evil.clean", dumping_filter(marker))
    git(repo, "config", "core.attributesFile", str(tmp_path / "attributes"))
    (tmp_path / "attributes").write_text("* filter=evil\n")
    (session.path / "work.txt").write_text("the CLI's work\n")

    committed = await manager.commit_in_worktree(session, "work")

    assert committed.committed
    assert not marker.exists(), "the orchestrator's git ran a filter a CLI planted"
    assert config.read_bytes() == sealed
    kept = list((repo / ".git").glob("config.council-tampered-*"))
    assert len(kept) == 1 and b"filter" in kept[0].read_bytes()
    assert any("config" in entry.what for entry in seal.restored_since(0))
    blob = git(session.path, "show", "HEAD:work.txt")
    assert blob.strip() == "the CLI's work"


async def test_a_redirected_git_file_is_put_back_before_git_runs_in_the_worktree(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    manager = WorktreeManager(repo)
    session = await manager.create_session_worktree("one", "cli", "t1")
    gitfile = session.path / ".git"
    honest = gitfile.read_bytes()
    marker = tmp_path / "filter-ran"
    evil = git_dir_of_its_own(tmp_path)
    git(evil, "config", "filter.evil.clean", dumping_filter(marker))
    (evil / "info").mkdir(exist_ok=True)
    (evil / "info" / "attributes").write_text("* filter=evil\n")
    gitfile.write_text(f"gitdir: {evil}\n")
    (session.path / "work.txt").write_text("the CLI's work\n")

    committed = await manager.commit_in_worktree(session, "work")

    assert committed.committed
    assert gitfile.read_bytes() == honest
    assert not marker.exists()
    restored = [entry for entry in seal.restored_since(0) if entry.worktree == session.path]
    assert restored and ".git" in restored[0].what


async def test_git_never_gets_the_orchestrators_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repo(tmp_path)
    marker = tmp_path / "filter-env"
    # The user's own filter, configured before the run: it runs, but with git's environment.
    git(repo, "config", "filter.mine.clean", dumping_filter(marker))
    (repo / ".gitattributes").write_text("*.txt filter=mine\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-canary-0123456789")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_canary0123456789")
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "elsewhere-index"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.hooksPath'='/tmp/x'")
    (repo / "a.txt").write_text("a\n")

    Git(repo, tmp_path / "hooks").run_sync("add", "a.txt")

    seen = marker.read_text()
    assert "PATH=" in seen  # it ran
    for leaked in ("sk-ant-canary", "ghp_canary", "GIT_INDEX_FILE", "/tmp/x"):
        assert leaked not in seen, leaked
    assert not (tmp_path / "elsewhere-index").exists()


def test_git_environ_keeps_what_git_needs_and_nothing_secret() -> None:
    parent = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "SSH_AUTH_SOCK": "/run/agent",
        "GIT_CONFIG_GLOBAL": "/home/u/.gitconfig-work",
        "GIT_SSH_COMMAND": "ssh -i /home/u/.ssh/team",
        "LC_ALL": "C.UTF-8",
        "OPENAI_API_KEY": "sk-x",
        "GH_TOKEN": "t",
        "GIT_DIR": "/elsewhere",
        "GIT_ASKPASS": "/bin/echo",
        "AWS_SECRET_ACCESS_KEY": "s",
        "PYTHONPATH": "/x",
    }
    assert git_environ(parent) == {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "SSH_AUTH_SOCK": "/run/agent",
        "GIT_CONFIG_GLOBAL": "/home/u/.gitconfig-work",
        "GIT_SSH_COMMAND": "ssh -i /home/u/.ssh/team",
        "LC_ALL": "C.UTF-8",
    }


async def test_the_orchestrators_own_setup_change_is_taken_into_the_seal(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    manager = WorktreeManager(repo)
    await manager.create_session_worktree("one", "cli", "t1")
    before = len(seal.restored_since(0))
    git_ = Git(repo, tmp_path / "hooks")

    git_.run_sync("config", "council.note", "the orchestrator's own")
    git_.run_sync("status")

    assert b"the orchestrator's own" in (repo / ".git" / "config").read_bytes()
    assert len(seal.restored_since(0)) == before
    assert os.environ.get("GIT_DIR") is None


async def test_a_setup_change_reads_again_only_the_files_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repo(tmp_path)
    manager = WorktreeManager(repo)
    for n in (1, 2, 3):  # three worktrees: twelve sealed files besides the shared ones
        await manager.create_session_worktree(f"s{n}", "cli", f"t{n}")
    read: list[Path] = []
    real_read = seal._read

    def counted(path: Path) -> bytes | None:
        read.append(path)
        return real_read(path)

    monkeypatch.setattr(seal, "_read", counted)
    git_ = Git(repo, tmp_path / "hooks")

    git_.run_sync("config", "council.note", "the orchestrator's own")

    assert read == [repo / ".git" / "config"]  # not every worktree's pointers again
    before = len(seal.restored_since(0))
    git_.run_sync("status")
    assert len(seal.restored_since(0)) == before  # the change was taken into the seal


async def test_another_worktree_s_change_is_never_taken_into_the_seal_by_a_setup_command(
    tmp_path: Path,
) -> None:
    """A CLI redirects its worktree's ``.git`` while the orchestrator makes another session's
    worktree (a setup command, whose own changes the seal takes in): the redirect is not
    taken in with them, and is put back before git runs in the CLI's worktree."""
    repo = new_repo(tmp_path)
    manager = WorktreeManager(repo)
    session = await manager.create_session_worktree("one", "cli", "t1")
    gitfile = session.path / ".git"
    honest = gitfile.read_bytes()
    gitfile.write_text(f"gitdir: {git_dir_of_its_own(tmp_path)}\n")

    await manager.create_session_worktree("two", "cli", "t2")  # ``git worktree add``

    assert gitfile.read_bytes() != honest  # nothing ran in the CLI's worktree yet
    (session.path / "work.txt").write_text("the CLI's work\n")
    committed = await manager.commit_in_worktree(session, "work")
    assert committed.committed
    assert gitfile.read_bytes() == honest
    restored = [entry for entry in seal.restored_since(0) if entry.worktree == session.path]
    assert restored and ".git" in restored[-1].what


@pytest.mark.parametrize("planted", ["fifo", "link to a fifo"])
async def test_a_fifo_in_place_of_the_git_file_is_put_back_without_waiting(
    tmp_path: Path, planted: str
) -> None:
    """A CLI's FIFO where its worktree's ``.git`` was: reading it as a file would wait, with the
    seal's lock held, for a writer that never comes (every later git call of the run behind
    it); it is read as what it is, and put back like any other change."""
    repo = new_repo(tmp_path)
    manager = WorktreeManager(repo)
    session = await manager.create_session_worktree("one", "cli", "t1")
    gitfile = session.path / ".git"
    honest = gitfile.read_bytes()
    gitfile.unlink()
    if planted == "fifo":
        os.mkfifo(gitfile)
    else:
        os.mkfifo(tmp_path / "fifo")
        gitfile.symlink_to(tmp_path / "fifo")
    checked: list[list[seal.Restored]] = []
    looking = threading.Thread(target=lambda: checked.append(seal.check(session.path)))
    looking.daemon = True
    looking.start()
    looking.join(10)

    assert checked, "the seal's check waited on a FIFO"
    assert gitfile.read_bytes() == honest
    assert any(".git" in entry.what for entry in checked[0])
