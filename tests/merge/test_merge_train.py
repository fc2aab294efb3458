"""The merge train on real repositories: merges asked for together land in one lock hold, on one
read of the base, with one ref update (one push on a remote), each task exactly once.

Each test holds the queue's lock while its merges are asked for (``Held``), so the train they
form is known, not a matter of timing; then lets go and checks every member's outcome: a
conflicting member, a failing one (a missing branch, a secret, a refused write-ahead record),
a crash half-way, a leader cancelled before its train left.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.errors import SecretInHistory, StaleClaim, WorkspaceError
from orchestrator.merge.queue import MergeQueue, MergeResult, MergeStatus, PushIntent
from orchestrator.safety.crashpoints import ENV as CRASH_ENV
from tests.support.merge_repo import (
    commit_on,
    edit_line,
    first_parent_log,
    git,
    init_repo,
    show,
    tip,
)
from tests.support.remote_repo import Team, make_team

Outcome = MergeResult | Exception


class Held:
    """A merge lock the test holds while the merges it asks for queue up."""

    def __init__(self) -> None:
        self.lock = anyio.Lock()
        self.holds: list[str] = []  # the session of each train's leader, in order

    @asynccontextmanager
    async def __call__(self, session: str) -> AsyncIterator[None]:
        async with self.lock:
            self.holds.append(session)
            yield


async def train(
    queue: MergeQueue, held: Held, names: list[str], *, cancel_first: bool = False
) -> dict[str, Outcome]:
    """Ask for the merge of ``council/<name>/1`` for every name while ``held`` is held, let go
    once all of them queue, and return each outcome. ``cancel_first``: the first caller (the
    one that leads, waiting for the lock) is cancelled before the lock is let go."""
    outcomes: dict[str, Outcome] = {}

    async def land(name: str) -> None:
        try:
            outcomes[name] = await queue.merge(f"s-{name}", f"council/{name}/1", task_id=name)
        except Exception as exc:  # each member's own error is its outcome
            outcomes[name] = exc

    await held.lock.acquire()
    async with anyio.create_task_group() as group:
        first = anyio.CancelScope()

        async def land_first() -> None:
            with first:
                await land(names[0])

        group.start_soon(land_first)
        for name in names[1:]:
            group.start_soon(land, name)
        with anyio.fail_after(30):
            while queue.queued < len(names):
                await anyio.sleep(0.01)
        if cancel_first:
            first.cancel()
            while queue.queued >= len(names):
                await anyio.sleep(0.01)
        held.lock.release()
    return outcomes


def reflog(repo: Path) -> list[str]:
    return git(repo, "reflog", "show", "--format=%gs", "refs/heads/main").splitlines()


def landings(repo: Path, ref: str = "main") -> list[str]:
    """The task of each merge on ``ref``'s first-parent history, oldest first."""
    fmt = "%(trailers:key=Council-Task,valueonly)"
    return [line for line in reversed(first_parent_log(repo, ref, fmt)) if line]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = init_repo(tmp_path / "repo", checked_out=False)
    git(path, "config", "core.logAllRefUpdates", "always")
    return path


async def test_merges_asked_together_land_in_one_train_with_one_ref_update(repo: Path) -> None:
    start = tip(repo)
    names = [f"t{n}" for n in range(5)]
    for name in names:
        commit_on(repo, f"council/{name}/1", {f"{name}.txt": f"{name}\n"}, start=start)
    held = Held()
    queue = MergeQueue(repo, "main", merge_lock=held)
    before = len(reflog(repo))

    outcomes = await train(queue, held, names)

    results = [outcomes[name] for name in names]
    assert all(isinstance(r, MergeResult) and r.status is MergeStatus.MERGED for r in results)
    merged = [r for r in results if isinstance(r, MergeResult)]
    assert held.holds == ["s-t0"]  # one lock hold, led by the first to ask
    assert len(reflog(repo)) == before + 1  # one update of main for the five
    assert reflog(repo)[0] == "council: merge train of 5 (tasks t0, t1, t2, t3, t4)"
    assert landings(repo) == names  # one merge commit per task, in the order asked
    chain = list(reversed(first_parent_log(repo)))
    assert [r.merge_commit for r in merged] == chain[1:]
    assert [r.base_before for r in merged] == chain[:-1]  # each built on the one before
    assert {r.base_after for r in merged} == {tip(repo)}
    for name in names:
        assert show(repo, "main", f"{name}.txt") == name
    # Each car is a two-parent merge of its own branch's tip.
    for name, result in zip(names, merged, strict=True):
        assert git(repo, "rev-parse", f"{result.merge_commit}^2") == tip(repo, f"council/{name}/1")


