"""The facts the orchestrator reads from git about a session's work (``collect_facts``): the
same files, stat, commits and diff that separate git commands give, from two processes."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.errors import WorkspaceError
from orchestrator.state import FileStateStore
from orchestrator.workflow.handoffs import facts as facts_module
from orchestrator.workflow.handoffs.facts import collect_facts
from orchestrator.worktrees.manager import WorktreeManager
from tests.support.worktree_helpers import commit_on_main, git, make_repo, write


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
async def manager(repo: Path) -> AsyncIterator[WorktreeManager]:
    async with FileStateStore.for_repo(repo) as store:
        yield WorktreeManager(repo, store=store)


async def test_facts_match_what_git_says(repo: Path, manager: WorktreeManager) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"src/new.py": "a = 1\nb = 2\n", "odd\tname.txt": "tab\n"})
    (session.path / "blob.bin").write_bytes(b"\x00\x01binary")
    await manager.commit_in_worktree(session, "first")
    (session.path / "src" / "app.py").unlink()
    await manager.commit_in_worktree(session, "second")
    commit_on_main(repo, {"elsewhere.txt": "the base moved on\n"})  # not part of the work

    facts = await collect_facts(manager, session)

    tip = git(repo, "rev-parse", session.branch)
    fork = git(repo, "merge-base", "main", session.branch)
    names = git(repo, "diff", "--name-only", "-z", "--no-renames", fork, tip)
    assert facts.head == tip
    assert facts.files == [name for name in names.split("\0") if name]
    assert sorted(facts.files) == ["blob.bin", "odd\tname.txt", "src/app.py", "src/new.py"]
    assert facts.commits == git(repo, "rev-list", f"{fork}..{tip}").split()
    assert (facts.stat.files, facts.stat.insertions, facts.stat.deletions) == (4, 3, 1)
    assert facts.stat.commits_ahead == 2
    diff = git(repo, "diff", "--no-color", "--no-renames", fork, tip)
    assert facts.diff.rstrip("\n") == diff
    assert facts.diff_sha256 == hashlib.sha256(facts.diff.encode()).hexdigest()
    assert not facts.diff_truncated


async def test_a_branch_with_nothing_ahead_has_no_files(
    repo: Path, manager: WorktreeManager
) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    facts = await collect_facts(manager, session)
    assert facts.head == session.base_commit
    assert (facts.files, facts.commits, facts.diff, facts.stat.commits_ahead) == ([], [], "", 0)


async def test_a_branch_that_is_gone_is_a_clear_error(repo: Path, manager: WorktreeManager) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    git(session.path, "checkout", "-q", "--detach")
    git(repo, "branch", "-q", "-D", session.branch)
    with pytest.raises(WorkspaceError, match="branch council/t1/1 of session s1 is gone"):
        await collect_facts(manager, session)


def _no_git_asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record when the facts ask git (``_collect``): the commit's diff did not do."""
    asked: list[str] = []
    original = facts_module._collect

    def spy(*args: object, **kwargs: object) -> object:
        asked.append("git")
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(facts_module, "_collect", spy)
    return asked


async def test_the_builds_commit_gives_the_facts_without_asking_git_again(
    repo: Path, manager: WorktreeManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    commit_on_main(repo, {"elsewhere.txt": "the base moved on\n"})  # landed meanwhile
    commit_on_main(repo, {"elsewhere.txt": "and on\n"})
    write(session.path, {"src/new.py": "a = 1\nb = 2\n", "odd\tname.txt": "tab\n"})
    (session.path / "src" / "app.py").unlink()
    committed = await manager.commit_in_worktree(session, "build", diff=True)
    assert committed.parent == session.base_commit and committed.diff is not None
    asked = _no_git_asked(monkeypatch)

    fast = await collect_facts(manager, session, committed)

    assert asked == []
    assert committed.sha == fast.head == git(repo, "rev-parse", session.branch)
    assert sorted(committed.files) == sorted(fast.files)
    assert fast == await collect_facts(manager, session)  # what git says, asked
    assert asked == ["git"]


async def test_a_cli_that_committed_itself_gets_its_commits_in_the_facts(
    repo: Path, manager: WorktreeManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"cli.txt": "the CLI's own commit\n"})
    git(session.path, "add", "-A")
    git(session.path, "commit", "-q", "-m", "by the CLI")
    write(session.path, {"later.txt": "left for the orchestrator\n"})
    committed = await manager.commit_in_worktree(session, "build", diff=True)
    asked = _no_git_asked(monkeypatch)

    facts = await collect_facts(manager, session, committed)

    assert asked == ["git"]  # the commit's parent is the CLI's: its diff is not the work's
    assert sorted(facts.files) == ["cli.txt", "later.txt"]
    assert len(facts.commits) == facts.stat.commits_ahead == 2


async def test_a_base_rewritten_under_the_session_is_asked_of_git(
    repo: Path, manager: WorktreeManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_on_main(repo, {"dropped.txt": "the base will lose this\n"})
    session = await manager.create_session_worktree("s1", "claude", "t1")
    git(repo, "reset", "-q", "--hard", "HEAD~1")  # the fork point is no longer on the base
    commit_on_main(repo, {"other.txt": "a new line of history\n"})
    write(session.path, {"work.txt": "the session's work\n"})
    committed = await manager.commit_in_worktree(session, "build", diff=True)
    assert committed.parent == session.base_commit
    asked = _no_git_asked(monkeypatch)

    facts = await collect_facts(manager, session, committed)

    assert asked == ["git"]
    assert sorted(facts.files) == ["dropped.txt", "work.txt"]
    assert facts.commits == [committed.sha, session.base_commit]


async def test_a_branch_moved_after_the_commit_is_asked_of_git(
    repo: Path, manager: WorktreeManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"work.txt": "the session's work\n"})
    committed = await manager.commit_in_worktree(session, "build", diff=True)
    write(session.path, {"more.txt": "committed after\n"})
    git(session.path, "add", "-A")
    git(session.path, "commit", "-q", "-m", "after")
    asked = _no_git_asked(monkeypatch)

    facts = await collect_facts(manager, session, committed)

    assert asked == ["git"]
    assert sorted(facts.files) == ["more.txt", "work.txt"]
