"""The git of stacked pull requests (``merge.stack_git``) on real repositories: exact commits
only (a branch someone moved on the remote is refused, never followed), several heads merged
into one start, a change below carried up clean or with its conflicts kept as markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import CouncilError, WorkspaceError
from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.repo import Git
from orchestrator.merge.queue import MergeQueue
from orchestrator.merge.stack_git import (
    carry_up,
    have_commit,
    merge_heads,
    move_branch,
    unresolved,
)
from tests.support.merge_repo import git
from tests.support.remote_repo import make_team


def _commit(repo: Path, branch: str, start: str, files: dict[str, str]) -> str:
    git(repo, "checkout", "-q", "-B", branch, start)
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"{branch}: {', '.join(files)}")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, GitCalls]:
    team = make_team(tmp_path)
    here = team.clone("here")
    there = team.clone("there")
    return here, there, GitCalls(Git(here, tmp_path / "hooks"))


def test_a_head_not_here_is_fetched_and_a_moved_branch_is_refused(
    setup: tuple[Path, Path, GitCalls],
) -> None:
    _, there, calls = setup
    pushed = _commit(there, "council/one", "main", {"one.txt": "1\n"})
    git(there, "push", "-q", "origin", "council/one")
    have_commit(calls, "origin", "council/one", pushed)  # fetched: now here
    assert calls.rev_parse(pushed) == pushed
    # Someone force-pushes the branch; a head recorded elsewhere and never here is refused.
    recorded = _commit(there, "council/two", "main", {"two.txt": "2\n"})
    moved = _commit(there, "council/two", "main", {"two.txt": "moved\n"})
    git(there, "push", "-q", "-f", "origin", "council/two")
    with pytest.raises(WorkspaceError, match="moved by someone else"):
        have_commit(calls, "origin", "council/two", recorded)
    assert calls.rev_parse(moved) == moved  # what the remote shows was fetched, not used
    with pytest.raises(WorkspaceError, match="not a commit id"):
        have_commit(calls, "origin", "council/two", "main")


def test_several_heads_merge_into_one_start_and_a_conflict_between_them_is_refused(
    setup: tuple[Path, Path, GitCalls],
) -> None:
    here, _, calls = setup
    a = _commit(here, "a", "main", {"a.txt": "a\n"})
    b = _commit(here, "b", "main", {"b.txt": "b\n"})
    c = _commit(here, "c", "main", {"c.txt": "c\n"})
    start = merge_heads(calls, [a, b, c], "council: top starts on a, b, c")
    parents = git(here, "rev-list", "--parents", "-n", "1", start).split()[1:]
    assert parents == [a, b, c]
    assert git(here, "show", f"{start}:b.txt") == "b" and git(here, "show", f"{start}:c.txt") == "c"
    clash = _commit(here, "d", "main", {"a.txt": "not a\n"})
    with pytest.raises(WorkspaceError, match=r"conflict with each other in: a\.txt"):
        merge_heads(calls, [a, clash], "x")


def test_a_change_below_is_carried_up_clean_or_with_markers_for_the_cli(
    setup: tuple[Path, Path, GitCalls],
) -> None:
    here, _, calls = setup
    below = _commit(here, "council/one/1", "main", {"one.txt": "1\n"})
    above = _commit(here, "council/two/1", below, {"two.txt": "2\n"})
    changed = _commit(here, "council/one/1", below, {"review.txt": "r\n"})
    carried = carry_up(calls, above, changed, "council: two carried onto one")
    assert carried.conflicts == ()
    parents = git(here, "rev-list", "--parents", "-n", "1", carried.commit).split()[1:]
    assert parents == [above, changed]  # a fast-forward of the work: never forced
    assert git(here, "show", f"{carried.commit}:review.txt") == "r"
    assert unresolved(calls, carried.commit, ["two.txt"]) == []
    clash = _commit(here, "council/one/1", changed, {"two.txt": "from one\n"})
    conflicted = carry_up(calls, above, clash, "council: two carried onto one again")
    assert conflicted.conflicts == ("two.txt",)
    assert unresolved(calls, conflicted.commit, ["two.txt", "gone.txt"]) == ["two.txt"]
    move_branch(calls, "council/two/1", conflicted.commit, above)
    assert git(here, "rev-parse", "council/two/1") == conflicted.commit
    with pytest.raises(WorkspaceError, match="moved meanwhile"):
        move_branch(calls, "council/two/1", carried.commit, above)


async def test_a_carry_cut_short_by_a_crash_is_taken_up_as_it_was_made(
    setup: tuple[Path, Path, GitCalls],
) -> None:
    here = setup[0]
    below = _commit(here, "council/one/1", "main", {"one.txt": "1\n"})
    above = _commit(here, "council/two/1", below, {"two.txt": "2\n"})
    changed = _commit(here, "council/one/1", below, {"two.txt": "from one\n"})
    git(here, "checkout", "-q", "--detach")
    lending = MergeQueue(here, "main").lending
    head, new = ("council/two", above), ("council/one", changed)
    first = await lending.stack_carry("origin", "council/two/1", head, new, "carried")
    assert first.conflicts == ("two.txt",)
    assert git(here, "rev-parse", "council/two/1") == first.commit
    # Killed before the carry was recorded: the next look carries again from the head as
    # recorded, and takes the kept branch's merge of the same two as it is.
    again = await lending.stack_carry("origin", "council/two/1", head, new, "carried")
    assert again == first
    # A kept branch moved to anything else is refused, never overwritten.
    other = _commit(here, "council/two/1", above, {"x.txt": "x\n"})
    git(here, "checkout", "-q", "--detach")
    with pytest.raises(CouncilError, match=r"not at the pushed head"):
        await lending.stack_carry("origin", "council/two/1", head, new, "carried")
    assert git(here, "rev-parse", "council/two/1") == other
