"""One landing train for the whole team (``scheduler.team.train``), as real processes: three
workstations (``council run`` in three clones of one bare remote, one PostgreSQL database) whose
ready branches are landed by whichever of them holds the team's merge lock.

Each test holds the team's merge lock itself (a holder of its own in the store, renewed so it
never lapses) until every task is ready, so that the train that follows carries the branches
of every workstation; then lets it go and reads from the store and the remote who landed what.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import psycopg
import pytest

from orchestrator.locks.team_merge import NAMESPACE as MERGE_LOCK
from orchestrator.scheduler.attempts.landing_log import NAMESPACE as WRITE_AHEAD
from orchestrator.scheduler.team.train import NAMESPACE as TRAIN
from orchestrator.state.postgres.store import PostgresStateStore
from tests.support.merge_repo import git
from tests.support.team_helpers import Team, team_task
from tests.support.timing import patience

pytestmark = pytest.mark.postgres

T = TypeVar("T")
NAMES = ("a", "b", "c")
LOCK_KEY = "main"


def _with_store(dsn: str, work: Callable[[PostgresStateStore], Awaitable[T]]) -> T:
    async def run() -> T:
        async with await PostgresStateStore.connect(dsn) as store:
            return await work(store)

    return anyio.run(run)


class _LockHeld:
    """The team's merge lock held by the test: taken, renewed (a new version each time, so no
    workstation ever sees it lapse) and let go."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        data = {"holder": "test:1:lock", "token": "test", "since": "now", "lease": 60}
        _with_store(dsn, lambda s: s.put_record(MERGE_LOCK, LOCK_KEY, data, 0))

    def renew(self) -> None:
        async def again(store: PostgresStateStore) -> None:
            record = await store.get_record(MERGE_LOCK, LOCK_KEY)
            assert record is not None and record.data["holder"] == "test:1:lock"
            await store.put_record(MERGE_LOCK, LOCK_KEY, record.data, record.version)

        _with_store(self.dsn, again)

    def release(self) -> None:
        _with_store(self.dsn, lambda s: s.delete_record(MERGE_LOCK, LOCK_KEY))


def _records(dsn: str, namespace: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT key, doc FROM council.records WHERE namespace = %s", (namespace,)
        ).fetchall()
    return {key: doc["data"] for key, doc in rows}


def _ready_when_held(team: Team, lock: _LockHeld, count: int) -> dict[str, dict[str, Any]]:
    """Keep the lock until ``count`` tasks are ready to land; their ready records."""
    deadline = time.monotonic() + patience(90)
    while time.monotonic() < deadline:
        ready = {
            key: data
            for key, data in _records(team.dsn, TRAIN).items()
            if data.get("state") == "ready"
        }
        if len(ready) >= count:
            return ready
        for name, process in team.processes.items():
            assert process.poll() is None, f"workstation {name} ended early: {team.finish(name)}"
        lock.renew()
        time.sleep(0.2)
    raise AssertionError(f"not every task became ready: {_records(team.dsn, TRAIN)}")


def _plumb(repo: Path, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], input=stdin, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _moved_on(repo: Path, tip: str, name: str) -> str:
    """A commit on ``tip`` that adds the file ``name`` (made in ``repo``, a bare one)."""
    blob = _plumb(repo, "hash-object", "-w", "--stdin", stdin=f"not recorded: {name}\n")
    listing = _plumb(repo, "ls-tree", tip) + f"\n100644 blob {blob}\t{name}\n"
    tree = _plumb(repo, "mktree", stdin=listing.lstrip("\n"))
    env_free = _plumb(
        repo,
        "-c",
        "user.name=x",
        "-c",
        "user.email=x@x",
        "commit-tree",
        tree,
        "-p",
        tip,
        "-m",
        "moved on",
    )
    return env_free


def _owner(holder: str) -> str:
    return ":".join(holder.split(":")[:2])  # host:pid


def _start(team: Team, count: int, *, stale: float, env: dict[str, str] | None = None) -> None:
    tasks = [team_task(n, sleep=0.2) for n in range(1, count + 1)]
    for name in NAMES:
        team.workstation(name, tasks, sessions=2, heartbeat=0.3, stale=stale)
    for name in NAMES:
        team.start(name, env=env)


