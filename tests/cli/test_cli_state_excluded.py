"""What a CLI writes at its worktree's root as its own state is never committed as work.

aider 0.86.2 writes its repo-map cache, ``.aider.tags.cache.v4/cache.db`` (sqlite), at the
repository root on every run; no option moves it (recorded: ``tests/support/transcripts/denials/
aider/gitignored_edit.meta.json``, ``git_status``). The orchestrator lists it in the
repository's ``info/exclude`` beside ``.council/``.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.state import FileStateStore
from orchestrator.worktrees.manager import WorktreeManager
from tests.support.worktree_helpers import git, make_repo


async def test_aider_repo_map_cache_is_not_committed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    exclude = repo / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.write_text("# the user's own\n/.council/\n")  # set up by an earlier release
    async with FileStateStore.for_repo(repo) as store:
        manager = WorktreeManager(repo, store=store)
        session = await manager.create_session_worktree("s1", "aider", "t1")
        cache = session.path / ".aider.tags.cache.v4"
        cache.mkdir()
        (cache / "cache.db").write_bytes(b"SQLite format 3\x00")
        (session.path / "feature.py").write_text("VALUE = 1\n")
        done = await manager.commit_in_worktree(session, "work")
        assert done.committed
        changed = git(session.path, "show", "--name-only", "--format=", "HEAD").split()
        assert changed == ["feature.py"]
        # Added once to a file that already had the .council line, which stays single.
        await WorktreeManager(repo, store=store).create_session_worktree("s2", "aider", "t2")
    lines = exclude.read_text().splitlines()
    assert lines.count("/.aider.tags.cache.v*/") == 1 and lines.count("/.council/") == 1
    assert lines[0] == "# the user's own"
