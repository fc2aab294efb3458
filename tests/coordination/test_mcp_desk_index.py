"""``session_changes`` reads another session's worktree as the radar does: through a copy of
its index, so the answer never takes or rewrites the index that session's CLI is using (a
plain ``git diff`` of a working tree refreshes the index under ``index.lock``, git 2.39)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.coordination.desk import Caller, Desk
from orchestrator.state import FileStateStore
from orchestrator.worktrees.models import SessionWorktree
from orchestrator.worktrees.sessions import NAMESPACE as WORKTREES
from tests.support.merge_repo import git
from tests.support.scheduler_helpers import new_repo


async def test_session_changes_leaves_the_other_sessions_index_alone(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    work = tmp_path / "other"
    git(repo, "worktree", "add", "-q", "-b", "council/other/1", str(work), "main")
    base = git(repo, "rev-parse", "main").strip()
    files = sorted(p.name for p in work.iterdir() if p.is_file() and p.name != ".git")
    tracked, untouched = files[0], files[1]
    (work / tracked).write_text((work / tracked).read_text() + "changed by the other\n")
    git(work, "add", tracked)
    admin = Path(git(work, "rev-parse", "--absolute-git-dir").strip())
    index = admin / "index"
    earlier = index.stat().st_mtime_ns - 5_000_000_000
    # as in the base; only its stat data moves, which a plain `git diff` refreshes in the index
    os.utime(work / untouched, ns=(earlier, earlier))
    before = index.stat().st_ino, index.stat().st_mtime_ns, index.read_bytes()
    record = SessionWorktree(
        session_id="sess-other",
        cli="cli",
        task_id="t-other",
        path=work,
        branch="council/other/1",
        base_commit=base,
        created_at=datetime.now(UTC),
    )
    async with FileStateStore(tmp_path / "state") as store:
        await store.put_record(WORKTREES, "sess-other", record.model_dump(mode="json"))
        desk = Desk(store, repo, caller=Caller("sess-me", "t-me"))
        answer = await desk.call("session_changes", {"session": "sess-other"})
        assert answer.outcome == "ok", answer.text
        assert (index.stat().st_ino, index.stat().st_mtime_ns, index.read_bytes()) == before
        (admin / "index.lock").write_text("")  # the other CLI's `git add` under way
        try:
            answer = await desk.call("session_changes", {"session": "sess-other"})
        finally:
            (admin / "index.lock").unlink()
    assert answer.outcome == "ok", answer.text
    assert "+changed by the other" in answer.text and tracked in answer.text
    assert (index.stat().st_ino, index.stat().st_mtime_ns, index.read_bytes()) == before
