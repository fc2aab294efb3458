"""Session branches and rescue refs published on the shared remote for takeover, and the
remote push's porcelain parsing: another workstation continues from the published work, a
fenced-out publisher cannot overwrite newer work, and fetching never loses local commits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import RemotePushRefused, WorkspaceError
from orchestrator.git.publish import fetch_branch, fetch_rescue, publish_branch, publish_rescue
from orchestrator.git.remote_refs import parse_porcelain
from tests.support.merge_repo import commit_on, git, tip
from tests.support.remote_repo import Team, make_team, plain_git

BRANCH = "council/t1/1"
PUBLISHED = f"refs/council/branches/{BRANCH}"


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return make_team(tmp_path)


async def test_takeover_continues_and_the_fenced_out_publisher_is_refused(team: Team) -> None:
    a, b = team.clone("a"), team.clone("b")
    first = commit_on(a, BRANCH, {"a.txt": "a\n"})
    assert await publish_branch(plain_git(a), "origin", BRANCH) == first
    assert git(team.remote, "rev-parse", PUBLISHED) == first

    # b takes the task over: the branch arrives with a's commit, and b continues from it.
    assert await fetch_branch(plain_git(b), "origin", BRANCH) == first
    assert tip(b, BRANCH) == first
    second = commit_on(b, BRANCH, {"b.txt": "b\n"})
    assert await publish_branch(plain_git(b), "origin", BRANCH) == second

    # a, fenced out meanwhile, commits once more and tries to publish over b's work.
    commit_on(a, BRANCH, {"late.txt": "late\n"})
    with pytest.raises(RemotePushRefused) as refused:
        await publish_branch(plain_git(a), "origin", BRANCH)
    assert refused.value.reason == "stale info"
    assert git(team.remote, "rev-parse", PUBLISHED) == second


async def test_a_never_published_clone_cannot_overwrite_an_existing_publication(
    team: Team,
) -> None:
    a, b = team.clone("a"), team.clone("b")
    published = commit_on(a, BRANCH, {"a.txt": "a\n"})
    await publish_branch(plain_git(a), "origin", BRANCH)
    commit_on(b, BRANCH, {"other.txt": "other\n"})
    with pytest.raises(RemotePushRefused, match="stale info"):
        await publish_branch(plain_git(b), "origin", BRANCH)  # leased on "must not exist"
    assert git(team.remote, "rev-parse", PUBLISHED) == published


async def test_fetching_never_loses_local_commits(team: Team) -> None:
    a, b = team.clone("a"), team.clone("b")
    assert await fetch_branch(plain_git(b), "origin", BRANCH) is None  # nothing published
    assert await publish_branch(plain_git(a), "origin", BRANCH) is None  # no local branch
    published = commit_on(a, BRANCH, {"a.txt": "a\n"})
    await publish_branch(plain_git(a), "origin", BRANCH)
    own = commit_on(b, BRANCH, {"b.txt": "b only\n"})

    with pytest.raises(WorkspaceError, match="has commits that"):
        await fetch_branch(plain_git(b), "origin", BRANCH)
    assert tip(b, BRANCH) == own

    # An ancestor of the published tip moves forward; a checked-out branch never moves.
    git(b, "update-ref", f"refs/heads/{BRANCH}", tip(a, "main"))
    git(b, "worktree", "add", "-q", str(team.root / "b-wt"), BRANCH)
    with pytest.raises(WorkspaceError, match="is checked out in"):
        await fetch_branch(plain_git(b), "origin", BRANCH)
    git(b, "worktree", "remove", str(team.root / "b-wt"))
    assert await fetch_branch(plain_git(b), "origin", BRANCH) == published
    assert tip(b, BRANCH) == published


async def test_rescue_refs_travel_under_the_same_rules(team: Team) -> None:
    a, b = team.clone("a"), team.clone("b")
    rescued = commit_on(a, "scratch", {"wip.txt": "wip\n"})
    git(a, "update-ref", "refs/council/rescue/s1", rescued)

    assert await publish_rescue(plain_git(a), "origin", "s1") == rescued
    assert await fetch_rescue(plain_git(b), "origin", "s1") == rescued
    assert tip(b, "refs/council/rescue/s1") == rescued
    git(a, "update-ref", "refs/council/rescue/s1", commit_on(a, "scratch", {"more": "x\n"}))
    newer = commit_on(b, "other", {"b.txt": "b\n"}, start=rescued)
    git(b, "update-ref", "refs/council/rescue/s1", newer)
    assert await publish_rescue(plain_git(b), "origin", "s1") == newer  # adopted, then newer
    with pytest.raises(RemotePushRefused, match="stale info"):
        await publish_rescue(plain_git(a), "origin", "s1")


def test_porcelain_lines_are_parsed_and_classified() -> None:
    out = (
        "To /srv/remote.git\n"
        "!\tabc:refs/heads/main\t[rejected] (stale info)\n"
        "=\tdef:refs/council/branches/x\t[up to date]\n"
        "!\tHEAD:refs/heads/dev\t[remote rejected] (pre-receive hook declined)\n"
        "Done\n"
    )
    lines = parse_porcelain(out)
    assert [(x.target, x.ok, x.reason) for x in lines] == [
        ("refs/heads/main", False, "stale info"),
        ("refs/council/branches/x", True, "[up to date]"),
        ("refs/heads/dev", False, "pre-receive hook declined"),
    ]


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The git subcommands every ``GitCalls`` starts from now on (each still runs)."""
    from orchestrator.git.merge_tree import GitCalls

    started: list[str] = []
    real = GitCalls.run

    def run(self: GitCalls, *args: str, **kwargs: Any) -> Any:
        started.append(next(a for a in args if not a.startswith("-") and "=" not in a))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(GitCalls, "run", run)
    return started


