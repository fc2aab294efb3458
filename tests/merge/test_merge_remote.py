"""The merge queue in remote mode on real repositories: a bare remote and workstation clones.

The remote's branch is the base of record: each landing is a push under a lease on the tip it
fetched. What must hold: nothing lost and nothing landed twice across clones, a moved tip is
rebuilt on (never forced over), a server's refusal is an error carrying its words, the
write-ahead callback runs before any push, and the user's own checkout is never moved
behind their back.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from orchestrator.errors import GitError, RemotePushRefused, StaleClaim, WorkspaceError
from orchestrator.merge.queue import BeforePush, MergeQueue, MergeStatus, PushIntent
from tests.support.merge_repo import commit_on, edit_line, git, show, tip
from tests.support.remote_repo import Team, make_team, write_hook


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return make_team(tmp_path)


def queue(
    clone: Path,
    *,
    remote: str = "origin",
    before_push: BeforePush | None = None,
    max_attempts: int = 10,
) -> MergeQueue:
    return MergeQueue(
        clone, "main", remote=remote, before_push=before_push, max_attempts=max_attempts
    )


async def test_two_clones_each_land_and_the_remote_has_both_once(team: Team) -> None:
    a, b = team.clone("a"), team.clone("b")
    write_hook(a / ".git", "pre-push", "echo planted >&2; exit 1")  # local hooks never run
    commit_on(a, "council/t1/1", {"a.txt": "a\n"})
    commit_on(b, "council/t2/1", {"b.txt": "b\n"})

    first = await queue(a).merge("s1", "council/t1/1", task_id="t1")
    second = await queue(b).merge("s2", "council/t2/1", task_id="t2")

    assert first.status is second.status is MergeStatus.MERGED
    assert first.pushed_to == second.pushed_to == "origin"
    assert second.base_before == first.merge_commit  # b fetched a's landing before building
    assert team.tip() == second.merge_commit
    assert sorted(team.trailers()) == ["t1", "t2"]
    assert show(team.remote, "main", "a.txt") == "a" and show(team.remote, "main", "b.txt") == "b"
    assert tip(a, "refs/remotes/origin/main") == first.merge_commit
    assert tip(a, "main") == first.merge_commit  # a's own main followed (not checked out)
    assert first.event_data()["pushed_to"] == "origin" and not first.local_behind


async def test_two_clones_racing_lose_nothing_and_land_each_task_once(team: Team) -> None:
    clones = {name: team.clone(name) for name in ("a", "b")}
    tasks = {name: [f"{name}{n}" for n in range(4)] for name in clones}
    for name, clone in clones.items():
        for task in tasks[name]:
            commit_on(clone, f"council/{task}/1", {f"{task}.txt": f"{task}\n"})

    async def land_all(name: str) -> None:
        q = queue(clones[name], max_attempts=40)
        for task in tasks[name]:
            result = await q.merge(f"s-{task}", f"council/{task}/1", task_id=task)
            assert result.status is MergeStatus.MERGED

    async with anyio.create_task_group() as group:
        for name in clones:
            group.start_soon(land_all, name)

    landed = team.trailers()
    assert sorted(landed) == sorted(tasks["a"] + tasks["b"])  # each exactly once
    files = git(team.remote, "ls-tree", "--name-only", "main").split()
    assert {f"{t}.txt" for t in landed} <= set(files)


async def test_a_human_push_between_fetch_and_push_is_kept_and_built_on(team: Team) -> None:
    a = team.clone("a")
    commit_on(a, "council/t1/1", {"a.txt": "a\n"})
    intents: list[PushIntent] = []
    human: list[str] = []

    async def before_push(intent: PushIntent) -> None:
        intents.append(intent)
        if not human:  # a person pushes to the remote's main at exactly this moment
            person = team.clone("person", checked_out=True)
            human.append(commit_on(person, "main", {"human.txt": "human\n"}, message="human"))
            git(person, "push", "-q", "origin", "main")

    result = await queue(a, before_push=before_push).merge("s1", "council/t1/1", task_id="t1")

    assert result.status is MergeStatus.MERGED and result.attempts == 2
    assert [i.attempt for i in intents] == [1, 2]
    assert intents[1].base == human[0] and intents[1].merge_commit == result.merge_commit
    assert intents[0].task_id == "t1" and intents[0].session_id == "s1"
    assert intents[0].branch_tip == result.branch_tip
    assert git(team.remote, "rev-parse", "main^1") == human[0]  # the human's commit kept
    assert show(team.remote, "main", "human.txt") == "human"
    assert team.trailers() == ["t1"]


async def test_a_declining_server_hook_fails_with_its_message_and_nothing_forced(
    team: Team,
) -> None:
    a = team.clone("a")
    before = team.tip()
    commit_on(a, "council/t1/1", {"a.txt": "a\n"})
    declining = "echo 'main is protected: open a pull request' >&2\nexit 1"
    write_hook(team.remote, "pre-receive", declining)

    with pytest.raises(RemotePushRefused) as refused:
        await queue(a).merge("s1", "council/t1/1", task_id="t1")

    assert refused.value.reason == "pre-receive hook declined"
    assert "main is protected: open a pull request" in refused.value.server
    assert "main is protected" in str(refused.value) and "nothing was forced" in str(refused.value)
    assert isinstance(refused.value, GitError)
    assert team.tip() == before
    assert tip(a, "main") == before  # nothing moved locally either


async def test_a_raising_write_ahead_callback_pushes_nothing(team: Team) -> None:
    a = team.clone("a")
    before = team.tip()
    commit_on(a, "council/t1/1", {"a.txt": "a\n"})

    async def fenced_out(intent: PushIntent) -> None:
        raise StaleClaim(f"merge:{intent.task_id}", 3, 4)

    with pytest.raises(StaleClaim):
        await queue(a, before_push=fenced_out).merge("s1", "council/t1/1", task_id="t1")
    assert team.tip() == before and tip(a, "main") == before


async def test_a_task_another_clone_landed_is_already_merged_and_nothing_pushed(
    team: Team,
) -> None:
    a, b = team.clone("a"), team.clone("b")
    commit_on(a, "council/t1/1", {"a.txt": "a\n"})
    commit_on(b, "council/t1/2", {"a.txt": "a again\n"})  # the same task, another attempt
    landed = await queue(a).merge("s1", "council/t1/1", task_id="t1")
    before = team.tip()

    q = queue(b)
    assert await q.landed_commit("t1") == landed.merge_commit  # fetched first
    again = await q.merge("s2", "council/t1/2", task_id="t1")

    assert again.status is MergeStatus.ALREADY_MERGED and again.pushed_to is None
    assert again.merge_commit == landed.merge_commit and not again.tip_contained
    assert team.tip() == before and team.trailers() == ["t1"]


async def test_a_dirty_checkout_of_the_local_base_is_left_alone(team: Team) -> None:
    a = team.clone("a", checked_out=True)
    start = tip(a, "main")
    (a / "shared.txt").write_text(edit_line(2, "mine, uncommitted"))
    commit_on(a, "council/t1/1", {"a.txt": "a\n"})

    result = await queue(a).merge("s1", "council/t1/1", task_id="t1")

    assert result.status is MergeStatus.MERGED and result.local_behind
    assert team.tip() == result.merge_commit  # the landing happened
    assert tip(a, "main") == start and result.checkout is None
    assert (a / "shared.txt").read_text() == edit_line(2, "mine, uncommitted")
    assert not (a / "a.txt").exists()
    assert "local 'main' left at" in result.message and "uncommitted changes" in result.message
    assert result.event_data()["local_behind"] is True


async def test_a_clean_checkout_of_the_local_base_is_fast_forwarded(team: Team) -> None:
    a = team.clone("a", checked_out=True)
    commit_on(a, "council/t1/1", {"a.txt": "a\n"})

    result = await queue(a).merge("s1", "council/t1/1", task_id="t1")

    assert not result.local_behind and result.checkout == a
    assert tip(a, "main") == result.merge_commit == team.tip()
    assert (a / "a.txt").read_text() == "a\n"
    assert git(a, "status", "--porcelain", "--untracked-files=no") == ""


async def test_a_local_base_with_commits_of_its_own_is_left_alone(team: Team) -> None:
    a = team.clone("a")
    own = commit_on(a, "main", {"mine.txt": "local only\n"}, message="local")
    commit_on(a, "council/t1/1", {"a.txt": "a\n"}, start="origin/main")

    result = await queue(a).merge("s1", "council/t1/1", task_id="t1")

    assert result.status is MergeStatus.MERGED and result.local_behind
    assert tip(a, "main") == own and "commits of its own" in result.message
    assert "mine.txt" not in git(team.remote, "ls-tree", "--name-only", "main")


async def test_a_missing_or_unreachable_remote_is_a_clear_error(team: Team) -> None:
    a = team.clone("a")
    commit_on(a, "council/t1/1", {"a.txt": "a\n"})
    trunk = MergeQueue(a, "trunk", remote="origin")
    with pytest.raises(WorkspaceError, match="'trunk' does not exist on remote 'origin'"):
        await trunk.merge("s1", "council/t1/1", task_id="t1")
    assert await trunk.landed_commits(["t1"]) == {}
    git(a, "remote", "add", "gone", str(team.root / "no-such-remote.git"))
    with pytest.raises(GitError, match="fetch"):
        await queue(a, remote="gone").merge("s1", "council/t1/1", task_id="t1")


def test_bad_remote_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="remote name '-u' is not"):
        MergeQueue(tmp_path, "main", remote="-u")

    async def noop(intent: PushIntent) -> None:
        return None

    with pytest.raises(WorkspaceError, match="needs a remote"):
        MergeQueue(tmp_path, "main", before_push=noop)


async def test_a_stray_push_onto_the_base_is_said_and_never_counts_as_a_landing(
    team: Team, caplog: pytest.LogCaptureFixture
) -> None:
    """A CLI (or a person) pushes straight onto the remote's main, even with a forged
    ``Council-Task`` trailer: the queue says the base moved outside it, keeps the commit, and
    still lands the task it names, since no merge of the queue landed it."""
    a = team.clone("a")
    commit_on(a, "council/t0/1", {"zero.txt": "0\n"})
    q = queue(a)
    await q.merge("s0", "council/t0/1", task_id="t0")  # the queue knows the tip from here
    commit_on(a, "council/t1/1", {"a.txt": "a\n"})
    person = team.clone("stray", checked_out=True)
    git(person, "pull", "-q", "origin", "main")
    stray = commit_on(
        person, "main", {"stray.txt": "not the task's work\n"}, message="t1\n\nCouncil-Task: t1"
    )
    git(person, "push", "-q", "origin", "main")

    result = await q.merge("s1", "council/t1/1", task_id="t1")

    assert result.status is MergeStatus.MERGED  # not "already merged" by the forged trailer
    assert f"moved outside the merge queue: {stray[:10]}" in caplog.text
    assert git(team.remote, "rev-parse", "main^1") == stray  # kept, and built on
    assert show(team.remote, "main", "a.txt") == "a"
