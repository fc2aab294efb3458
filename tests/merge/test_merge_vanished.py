"""``MergeQueue.vanished`` and ``restore_branch`` on real repositories: a landing is still there
while its ``Council-Task`` merge is on the base's first-parent history; the check after a
landing costs no git process; a squash that dropped the trailer is a vanished landing, landed
again from the branch side of the vanished merge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.git.merge_tree import GitCalls
from orchestrator.merge.queue import MergeQueue, MergeStatus
from tests.support.hops import count_hops
from tests.support.merge_repo import commit_on, git, init_repo, show, tip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", checked_out=False)


async def test_the_check_after_a_landing_starts_no_git_process(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_on(repo, "council/t1/1", {"a.txt": "a\n"})
    commit_on(repo, "council/t2/1", {"b.txt": "b\n"})
    queue = MergeQueue(repo, "main")
    first = await queue.merge("s1", "council/t1/1", task_id="t1")
    second = await queue.merge("s2", "council/t2/1", task_id="t2")
    assert first.merge_commit is not None
    started: list[tuple[str, ...]] = []
    real = GitCalls.run

    def counted(self: GitCalls, *args: str, **kwargs: Any) -> Any:
        started.append(args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(GitCalls, "run", counted)
    assert await queue.lending.vanished({"t1": first.merge_commit}, at=second.base_after) == []
    assert started == []


async def test_the_check_after_a_landing_is_no_worker_thread_call_while_the_index_knows(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every landing looked for is on the tip the last landing read, as the trailer index
    knows: answered on the event loop. One it cannot tell in memory is still looked for in a
    worker thread (and judged as before)."""
    commit_on(repo, "council/t1/1", {"a.txt": "a\n"})
    commit_on(repo, "council/t2/1", {"b.txt": "b\n"})
    queue = MergeQueue(repo, "main")
    first = await queue.merge("s1", "council/t1/1", task_id="t1")
    second = await queue.merge("s2", "council/t2/1", task_id="t2")
    assert first.merge_commit is not None and second.merge_commit is not None
    hopped = count_hops(monkeypatch)
    landed = {"t1": first.merge_commit, "t2": second.merge_commit}
    assert await queue.lending.vanished(landed, at=second.base_after) == []
    assert hopped == []
    # At the older tip, t2's landing is not on it yet: not for memory to tell, a hop decides.
    assert await queue.lending.vanished(landed, at=first.base_after) == []
    assert len(hopped) == 1
    # A recorded landing the index does not know (squashed away, say) is looked for in git.
    assert await queue.lending.vanished({"t9": first.merge_commit}, at=second.base_after) == []
    assert len(hopped) == 2


async def test_a_squashed_landing_has_vanished_and_lands_again_from_the_vanished_merge(
    repo: Path,
) -> None:
    start = tip(repo)
    branch_tip = commit_on(repo, "council/t1/1", {"a.txt": "a\n"})
    queue = MergeQueue(repo, "main")
    landed = await queue.merge("s1", "council/t1/1", task_id="t1")
    assert landed.merge_commit is not None
    git(repo, "branch", "-q", "-D", "council/t1/1")  # gone, as after a landing
    # Someone squashes the merge into one plain commit: the content stays, the trailer goes.
    squash = git(repo, "commit-tree", f"{landed.merge_commit}^{{tree}}", "-p", start, "-m", "sq")
    git(repo, "update-ref", "refs/heads/main", squash)

    (gone,) = await queue.lending.vanished({"t1": landed.merge_commit})

    assert gone.task_id == "t1" and gone.commit == landed.merge_commit
    assert gone.base == squash and gone.merge_base == start
    assert gone.replaced_by == [f"{squash} sq"]
    assert await queue.lending.restore_branch("council/t1/1", landed.merge_commit) == branch_tip
    again = await queue.merge("s1", "council/t1/1", task_id="t1")
    assert again.status is MergeStatus.MERGED  # a merge that changes nothing, with the trailer
    assert show(repo, "main", "a.txt") == "a"
    assert await queue.lending.vanished({"t1": again.merge_commit or ""}) == []


async def test_a_deleted_base_branch_has_every_landing_vanished(repo: Path) -> None:
    commit_on(repo, "council/t1/1", {"a.txt": "a\n"})
    queue = MergeQueue(repo, "main")
    landed = await queue.merge("s1", "council/t1/1", task_id="t1")
    assert landed.merge_commit is not None
    git(repo, "update-ref", "-d", "refs/heads/main")

    (gone,) = await queue.lending.vanished({"t1": landed.merge_commit})

    assert gone.base is None and gone.replaced_by == []


async def test_a_landing_made_after_the_tip_a_look_read_is_not_taken_for_vanished(
    repo: Path,
) -> None:
    """The look after a landing sees the tip that landing read; a task that landed after it
    (here, or on another workstation) is newer than that tip, not gone from the base. The
    fence sweep found a workstation continued after a pause relanding a teammate's task."""
    commit_on(repo, "council/t1/1", {"a.txt": "a\n"})
    commit_on(repo, "council/t2/1", {"b.txt": "b\n"})
    queue = MergeQueue(repo, "main")
    first = await queue.merge("s1", "council/t1/1", task_id="t1")
    second = await queue.merge("s2", "council/t2/1", task_id="t2")
    assert second.merge_commit is not None
    unknown = "f" * 40  # a landing on the team's remote this clone has not fetched yet

    assert await queue.lending.vanished({"t2": second.merge_commit}, at=first.base_after) == []
    assert await queue.lending.vanished({"t9": unknown}, at=first.base_after) == []
    # Read afresh, the base is the judge: reset behind t2's landing, it has vanished.
    git(repo, "update-ref", "refs/heads/main", first.base_after or "")
    (gone,) = await queue.lending.vanished({"t2": second.merge_commit})
    assert gone.task_id == "t2" and gone.base == first.base_after