async def test_a_publication_reads_its_refs_from_git_files(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the common git directory, the push and the record of it are the only git
    processes, first publication or later, and the lease is the same as git's own reading;
    a fenced-out publisher is still refused."""
    a, b = team.clone("a"), team.clone("b")
    common = a / ".git"
    started = _counting(monkeypatch)
    first = commit_on(a, BRANCH, {"a.txt": "a\n"})
    assert await publish_branch(plain_git(a), "origin", BRANCH, common) == first
    assert started == ["push", "update-ref"]
    second = commit_on(a, BRANCH, {"a2.txt": "a\n"})
    started.clear()
    assert await publish_branch(plain_git(a), "origin", BRANCH, common) == second
    assert started == ["push", "update-ref"]
    assert git(team.remote, "rev-parse", PUBLISHED) == second
    # Published already (a phase that committed nothing): not pushed again.
    started.clear()
    assert await publish_branch(plain_git(a), "origin", BRANCH, common) == second
    assert started == []
    # No such branch: nothing to publish, and git is not asked.
    started.clear()
    assert await publish_branch(plain_git(a), "origin", "council/none/1", common) is None
    assert started == []
    # b takes over and publishes; a, behind, is refused on the lease it read from its files.
    assert await fetch_branch(plain_git(b), "origin", BRANCH) == second
    third = commit_on(b, BRANCH, {"b.txt": "b\n"})
    assert await publish_branch(plain_git(b), "origin", BRANCH, b / ".git") == third
    commit_on(a, BRANCH, {"late.txt": "late\n"})
    with pytest.raises(RemotePushRefused, match="stale info"):
        await publish_branch(plain_git(a), "origin", BRANCH, common)
    assert git(team.remote, "rev-parse", PUBLISHED) == third


async def test_a_packed_branch_is_read_by_git(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    a = team.clone("a")
    tip_now = commit_on(a, BRANCH, {"a.txt": "a\n"})
    git(a, "gc", "-q")  # the commit packed, the refs in packed-refs: the files cannot tell
    started = _counting(monkeypatch)
    assert await publish_branch(plain_git(a), "origin", BRANCH, a / ".git") == tip_now
    # The branch's tip asked of git; the record's absence the files tell exactly.
    assert started == ["rev-parse", "push", "update-ref"]
    assert git(team.remote, "rev-parse", PUBLISHED) == tip_now
