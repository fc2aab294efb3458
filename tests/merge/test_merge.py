"""The merge queue on real repositories: clean merges, never twice, serialized, conflicts, CAS.

The base is not checked out here (the main checkout is detached); ``test_merge_checkout``
covers a checked-out base and hooks.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from orchestrator.errors import InvalidIdError, MergeContention, WorkspaceError
from orchestrator.events import Event
from orchestrator.git.merge_tree import GitCalls, Tips, read_tips
from orchestrator.merge import cars as cars_module
from orchestrator.merge.queue import MergeQueue, MergeStatus
from orchestrator.merge.types import ConflictForecast
from orchestrator.state import FileStateStore
from tests.support.hops import count_hops
from tests.support.merge_repo import (
    all_refs,
    commit_on,
    edit_line,
    first_parent_log,
    git,
    init_repo,
    show,
    tip,
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", checked_out=False)


def trailer_count(repo: Path, task_id: str) -> int:
    return len(git(repo, "log", "--format=%H", f"--grep=^Council-Task: {task_id}$", "main").split())


async def test_clean_merge_lands_one_merge_commit_with_trailers(repo: Path) -> None:
    start = tip(repo)
    branch_tip = commit_on(repo, "council/t1/1", {"a.txt": "a\n"})
    queue = MergeQueue(repo, "main")

    result = await queue.merge("s1", "council/t1/1", task_id="t1")

    assert result.status is MergeStatus.MERGED and result.landed and result.tip_contained
    assert result.base_before == start and result.base_after == tip(repo)
    assert result.merge_commit == tip(repo) and result.branch_tip == branch_tip
    assert git(repo, "rev-parse", "main^1", "main^2").split() == [start, branch_tip]
    message = git(repo, "log", "-1", "--format=%B", "main")
    assert message.splitlines()[-2:] == ["Council-Task: t1", "Council-Session: s1"]
    assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>", "main") == (
        "CLI Council <council@localhost>|CLI Council <council@localhost>"
    )
    assert show(repo, "main", "a.txt") == "a"
    assert tip(repo, "council/t1/1") == branch_tip  # the branch is kept
    assert set(result.timings) == {"lock_wait", "git", "total"}
    assert result.timings["total"] >= result.timings["git"] > 0


async def test_custom_message_keeps_trailers_last(repo: Path) -> None:
    commit_on(repo, "b", {"a.txt": "a\n"})
    await MergeQueue(repo, "main").merge("s1", "b", task_id="t1", message="Add a.txt\n\nWhy.")
    assert git(repo, "log", "-1", "--format=%B", "main").splitlines() == [
        "Add a.txt",
        "",
        "Why.",
        "",
        "Council-Task: t1",
        "Council-Session: s1",
    ]


async def test_merge_commit_even_when_a_fast_forward_would_do(repo: Path) -> None:
    start = tip(repo)
    branch_tip = commit_on(repo, "b", {"a.txt": "a\n"})
    result = await MergeQueue(repo, "main").merge("s1", "b", task_id="t1")
    assert result.merge_commit != branch_tip
    assert git(repo, "rev-parse", "main^1", "main^2").split() == [start, branch_tip]
    # The landing is one commit whose diff to its first parent is the branch's whole change,
    # so `git revert -m 1` undoes exactly it.
    assert git(repo, "diff", "--name-only", "main^1", "main") == "a.txt"


async def test_same_branch_twice_is_already_merged(repo: Path) -> None:
    commit_on(repo, "council/t1/1", {"a.txt": "a\n"})
    queue = MergeQueue(repo, "main")
    first = await queue.merge("s1", "council/t1/1", task_id="t1")
    after_first = tip(repo)

    second = await queue.merge("s1", "council/t1/1", task_id="t1")

    assert second.status is MergeStatus.ALREADY_MERGED and second.landed
    assert second.merge_commit == first.merge_commit and second.tip_contained
    assert tip(repo) == after_first == second.base_after
    assert trailer_count(repo, "t1") == 1


async def test_recreated_branch_of_a_landed_task_is_already_merged(repo: Path) -> None:
    commit_on(repo, "council/t1/1", {"a.txt": "a\n"})
    first = await MergeQueue(repo, "main").merge("s1", "council/t1/1", task_id="t1")
    # Attempt 2 of the same task, recreated from the new base: its tip is not in the base.
    commit_on(repo, "council/t1/2", {"a.txt": "a, again\n"}, start="main")
    before = tip(repo)

    # A fresh queue (a restarted orchestrator) reads the trailers from history.
    result = await MergeQueue(repo, "main").merge("s2", "council/t1/2", task_id="t1")

    assert result.status is MergeStatus.ALREADY_MERGED
    assert result.merge_commit == first.merge_commit
    assert not result.tip_contained  # this attempt's commits are not on the base: keep them
    assert tip(repo) == before and trailer_count(repo, "t1") == 1


async def test_trailers_written_by_another_queue_are_seen(repo: Path) -> None:
    ours, theirs = MergeQueue(repo, "main"), MergeQueue(repo, "main")
    commit_on(repo, "warmup", {"w.txt": "w\n"})
    await ours.merge("s1", "warmup", task_id="warmup")  # ours has read the history now
    commit_on(repo, "council/t2/1", {"b.txt": "b\n"}, start="main")
    landed = await theirs.merge("s9", "council/t2/1", task_id="t2")
    commit_on(repo, "council/t2/2", {"b.txt": "b2\n"}, start="main")

    result = await ours.merge("s1", "council/t2/2", task_id="t2")

    assert result.status is MergeStatus.ALREADY_MERGED
    assert result.merge_commit == landed.merge_commit


async def test_base_rewound_past_a_landing_merges_again(repo: Path) -> None:
    start = tip(repo)
    commit_on(repo, "b", {"a.txt": "a\n"})
    queue = MergeQueue(repo, "main")
    await queue.merge("s1", "b", task_id="t1")
    git(repo, "update-ref", "refs/heads/main", start)  # someone reset the base

    result = await queue.merge("s1", "b", task_id="t1")

    assert result.status is MergeStatus.MERGED
    assert result.base_before == start and trailer_count(repo, "t1") == 1


async def test_contained_tip_without_trailer_is_already_merged(repo: Path) -> None:
    old = tip(repo)
    commit_on(repo, "main", {"x.txt": "x\n"})  # base moved on; "old-branch" points behind it
    git(repo, "branch", "old-branch", old)
    before = tip(repo)

    result = await MergeQueue(repo, "main").merge("s1", "old-branch", task_id="t9")

    assert result.status is MergeStatus.ALREADY_MERGED and result.merge_commit is None
    assert result.tip_contained
    assert tip(repo) == before


async def test_branch_without_changes_still_gets_contained(repo: Path) -> None:
    # Same content as the base but not its ancestor: a merge commit makes the tip contained.
    commit_on(repo, "main", {"x.txt": "x\n"})
    empty = commit_on(repo, "b", {"x.txt": "x\n"}, start="main~1", message="same change")
    result = await MergeQueue(repo, "main").merge("s1", "b", task_id="t1")
    assert result.status is MergeStatus.MERGED
    git(repo, "merge-base", "--is-ancestor", empty, "main")  # raises unless contained


async def test_concurrent_merges_all_land_in_a_first_parent_chain(repo: Path) -> None:
    start = tip(repo)
    names = [f"t{n}" for n in range(8)]
    for name in names:
        commit_on(repo, f"council/{name}/1", {f"{name}.txt": f"{name}\n"}, start=start)
    queue = MergeQueue(repo, "main")
    results = {}

    async def land(name: str) -> None:
        results[name] = await queue.merge(f"s-{name}", f"council/{name}/1", task_id=name)

    async with anyio.create_task_group() as group:
        for name in names:
            group.start_soon(land, name)

    assert {r.status for r in results.values()} == {MergeStatus.MERGED}
    chain = first_parent_log(repo)
    assert len(chain) == len(names) + 1 and chain[-1] == start
    assert {r.merge_commit for r in results.values()} == set(chain[:-1])
    for name in names:
        assert show(repo, "main", f"{name}.txt") == name
        assert trailer_count(repo, name) == 1
    # Serialized: each merge's base_before is the previous merge commit.
    assert sorted(r.base_before for r in results.values()) == sorted(chain[1:])


async def test_conflicting_branches_first_lands_second_reports_paths(repo: Path) -> None:
    one = commit_on(repo, "council/a/1", {"shared.txt": edit_line(5, "from a"), "a.txt": "a\n"})
    two = commit_on(repo, "council/b/1", {"shared.txt": edit_line(5, "from b"), "b.txt": "b\n"})
    queue = MergeQueue(repo, "main")
    first = await queue.merge("s1", "council/a/1", task_id="a")
    after_first = tip(repo)

    second = await queue.merge("s2", "council/b/1", task_id="b")

    assert first.status is MergeStatus.MERGED
    assert second.status is MergeStatus.CONFLICT and not second.landed
    assert second.conflicts == ["shared.txt"]
    assert any("CONFLICT (content)" in line for line in second.details)
    assert tip(repo) == after_first == second.base_after
    assert git(repo, "grep", "-e", "<<<<<<<", "main", check=False) == ""
    assert "from a" in show(repo, "main", "shared.txt")
    assert tip(repo, "council/a/1") == one and tip(repo, "council/b/1") == two


async def test_modify_delete_conflict_names_the_path(repo: Path) -> None:
    commit_on(repo, "a", {"README.md": "changed\n"})
    commit_on(repo, "b", {"README.md": None})
    queue = MergeQueue(repo, "main")
    await queue.merge("s1", "a", task_id="a")
    result = await queue.merge("s1", "b", task_id="b")
    assert result.status is MergeStatus.CONFLICT and result.conflicts == ["README.md"]


async def test_base_moved_between_read_and_update_is_retried(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_on(repo, "council/t1/1", {"a.txt": "a\n"})
    moved: list[str] = []

    def read_then_another_writer(
        calls: GitCalls, base_ref: str, ref: str, common_dir: Path | None = None
    ) -> Tips:
        tips = read_tips(calls, base_ref, ref, common_dir)
        if not moved:  # another process lands a commit right after our read
            moved.append(commit_on(repo, "main", {"other.txt": "other\n"}, message="other"))
        return tips

    monkeypatch.setattr(cars_module, "read_tips", read_then_another_writer)
    result = await MergeQueue(repo, "main").merge("s1", "council/t1/1", task_id="t1")

    assert result.status is MergeStatus.MERGED and result.attempts == 2
    assert result.base_before == moved[0]
    assert git(repo, "rev-parse", "main^1") == moved[0]
    assert show(repo, "main", "a.txt") == "a" and show(repo, "main", "other.txt") == "other"


async def test_base_that_never_stops_moving_is_a_clear_error(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_on(repo, "b", {"a.txt": "a\n"})

    def always_moving(
        calls: GitCalls, base_ref: str, ref: str, common_dir: Path | None = None
    ) -> Tips:
        tips = read_tips(calls, base_ref, ref, common_dir)
        commit_on(repo, "main", {"n.txt": tips.base}, message="churn")
        return tips

    monkeypatch.setattr(cars_module, "read_tips", always_moving)
    with pytest.raises(MergeContention, match="moved or was locked during each of 3 merge"):
        await MergeQueue(repo, "main", max_attempts=3).merge("s1", "b", task_id="t1")
    assert "a.txt" not in git(repo, "ls-tree", "--name-only", "main")


async def test_stale_ref_lock_is_named_and_reported_as_failed(repo: Path) -> None:
    commit_on(repo, "b", {"a.txt": "a\n"})
    before = tip(repo)
    (repo / ".git" / "refs" / "heads" / "main.lock").write_text("")  # a crashed writer's
    seen: list[Event] = []
    async with FileStateStore.for_repo(repo) as store:
        store.subscribe(seen.append)
        queue = MergeQueue(repo, "main", store=store, max_attempts=2)
        with pytest.raises(MergeContention, match=r"main\.lock"):
            await queue.merge("s1", "b", task_id="t1")
    assert tip(repo) == before
    assert [e.type for e in seen] == ["merge.started", "merge.failed"]
    assert seen[1].level == "warning" and "main.lock" in seen[1].data["error"]


def merge_in_process(repo: str, names: list[str], start: Any) -> None:
    start.wait()  # both processes begin merging at the same moment

    async def run() -> None:
        queue = MergeQueue(repo, "main")  # its own in-process lock only: the CAS must hold
        for name in names:
            result = await queue.merge("s1", f"council/{name}/1", task_id=name)
            assert result.status is MergeStatus.MERGED, result

    anyio.run(run)


async def test_two_processes_merging_at_once_lose_nothing(repo: Path) -> None:
    groups = [[f"p{p}-{n}" for n in range(8)] for p in range(2)]
    for name in (n for group in groups for n in group):
        commit_on(repo, f"council/{name}/1", {f"{name}.txt": f"{name}\n"})
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(groups))
    processes = [
        context.Process(target=merge_in_process, args=(str(repo), group, start)) for group in groups
    ]
    for process in processes:
        process.start()
    for process in processes:
        await anyio.to_thread.run_sync(process.join, 240)
    assert [p.is_alive() for p in processes] == [False, False]
    assert [p.exitcode for p in processes] == [0, 0]
    assert len(first_parent_log(repo)) == 17
    for name in (n for group in groups for n in group):
        assert trailer_count(repo, name) == 1 and show(repo, "main", f"{name}.txt") == name


async def test_forecast_conflicts_changes_no_ref(repo: Path) -> None:
    commit_on(repo, "a", {"shared.txt": edit_line(2, "a"), "a.txt": "a\n"})
    commit_on(repo, "b", {"shared.txt": edit_line(2, "b"), "README.md": None})
    commit_on(repo, "c", {"c.txt": "c\n"})
    refs = all_refs(repo)
    queue = MergeQueue(repo, "main")

    clash = await queue.forecast_conflicts("a", "b")
    calm = await queue.forecast_conflicts("a", "c")

    assert clash.conflicts and clash.paths == ["shared.txt"]
    assert clash.details and "shared.txt" in clash.details[0]
    assert not calm.conflicts and calm.paths == []
    assert all_refs(repo) == refs
    assert git(repo, "status", "--porcelain") == ""


async def test_many_forecasts_are_one_worker_thread_call_each_with_its_answer(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tip(repo)
    git(repo, "branch", "idle", "main")  # a session that has not committed yet
    commit_on(repo, "a", {"shared.txt": edit_line(2, "a")})
    commit_on(repo, "b", {"shared.txt": edit_line(2, "b")})
    commit_on(repo, "c", {"c.txt": "c\n"})
    queue = MergeQueue(repo, "main")
    hops = count_hops(monkeypatch)
    found = await queue.forecast_many(
        [("a", "b", None), ("nope", "b", None), ("idle", "b", base), ("c", "b", base)]
    )
    assert len(hops) == 1
    clash, missing, idle, calm = found
    assert isinstance(clash, ConflictForecast) and clash.paths == ["shared.txt"]
    assert isinstance(missing, WorkspaceError) and "'nope' does not exist" in str(missing)
    assert isinstance(idle, ConflictForecast) and not idle.conflicts
    assert isinstance(calm, ConflictForecast) and not calm.conflicts
    assert await queue.forecast_many([]) == [] and len(hops) == 1


async def test_a_branch_still_at_its_fork_point_is_forecast_without_merge_tree(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orchestrator.merge.forecast as queue_module

    base = tip(repo)
    git(repo, "branch", "idle", "main")  # a session that has not committed yet
    commit_on(repo, "a", {"shared.txt": edit_line(2, "a")})
    commit_on(repo, "b", {"shared.txt": edit_line(2, "b")})
    ran: list[tuple[str, ...]] = []
    real = queue_module.merge_trees

    def counted(calls: Any, *refs: str) -> Any:
        ran.append(refs)
        return real(calls, *refs)

    monkeypatch.setattr(queue_module, "merge_trees", counted)
    queue = MergeQueue(repo, "main")

    idle = await queue.forecast_conflicts("idle", "b", a_forked_at=base)
    assert not idle.conflicts and ran == []  # read from git's files: no process
    # Once it has committed, the forecast runs as before and finds the clash.
    clash = await queue.forecast_conflicts("a", "b", a_forked_at=base)
    assert clash.conflicts and clash.paths == ["shared.txt"] and len(ran) == 1


async def test_missing_branches_and_bad_names_are_clear_errors(repo: Path) -> None:
    queue = MergeQueue(repo, "main")
    with pytest.raises(WorkspaceError, match=r"branch 'council/nope/1' does not exist"):
        await queue.merge("s1", "council/nope/1", task_id="t1")
    with pytest.raises(WorkspaceError, match=r"branch 'nope' does not exist"):
        await queue.forecast_conflicts("main", "nope")
    commit_on(repo, "b", {"a.txt": "a\n"})
    with pytest.raises(WorkspaceError, match=r"base branch 'trunk' does not exist"):
        await MergeQueue(repo, "trunk").merge("s1", "b", task_id="t1")
    for bad in ("main@{1}", "b~1", "-x", "a..b", "b^", ""):
        with pytest.raises(WorkspaceError, match="not a valid git branch name"):
            await queue.merge("s1", bad, task_id="t1")
    with pytest.raises(InvalidIdError):
        await queue.merge("s1", "b", task_id="../t1")
    assert first_parent_log(repo) == [tip(repo)]


async def test_hot_path_starts_three_git_processes(repo: Path) -> None:
    for name in ("a", "b", "c"):
        commit_on(repo, name, {f"{name}.txt": name})
    queue = MergeQueue(repo, "main", secrets=dict)  # no secret known: that scan reads nothing
    first = await queue.merge("s1", "a", task_id="a")
    rest = [await queue.merge("s1", name, task_id=name) for name in ("b", "c")]
    # merge-tree, update-ref: the tips and the base's tree come from git's files (the base
    # tip is a loose commit), the merge commit is written as commit-tree writes it
    # (``git.loose_objects``); the check for credentials nobody declared adds one diff from
    # the merge base (``merge.secret_added``). The first merge also reads the trailer
    # history and the common git dir once.
    assert first.git_calls == 5
    assert [r.git_calls for r in rest] == [3, 3]


async def test_a_packed_base_is_read_with_one_rev_parse(repo: Path) -> None:
    for name in ("a", "b"):
        commit_on(repo, name, {f"{name}.txt": name})
    queue = MergeQueue(repo, "main", secrets=dict)
    await queue.merge("s1", "a", task_id="a")
    git(repo, "repack", "-a", "-d", "-q")
    git(repo, "prune-packed")  # no loose commit left: the files cannot tell the base's tree
    second = await queue.merge("s1", "b", task_id="b")
    # rev-parse, merge-tree, update-ref (the merge commit written without a process: its
    # packed parent is the base git named); and the credential check's diff
    assert second.status is MergeStatus.MERGED and second.git_calls == 4
    assert show(repo, "main", "a.txt") == "a" and show(repo, "main", "b.txt") == "b"


async def test_events_and_custom_lock(repo: Path) -> None:
    commit_on(repo, "a", {"shared.txt": edit_line(1, "a")})
    commit_on(repo, "b", {"shared.txt": edit_line(1, "b")})
    entered: list[str] = []
    lock = anyio.Lock()

    @asynccontextmanager
    async def merge_lock(session_id: str) -> AsyncIterator[None]:
        async with lock:
            entered.append(session_id)
            yield

    seen: list[Event] = []
    async with FileStateStore.for_repo(repo) as store:
        store.subscribe(seen.append)
        queue = MergeQueue(repo, "main", merge_lock=merge_lock, store=store)
        await queue.merge("s1", "a", task_id="a")
        await queue.merge("s1", "a", task_id="a")
        await queue.merge("s2", "b", task_id="b")

    assert entered == ["s1", "s1", "s2"]
    assert [e.type for e in seen] == [
        "merge.started",
        "merge.completed",
        "merge.started",
        "merge.already_merged",
        "merge.started",
        "merge.conflict",
    ]
    assert seen[1].data["task_id"] == "a" and seen[1].data["merge_commit"]
    assert seen[5].data["conflicts"] == ["shared.txt"]