async def test_a_member_conflicting_with_an_earlier_car_is_settled_and_the_rest_land(
    repo: Path,
) -> None:
    start = tip(repo)
    commit_on(repo, "council/a/1", {"shared.txt": edit_line(5, "from a")}, start=start)
    commit_on(repo, "council/b/1", {"shared.txt": edit_line(5, "from b")}, start=start)
    commit_on(repo, "council/c/1", {"c.txt": "c\n"}, start=start)
    held = Held()
    queue = MergeQueue(repo, "main", merge_lock=held)

    outcomes = await train(queue, held, ["a", "b", "c"])

    a, b, c = outcomes["a"], outcomes["b"], outcomes["c"]
    assert isinstance(a, MergeResult) and isinstance(b, MergeResult) and isinstance(c, MergeResult)
    assert a.status is MergeStatus.MERGED and c.status is MergeStatus.MERGED
    # b conflicts only with a (not with the base): as it would, had a landed first alone.
    assert b.status is MergeStatus.CONFLICT and b.conflicts == ["shared.txt"]
    assert b.base_before == start and b.base_after == tip(repo)
    assert c.base_before == a.merge_commit  # the conflicting member added no car
    assert landings(repo) == ["a", "c"]
    assert show(repo, "main", "shared.txt") == edit_line(5, "from a").rstrip("\n")
    assert tip(repo, "council/b/1")  # its branch kept, untouched


async def test_a_failing_member_lands_nothing_and_the_others_land(repo: Path) -> None:
    start = tip(repo)
    value = "tok-" + "7f3a9c" * 4
    commit_on(repo, "council/a/1", {"a.txt": "a\n"}, start=start)
    commit_on(repo, "council/s/1", {"s.txt": f"key={value}\n"}, start=start)
    commit_on(repo, "council/c/1", {"c.txt": "c\n"}, start=start)
    held = Held()
    queue = MergeQueue(
        repo, "main", merge_lock=held, secrets=lambda: {value: "adapters.x.env.K_TOKEN"}
    )

    # "gone" never had a branch: its own error, nobody else's.
    outcomes = await train(queue, held, ["a", "gone", "s", "c"])

    assert isinstance(outcomes["gone"], WorkspaceError)
    assert "council/gone/1" in str(outcomes["gone"])
    assert isinstance(outcomes["s"], SecretInHistory)
    assert value not in str(outcomes["s"])
    for name in ("a", "c"):
        result = outcomes[name]
        assert isinstance(result, MergeResult) and result.status is MergeStatus.MERGED
    assert landings(repo) == ["a", "c"]
    assert value not in git(repo, "log", "-p", "main")


async def test_a_leader_cancelled_before_its_train_left_hands_the_lead_on(repo: Path) -> None:
    names = ["t0", "t1", "t2"]
    for name in names:
        commit_on(repo, f"council/{name}/1", {f"{name}.txt": f"{name}\n"})
    held = Held()
    queue = MergeQueue(repo, "main", merge_lock=held)

    outcomes = await train(queue, held, names, cancel_first=True)

    assert "t0" not in outcomes  # cancelled: it asked for nothing that happened
    assert held.holds == ["s-t1"]  # the next in line led the train
    assert landings(repo) == ["t1", "t2"]
    assert queue.queued == 0


async def test_merges_asked_one_after_another_still_land_one_at_a_time(repo: Path) -> None:
    queue = MergeQueue(repo, "main")
    for name in ("x", "y"):
        commit_on(repo, f"council/{name}/1", {f"{name}.txt": f"{name}\n"})
        result = await queue.merge("s1", f"council/{name}/1", task_id=name)
        assert result.status is MergeStatus.MERGED
    assert reflog(repo)[:2] == [
        "council: merge council/y/1 (task y)",
        "council: merge council/x/1 (task x)",
    ]


