"""The merge queue and checkouts of the base: fast-forward only when clean; hooks never run."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from orchestrator.merge.queue import MergeQueue, MergeStatus
from tests.support.git_trace import started_here, traced
from tests.support.merge_repo import commit_on, git, init_repo, show, tip

HOOKS = (
    "pre-commit",
    "commit-msg",
    "post-commit",
    "pre-merge-commit",
    "post-merge",
    "post-checkout",
    "post-rewrite",
    "reference-transaction",
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """``main`` checked out in the main checkout, as a user would have it."""
    return init_repo(tmp_path / "repo", checked_out=True)


def status(checkout: Path) -> str:
    return git(checkout, "status", "--porcelain")


async def test_clean_checkout_is_fast_forwarded(repo: Path) -> None:
    commit_on(repo, "council/t1/1", {"a.txt": "a\n", "README.md": "changed\n"})

    result = await MergeQueue(repo, "main").merge("s1", "council/t1/1", task_id="t1")

    assert result.status is MergeStatus.MERGED and result.checkout == repo
    assert git(repo, "rev-parse", "HEAD") == tip(repo) == result.merge_commit
    assert git(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert (repo / "a.txt").read_text() == "a\n"
    assert (repo / "README.md").read_text() == "changed\n"
    assert status(repo) == ""


async def test_what_a_landing_adds_is_read_from_git_files_not_asked(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted, not timed: the untracked files in the way of a fast-forward are looked for at
    the paths it adds, read from the loose trees ``merge-tree`` wrote (``git.tree_files``):
    no ``diff-tree``; packed, git is asked, with the same answer."""
    commit_on(repo, "council/t0/1", {"z.txt": "z\n"})
    queue = MergeQueue(repo, "main")
    await queue.merge("s0", "council/t0/1", task_id="t0")  # the repository looked at once
    commit_on(repo, "council/t1/1", {"docs/guide/a.md": "a\n", "b.txt": "b\n"})
    trace = traced(tmp_path, monkeypatch)

    result = await queue.merge("s1", "council/t1/1", task_id="t1")

    assert result.status is MergeStatus.MERGED and (repo / "docs/guide/a.md").exists()
    assert "diff-tree" not in started_here(trace) and "merge" in started_here(trace)
    commit_on(repo, "council/t2/1", {"c/d.txt": "c\n"})
    (repo / "c").write_text("the user's file called c\n")
    git(repo, "repack", "-a", "-d", "-q")
    git(repo, "prune-packed")  # the base's trees packed: the files cannot tell
    trace.unlink()

    waiting = await queue.merge("s2", "council/t2/1", task_id="t2")

    assert waiting.status is MergeStatus.WAITING_FOR_CHECKOUT
    assert waiting.details == [str(repo / "c")] and "diff-tree" in started_here(trace)


async def test_dirty_checkout_waits_and_nothing_moves_until_cleaned(repo: Path) -> None:
    commit_on(repo, "council/t1/1", {"a.txt": "a\n"})
    before = tip(repo)
    (repo / "README.md").write_text("my unsaved edit\n")
    queue = MergeQueue(repo, "main")

    waiting = await queue.merge("s1", "council/t1/1", task_id="t1")

    assert waiting.status is MergeStatus.WAITING_FOR_CHECKOUT and not waiting.landed
    assert waiting.checkout == repo and str(repo) in waiting.message
    assert "uncommitted changes" in waiting.message
    assert waiting.details == [" M README.md"]
    assert tip(repo) == before == waiting.base_after
    assert (repo / "README.md").read_text() == "my unsaved edit\n"
    assert not (repo / "a.txt").exists()

    git(repo, "checkout", "--", "README.md")
    landed = await queue.merge("s1", "council/t1/1", task_id="t1")

    assert landed.status is MergeStatus.MERGED
    assert (repo / "a.txt").read_text() == "a\n" and status(repo) == ""


async def test_staged_change_waits(repo: Path) -> None:
    commit_on(repo, "b", {"a.txt": "a\n"})
    (repo / "new.txt").write_text("staged\n")
    git(repo, "add", "new.txt")
    before = tip(repo)
    result = await MergeQueue(repo, "main").merge("s1", "b", task_id="t1")
    assert result.status is MergeStatus.WAITING_FOR_CHECKOUT
    assert result.details == ["A  new.txt"] and tip(repo) == before


async def test_unrelated_untracked_file_does_not_block(repo: Path) -> None:
    commit_on(repo, "b", {"a.txt": "a\n"})
    (repo / "notes.txt").write_text("mine\n")
    result = await MergeQueue(repo, "main").merge("s1", "b", task_id="t1")
    assert result.status is MergeStatus.MERGED
    assert (repo / "notes.txt").read_text() == "mine\n" and (repo / "a.txt").exists()


