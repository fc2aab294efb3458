"""A full parallel workflow with every coordination component, on a real repository.

Six sessions (two of them on the same task, two others editing the same shared file) run at
once: each gets a worktree, takes the file locks of what it edits, publishes its context,
writes its files like a CLI would, is committed by the orchestrator, lands through the merge
queue and is cleaned up. Afterwards: every change is on the base exactly once, the conflicting
second edit of the shared file was refused without loss (its branch rescued), no lock, context
or worktree is left behind, and the base holds no conflict markers.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import pytest

from orchestrator.locks.manager import LockManager
from orchestrator.merge.queue import MergeQueue
from orchestrator.state import FileStateStore
from orchestrator.state.context import ContextManager, WorkStatus
from orchestrator.worktrees.manager import WorktreeManager
from tests.support.timing import patience


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    )
    return result.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@localhost")
    (path / "shared.txt").write_text("line one\n")
    (path / "README.md").write_text("# demo\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


# session -> (cli, task, {file: content})
SESSIONS = {
    "s-docs": ("alice", "docs", {"docs/guide.md": "guide\n"}),
    "s-api-1": ("alice", "api", {"src/api.py": "def api():\n    return 1\n"}),
    "s-api-2": ("bob", "api", {"src/api_alt.py": "def api():\n    return 2\n"}),
    "s-shared-a": ("bob", "shared-a", {"shared.txt": "line one\nfrom a\n"}),
    "s-shared-b": ("carol", "shared-b", {"shared.txt": "line one\nfrom b\n"}),
    "s-tests": ("carol", "tests", {"tests/test_api.py": "def test():\n    assert True\n"}),
}


async def test_full_parallel_workflow(repo: Path) -> None:
    async with FileStateStore.for_repo(repo) as store:
        worktrees = WorktreeManager(repo, store=store)
        locks = LockManager(repo, store=store)
        contexts = ContextManager(store, repo)
        queue = MergeQueue(repo, "main", merge_lock=locks.merge_lock, store=store)
        results: dict[str, str] = {}
        overlapping: list[str] = []

        async def run_session(session_id: str) -> None:
            cli, task, files = SESSIONS[session_id]
            session = await worktrees.create_session_worktree(session_id, cli, task)
            await locks.acquire_file_locks(session_id, list(files), timeout=patience(30))
            for path in files:
                others = await contexts.find_file_conflicts(path, exclude=session_id)
                overlapping.extend(
                    f"{session_id}:{o.session}" for o in others if o.status == WorkStatus.WORKING
                )
            await contexts.update_context(
                session_id,
                cli=cli,
                task=task,
                status=WorkStatus.WORKING,
                current_file=next(iter(files)),
                files_locked=list(files),
            )
            for relative, content in files.items():  # what a CLI would do in its worktree
                target = session.path / relative
                await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
                await anyio.Path(target).write_text(content)
            await anyio.sleep(0.05)
            commit = await worktrees.commit_in_worktree(session, f"{task}: work")
            assert commit.committed
            stats = await worktrees.get_session_stats(session)
            assert stats.files_changed == len(files) and stats.commits_ahead == 1
            await contexts.update_context(session_id, status=WorkStatus.DONE, files_locked=[])
            await locks.release_all_session_locks(session_id)
            merged = await queue.merge(session_id, session.branch, task_id=task)
            results[session_id] = merged.status
            await worktrees.remove_session_worktree(session)

        async with anyio.create_task_group() as group:
            for session_id in SESSIONS:
                group.start_soon(run_session, session_id)

        # The two sessions on shared.txt never held it at once (the file lock serialized them),
        # so no session ever found another one working on a file it had just locked.
        assert overlapping == []
        # Two sessions worked the api task: the first to finish lands it, the other's work is
        # a candidate that was not chosen and is kept on its branch, never merged twice.
        statuses = sorted(results.values())
        assert statuses == ["already_merged", "conflict", "merged", "merged", "merged", "merged"]
        loser = next(s for s, status in results.items() if status == "conflict")
        assert loser in ("s-shared-a", "s-shared-b")
        spare = next(s for s, status in results.items() if status == "already_merged")
        assert spare in ("s-api-1", "s-api-2")

        tree = git(repo, "ls-tree", "-r", "--name-only", "main").split()
        for path in ("docs/guide.md", "tests/test_api.py"):
            assert path in tree
        landed_api = "src/api_alt.py" if spare == "s-api-1" else "src/api.py"
        spare_file = "src/api.py" if spare == "s-api-1" else "src/api_alt.py"
        assert landed_api in tree and spare_file not in tree
        shared = git(repo, "show", "main:shared.txt")
        assert shared in ("line one\nfrom a\n", "line one\nfrom b\n")
        markers = subprocess.run(
            ["git", "-C", str(repo), "grep", "-e", "<<<<<<<", "main"], capture_output=True
        )
        assert markers.returncode == 1  # nothing found
        log = git(repo, "log", "--first-parent", "--format=%B", "main")
        for task in ("docs", "api", "tests"):
            assert log.count(f"Council-Task: {task}\n") == 1

        # Neither the refused edit nor the spare candidate is lost: a branch still holds each.
        refs = git(
            repo, "for-each-ref", "--format=%(refname)", "refs/heads/council", "refs/council"
        ).split()
        loser_ref = next(ref for ref in refs if f"/{SESSIONS[loser][1]}/" in ref)
        assert "from" in git(repo, "show", f"{loser_ref}:shared.txt")
        api_refs = [ref for ref in refs if "/api/" in ref]
        assert any(spare_file in git(repo, "ls-tree", "-r", "--name-only", r) for r in api_refs)

        remaining = [w for w in await worktrees.list_worktrees() if w.session_id]
        assert remaining == []
        assert [await locks.owner_of(p) for p in ("shared.txt", "src/api.py")] == [None, None]
        summary = await contexts.get_task_summary("api")
        assert summary[WorkStatus.DONE] == 2
        await locks.aclose()