# -- a crash half-way: each task lands once -------------------------------------------------


def _train_in_process(repo: str, names: list[str]) -> None:
    async def run() -> None:
        held = Held()
        await train(MergeQueue(repo, "main", merge_lock=held), held, names)

    anyio.run(run)


@pytest.mark.parametrize("crash_at", ["merge.committed", "merge.ref_updated"])
async def test_a_crash_mid_train_lands_each_task_once_when_merged_again(
    repo: Path, crash_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["t0", "t1", "t2"]
    start = tip(repo)
    for name in names:
        commit_on(repo, f"council/{name}/1", {f"{name}.txt": f"{name}\n"}, start=start)
    context = multiprocessing.get_context("spawn")
    crashed = context.Process(target=_train_in_process, args=(str(repo), names))
    monkeypatch.setenv(CRASH_ENV, crash_at)  # read when the child imports the orchestrator
    crashed.start()
    monkeypatch.delenv(CRASH_ENV)
    await anyio.to_thread.run_sync(crashed.join, 60)
    assert crashed.exitcode == -9  # SIGKILL at the crash point, in the middle of the train

    landed_before = landings(repo)
    assert landed_before == ([] if crash_at == "merge.committed" else names)
    queue = MergeQueue(repo, "main")
    again = [await queue.merge(f"s-{n}", f"council/{n}/1", task_id=n) for n in names]

    expected = MergeStatus.MERGED if crash_at == "merge.committed" else MergeStatus.ALREADY_MERGED
    assert [r.status for r in again] == [expected] * len(names)
    assert sorted(landings(repo)) == names  # each exactly once


# -- remote mode: one fetch, one push; a fenced member dropped, the cars after it rebuilt ----


def remote_queue(
    clone: Path, held: Held, before_push: Callable[[PushIntent], Any] | None = None
) -> MergeQueue:
    return MergeQueue(clone, "main", merge_lock=held, remote="origin", before_push=before_push)


@pytest.fixture
def team(tmp_path: Path) -> Team:
    return make_team(tmp_path)


async def test_a_remote_train_pushes_once_and_a_fenced_member_is_dropped(team: Team) -> None:
    clone = team.clone("a")
    base = team.tip()
    for name in ("t1", "t2", "t3"):
        commit_on(clone, f"council/{name}/1", {f"{name}.txt": f"{name}\n"})
    intents: list[PushIntent] = []

    async def write_ahead(intent: PushIntent) -> None:
        intents.append(intent)
        if intent.task_id == "t2":  # its claim was taken over: it must not land
            raise StaleClaim(f"tasks/{intent.task_id}", 3, 4)

    pushes = _count_pushes(clone)
    held = Held()
    outcomes = await train(remote_queue(clone, held, write_ahead), held, ["t1", "t2", "t3"])

    t1, t2, t3 = outcomes["t1"], outcomes["t2"], outcomes["t3"]
    assert isinstance(t2, StaleClaim)
    assert isinstance(t1, MergeResult) and isinstance(t3, MergeResult)
    assert t1.status is t3.status is MergeStatus.MERGED
    assert t1.pushed_to == t3.pushed_to == "origin"
    # t2 was announced on t1's commit and refused; t3 was then built on t1's, not on t2's.
    assert [(i.task_id, i.base) for i in intents] == [
        ("t1", base),
        ("t2", t1.merge_commit),
        ("t3", t1.merge_commit),
    ]
    assert t3.base_before == t1.merge_commit and team.tip() == t3.merge_commit
    assert team.trailers() == ["t3", "t1"]
    assert pushes() == 1


async def test_a_remote_train_whose_tip_moved_is_rebuilt_whole(team: Team) -> None:
    ours, theirs = team.clone("a"), team.clone("b")
    for name in ("t1", "t2"):
        commit_on(ours, f"council/{name}/1", {f"{name}.txt": f"{name}\n"})
    commit_on(theirs, "council/o1/1", {"o.txt": "o\n"})
    other = MergeQueue(theirs, "main", remote="origin")
    moved: list[str] = []

    async def another_workstation_lands_first(intent: PushIntent) -> None:
        if not moved:  # between our fetch and our push, once
            landed = await other.merge("s-o", "council/o1/1", task_id="o1")
            moved.append(landed.merge_commit or "")

    held = Held()
    outcomes = await train(
        remote_queue(ours, held, another_workstation_lands_first), held, ["t1", "t2"]
    )

    results = [outcomes["t1"], outcomes["t2"]]
    assert all(isinstance(r, MergeResult) and r.attempts == 2 for r in results)
    first = results[0]
    assert isinstance(first, MergeResult) and first.base_before == moved[0]
    assert list(reversed(team.trailers())) == ["o1", "t1", "t2"]


def _count_pushes(clone: Path) -> Callable[[], int]:
    """How many pushes ``clone`` made from now on: the remote's refs/heads/main updates, read
    from the bare remote's reflog (switched on here)."""
    remote = Path(git(clone, "remote", "get-url", "origin"))
    git(remote, "config", "core.logAllRefUpdates", "always")
    log = remote / "logs" / "refs" / "heads" / "main"
    start = len(log.read_text().splitlines()) if log.exists() else 0

    def count() -> int:
        return (len(log.read_text().splitlines()) if log.exists() else 0) - start

    return count


async def test_a_checkout_in_the_way_of_one_member_lets_the_others_land_alone(
    tmp_path: Path,
) -> None:
    repo = init_repo(tmp_path / "repo", checked_out=True)
    start = tip(repo)
    commit_on(repo, "council/a/1", {"a.txt": "a\n"}, start=start)
    commit_on(repo, "council/b/1", {"b.txt": "from b\n"}, start=start)
    commit_on(repo, "council/c/1", {"c.txt": "c\n"}, start=start)
    (repo / "b.txt").write_text("the user's own file\n")  # untracked, in the way of b only
    held = Held()
    queue = MergeQueue(repo, "main", merge_lock=held)

    outcomes = await train(queue, held, ["a", "b", "c"])

    a, b, c = outcomes["a"], outcomes["b"], outcomes["c"]
    assert isinstance(a, MergeResult) and isinstance(b, MergeResult) and isinstance(c, MergeResult)
    assert a.status is c.status is MergeStatus.MERGED
    assert b.status is MergeStatus.WAITING_FOR_CHECKOUT and "b.txt" in b.message
    assert landings(repo) == ["a", "c"]
    assert (repo / "a.txt").read_text() == "a\n" and (repo / "c.txt").read_text() == "c\n"
    assert (repo / "b.txt").read_text() == "the user's own file\n"  # never touched


async def test_a_member_that_failed_is_not_tried_again_when_the_train_is(team: Team) -> None:
    ours, theirs = team.clone("a"), team.clone("b")
    value = "tok-" + "5e1d0b" * 4
    commit_on(ours, "council/t1/1", {"t1.txt": "t1\n"})
    commit_on(ours, "council/s/1", {"s.txt": f"key={value}\n"})
    commit_on(theirs, "council/o1/1", {"o.txt": "o\n"})
    other = MergeQueue(theirs, "main", remote="origin")
    moved: list[str] = []

    async def another_workstation_lands_first(intent: PushIntent) -> None:
        if not moved:  # between our fetch and our push, once: the whole train goes again
            landed = await other.merge("s-o", "council/o1/1", task_id="o1")
            moved.append(landed.merge_commit or "")

    held = Held()
    queue = MergeQueue(
        ours,
        "main",
        merge_lock=held,
        remote="origin",
        before_push=another_workstation_lands_first,
        secrets=lambda: {value: "adapters.x.env.K_TOKEN"},
    )
    outcomes = await train(queue, held, ["t1", "s"])

    # The gate masked s's work on the first attempt; the second must not land the masked copy.
    assert isinstance(outcomes["s"], SecretInHistory)
    t1 = outcomes["t1"]
    assert isinstance(t1, MergeResult) and t1.status is MergeStatus.MERGED and t1.attempts == 2
    assert list(reversed(team.trailers())) == ["o1", "t1"]
    assert "s.txt" not in git(team.remote, "ls-tree", "--name-only", "main")