@pytest.mark.parametrize("ignored", [False, True])
async def test_untracked_or_ignored_file_in_the_way_waits(repo: Path, ignored: bool) -> None:
    commit_on(repo, "b", {"a.txt": "from the branch\n"})
    if ignored:
        with (repo / ".git" / "info" / "exclude").open("a") as exclude:
            exclude.write("a.txt\n")
    (repo / "a.txt").write_text("the user's own file\n")
    before = tip(repo)
    queue = MergeQueue(repo, "main")

    result = await queue.merge("s1", "b", task_id="t1")

    assert result.status is MergeStatus.WAITING_FOR_CHECKOUT
    # Named before git is asked (not parsed from its refusal): the path and the way out.
    assert result.message == (
        f"untracked file at {repo / 'a.txt'}, where the landing puts a file of its own: "
        f"move or delete {repo / 'a.txt'}"
    )
    assert result.details == [str(repo / "a.txt")]
    assert tip(repo) == before and git(repo, "rev-parse", "HEAD") == before
    assert (repo / "a.txt").read_text() == "the user's own file\n"

    (repo / "a.txt").unlink()
    assert (await queue.merge("s1", "b", task_id="t1")).status is MergeStatus.MERGED


async def test_merge_in_progress_in_the_checkout_waits(repo: Path) -> None:
    commit_on(repo, "other", {"o.txt": "o\n"})
    commit_on(repo, "b", {"a.txt": "a\n"})
    git(repo, "merge", "--no-commit", "--no-ff", "other")
    before = tip(repo)
    result = await MergeQueue(repo, "main").merge("s1", "b", task_id="t1")
    assert result.status is MergeStatus.WAITING_FOR_CHECKOUT
    assert result.message == (
        f"merge in progress in {repo}: finish it (git commit) or abort it (git merge --abort)"
    )
    assert tip(repo) == before


async def test_rebase_of_the_base_in_progress_waits(repo: Path) -> None:
    (repo / "README.md").write_text("main side\n")
    git(repo, "commit", "-q", "-am", "main side")
    commit_on(repo, "upstream", {"README.md": "upstream side\n"}, start="main~1")
    commit_on(repo, "b", {"a.txt": "a\n"})
    git(repo, "rebase", "upstream", check=False)  # stops on the conflict, HEAD detached
    before = tip(repo)
    queue = MergeQueue(repo, "main")

    result = await queue.merge("s1", "b", task_id="t1")

    assert result.status is MergeStatus.WAITING_FOR_CHECKOUT
    assert result.message == (
        f"rebase in progress in {repo}: finish it (git rebase --continue) or abort it "
        "(git rebase --abort)"
    )
    assert tip(repo) == before

    git(repo, "rebase", "--abort")
    assert (await queue.merge("s1", "b", task_id="t1")).status is MergeStatus.MERGED
    assert status(repo) == "" and (repo / "a.txt").exists()


async def test_untracked_file_where_the_landing_needs_a_directory_waits(repo: Path) -> None:
    commit_on(repo, "b", {"docs/guide/a.md": "a\n", "b.txt": "b\n"})
    (repo / "docs").write_text("the user's file called docs\n")
    (repo / "b.txt").write_text("mine\n")
    before = tip(repo)

    result = await MergeQueue(repo, "main").merge("s1", "b", task_id="t1")

    assert result.status is MergeStatus.WAITING_FOR_CHECKOUT and tip(repo) == before
    assert result.details == [str(repo / "b.txt"), str(repo / "docs")]  # git's order
    assert result.message.startswith(f"untracked file at {repo / 'b.txt'} and 1 more, where")
    assert result.message.endswith(f"move or delete {repo / 'b.txt'} and the others listed")


async def test_cherry_pick_in_progress_waits_naming_its_way_out(repo: Path) -> None:
    (repo / "README.md").write_text("main side\n")
    git(repo, "commit", "-q", "-am", "main side")
    commit_on(repo, "other", {"README.md": "other side\n"}, start="main~1")
    commit_on(repo, "b", {"a.txt": "a\n"})
    git(repo, "cherry-pick", "other", check=False)  # stops on the conflict
    before = tip(repo)

    result = await MergeQueue(repo, "main").merge("s1", "b", task_id="t1")

    assert result.status is MergeStatus.WAITING_FOR_CHECKOUT and tip(repo) == before
    assert result.message == (
        f"cherry-pick in progress in {repo}: finish it (git cherry-pick --continue) or abort "
        "it (git cherry-pick --abort)"
    )


