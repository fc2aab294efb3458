"""Many session worktrees created and removed at once: git's worktree races must not show.

Git 2.39 fails about 2% of concurrent ``worktree add`` calls (and a failed ``branch -D``
breaks the next branch of that name) unless the metadata steps are serialized; these tests
run two managers (two lock holders, as two orchestrator processes would be) over one
repository and one store, with sessions of a few shared tasks so attempt numbers race too,
and a quarter of the sessions leave uncommitted work that the removal must rescue.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio

from orchestrator.state import FileStateStore
from orchestrator.worktrees.manager import NAMESPACE, WorktreeManager
from tests.support.worktree_helpers import branches, git, make_repo, registered_paths, write

CONCURRENCY = 8


async def churn(tmp_path: Path, count: int) -> float:
    repo = make_repo(tmp_path / "repo")
    kept: dict[str, str] = {}
    failures: list[BaseException] = []
    async with FileStateStore.for_repo(repo) as store:
        managers = [WorktreeManager(repo, store=store) for _ in range(2)]
        slots = anyio.Semaphore(CONCURRENCY)

        async def one(n: int) -> None:
            manager = managers[n % 2]
            async with slots:
                try:
                    session = await manager.create_session_worktree(
                        f"s{n}", "claude", f"task-{n % 7}"
                    )
                    if n % 4 == 0:
                        write(session.path, {f"work-{n}.txt": f"{n}\n"})
                    result = await manager.remove_session_worktree(session)
                    if n % 4 == 0:
                        assert result.rescue_ref and not result.branch_deleted
                        kept[result.branch] = f"work-{n}.txt"
                    else:
                        assert result.branch_deleted and result.rescue_ref is None
                except BaseException as exc:
                    failures.append(exc)
                    raise

        started = time.monotonic()
        async with anyio.create_task_group() as group:
            for n in range(count):
                group.start_soon(one, n)
        elapsed = time.monotonic() - started
        assert failures == []
        assert await store.list_records(NAMESPACE) == []

    assert registered_paths(repo) == {repo.resolve()}
    assert list((repo / ".council" / "worktrees").iterdir()) == []
    assert not (repo / ".git" / "worktrees").exists() or not any(
        (repo / ".git" / "worktrees").iterdir()
    )
    assert branches(repo) == set(kept)
    for branch, name in kept.items():
        assert git(repo, "ls-tree", "--name-only", branch, name) == name
    rescued = git(repo, "for-each-ref", "--format=%(refname)", "refs/council/rescue/")
    assert len(rescued.splitlines()) == len(kept)
    return elapsed


# 320 (it was 500, which took 32.6 s beside the real-CLI tier, over the suite's 30 s a test):
# at git's 2 % of failed concurrent adds, 320 unserialized ones all pass 0.2 % of the time.
async def test_320_worktrees_at_concurrency_8(tmp_path: Path) -> None:
    elapsed = await churn(tmp_path, 320)
    print(f"320 worktrees created and removed in {elapsed:.1f}s")