def test_one_workstation_lands_every_workstations_ready_branches(
    pg_dsn: str, tmp_path: Path
) -> None:
    team = Team(tmp_path, pg_dsn)
    lock = _LockHeld(pg_dsn)
    try:
        _start(team, 6, stale=10.0)
        ready = _ready_when_held(team, lock, 6)
        lock.release()
        results = {name: team.finish(name, timeout=120) for name in NAMES}
    finally:
        team.stop_all()
    for name, (code, report, err) in results.items():
        assert code == 0, f"workstation {name}: {err[-2000:]}"
        assert report["totals"]["done"] == 6
    assert sorted(team.landed_tasks()) == [f"t{n:02d}" for n in range(1, 7)]  # each once
    # Several workstations had branches ready (a landing's session frees its slot, so one that
    # started early may have taken more than two).
    owners = {_owner(data["holder"]) for data in ready.values()}
    assert len(owners) >= 2, ready
    # One workstation landed all six in one train: one push, each task's write-ahead record
    # naming it as the lander, and the owner where that was another workstation.
    intents = _records(pg_dsn, WRITE_AHEAD)
    assert sorted(intents) == sorted(ready)
    landers = {_owner(data["holder"]) for data in intents.values()}
    assert len(landers) == 1, intents
    lander = landers.pop()
    for task_id, data in intents.items():
        assert data["state"] == "pushed"
        assert data["branch_tip"] == ready[task_id]["tip"]  # the commit its owner recorded
        owner = _owner(ready[task_id]["holder"])
        assert _owner(data.get("owner", data["holder"])) == owner
    assert {o for o in owners if o != lander}, "the lander landed only its own branches"
    completed = team.events("merge.completed")
    assert sorted(e["task_id"] for e in completed) == sorted(ready)
    assert len({e["base_after"] for e in completed}) == 1  # one train, pushed once
    # Every answer was read and its record removed; each owner retired its worktree.
    assert _records(pg_dsn, TRAIN) == {}
    for name in NAMES:
        listed = git(tmp_path / name, "worktree", "list", "--porcelain")
        assert "council/t" not in listed, listed


def test_a_lander_killed_after_its_push_loses_no_task_and_lands_none_twice(
    pg_dsn: str, tmp_path: Path
) -> None:
    team = Team(tmp_path, pg_dsn)
    lock = _LockHeld(pg_dsn)
    try:
        # Whichever workstation leads the first train is killed (SIGKILL) right after its
        # push, before it answered anyone or recorded anything.
        _start(team, 6, stale=4.0, env={"COUNCIL_CRASH_AT": "merge.ref_updated"})
        ready = _ready_when_held(team, lock, 6)
        lock.release()
        deadline = time.monotonic() + patience(60)
        while all(team.processes[n].poll() is None for n in NAMES):
            assert time.monotonic() < deadline, "no lander reached its push"
            time.sleep(0.1)
        dead = [n for n in NAMES if team.processes[n].poll() is not None]
        assert len(dead) == 1, dead
        code, _report, err = team.finish(dead[0], timeout=10)
        assert code == -signal.SIGKILL and "crash point merge.ref_updated" in err, err[-2000:]
        survivors = [n for n in NAMES if n not in dead]
        results = {name: team.finish(name, timeout=120) for name in survivors}
    finally:
        team.stop_all()
    # The train had landed all six: the others' answers, and the dead lander's own tasks
    # (taken up again once its claims lapsed), were found already landed, never landed again.
    for name, (code, report, err) in results.items():
        assert code == 0, f"workstation {name}: {err[-2000:]}"
        assert report["totals"]["done"] == 6
    assert sorted(team.landed_tasks()) == sorted(ready)
    assert len(team.base_files()) == 6
    # The killed train said nothing; the next trains found each of its six landings there.
    assert team.events("merge.completed") == []
    again = {e["task_id"] for e in team.events("merge.already_merged")}
    assert again == set(ready)


def test_a_published_branch_moved_after_it_was_ready_lands_as_recorded(
    pg_dsn: str, tmp_path: Path
) -> None:
    team = Team(tmp_path, pg_dsn)
    lock = _LockHeld(pg_dsn)
    try:
        _start(team, 6, stale=10.0)
        ready = _ready_when_held(team, lock, 6)
        # Someone with the remote's key (a CLI that pushed, a teammate) moves every published
        # branch on, to a commit that adds a file of theirs.
        for task_id, data in ready.items():
            ref = f"refs/council/branches/{data['branch']}"
            moved = _moved_on(team.remote, data["tip"], f"evil-{task_id}.txt")
            git(team.remote, "update-ref", ref, moved, data["tip"])
        lock.release()
        results = {name: team.finish(name, timeout=120) for name in NAMES}
    finally:
        team.stop_all()
    for name, (code, report, err) in results.items():
        assert code == 0, f"workstation {name}: {err[-2000:]}"
        assert report["totals"]["done"] == 6
    assert sorted(team.landed_tasks()) == sorted(ready)
    # Nothing of the moves landed: each task's merge brought exactly the commit recorded.
    names = git(team.remote, "ls-tree", "-r", "--name-only", "main").split()
    assert not [n for n in names if n.startswith("evil")], names
    trailers = "--format=%H %P%x1f%(trailers:key=Council-Task,valueonly)"
    log = git(team.remote, "log", "--first-parent", trailers, "main")
    second_parents = {}
    for line in log.splitlines():
        head, _, task = line.partition("\x1f")
        parents = head.split()[1:]
        if task.strip():
            second_parents[task.strip()] = parents[1]
    assert second_parents == {task_id: data["tip"] for task_id, data in ready.items()}