async def test_bisect_from_the_base_waits_until_reset(repo: Path) -> None:
    (repo / "c.txt").write_text("c\n")
    git(repo, "add", "c.txt")
    git(repo, "commit", "-q", "-m", "c")
    commit_on(repo, "b", {"a.txt": "a\n"})
    git(repo, "bisect", "start", "main", "main~1")  # HEAD detached, bisecting from main
    before = tip(repo)
    queue = MergeQueue(repo, "main")

    result = await queue.merge("s1", "b", task_id="t1")

    assert result.status is MergeStatus.WAITING_FOR_CHECKOUT and tip(repo) == before
    assert result.message == f"bisect in progress in {repo}: end it there (git bisect reset)"
    git(repo, "bisect", "reset")
    assert (await queue.merge("s1", "b", task_id="t1")).status is MergeStatus.MERGED
    assert (repo / "a.txt").exists() and status(repo) == ""


async def test_linked_worktree_holding_the_base_is_fast_forwarded(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", checked_out=False)
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked), "main")
    commit_on(repo, "b", {"a.txt": "a\n"})

    result = await MergeQueue(repo, "main").merge("s1", "b", task_id="t1")

    assert result.status is MergeStatus.MERGED and result.checkout == linked
    assert (linked / "a.txt").read_text() == "a\n" and status(linked) == ""
    assert git(linked, "rev-parse", "HEAD") == tip(repo)
    assert not (repo / "a.txt").exists()  # the detached main checkout is not touched


async def test_deleted_worktree_holding_the_base_waits_until_pruned(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", checked_out=False)
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked), "main")
    shutil.rmtree(linked)
    commit_on(repo, "b", {"a.txt": "a\n"})
    before = tip(repo)
    queue = MergeQueue(repo, "main")

    waiting = await queue.merge("s1", "b", task_id="t1")

    assert waiting.status is MergeStatus.WAITING_FOR_CHECKOUT and waiting.checkout == linked
    assert "no longer exists" in waiting.message and "git worktree prune" in waiting.message
    assert tip(repo) == before
    git(repo, "worktree", "prune")
    landed = await queue.merge("s1", "b", task_id="t1")
    assert landed.status is MergeStatus.MERGED and landed.checkout is None


async def test_checkout_appearing_later_is_noticed(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", checked_out=False)
    commit_on(repo, "a", {"a.txt": "a\n"})
    commit_on(repo, "b", {"b.txt": "b\n"})
    queue = MergeQueue(repo, "main")
    first = await queue.merge("s1", "a", task_id="a")
    assert first.checkout is None

    git(repo, "switch", "-q", "main")
    (repo / "a.txt").write_text("edited\n")
    second = await queue.merge("s1", "b", task_id="b")

    assert second.status is MergeStatus.WAITING_FOR_CHECKOUT and second.checkout == repo
    assert second.details == [" M a.txt"]


async def test_bare_repository_has_no_checkout_to_protect(tmp_path: Path) -> None:
    source = init_repo(tmp_path / "source", checked_out=True)
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(bare))
    commit_on(bare, "b", {"a.txt": "a\n"})
    result = await MergeQueue(bare, "main").merge("s1", "b", task_id="t1")
    assert result.status is MergeStatus.MERGED and result.checkout is None
    assert show(bare, "main", "a.txt") == "a"


def plant_hooks(directory: Path, markers: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in HOOKS:
        hook = directory / name
        hook.write_text(f"#!/bin/sh\ntouch '{markers}/{name}'\n")
        hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


async def test_planted_hooks_never_run(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", checked_out=True)
    markers = tmp_path / "markers"
    markers.mkdir()
    plant_hooks(repo / ".git" / "hooks", markers)
    plant_hooks(tmp_path / "configured-hooks", markers)
    git(repo, "config", "core.hooksPath", str(tmp_path / "configured-hooks"))
    commit_on(repo, "a", {"a.txt": "a\n"})
    commit_on(repo, "b", {"b.txt": "b\n"})
    commit_on(repo, "c", {"a.txt": "clash\n"})
    # The hooks are live for plain git (the test's own commits fired them), or this test
    # would prove nothing.
    fired = {p.name for p in markers.iterdir()}
    assert "reference-transaction" in fired

    def fired_since() -> list[str]:
        names = sorted(p.name for p in markers.iterdir())
        for marker in markers.iterdir():
            marker.unlink()
        return names

    fired_since()
    queue = MergeQueue(repo, "main")
    assert (await queue.merge("s1", "a", task_id="a")).status is MergeStatus.MERGED  # checkout
    assert fired_since() == []
    git(repo, "switch", "-q", "--detach")
    fired_since()
    assert (await queue.merge("s1", "b", task_id="b")).status is MergeStatus.MERGED  # CAS
    assert (await queue.merge("s1", "c", task_id="c")).status is MergeStatus.CONFLICT
    assert (await queue.forecast_conflicts("b", "c")).conflicts is False
    assert fired_since() == []
