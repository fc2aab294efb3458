"""The collision radar team-wide on PostgreSQL: two workstations (two clones of one remote, two
stores on one database) each run a session; each radar publishes its sessions' sightings in
the store and compares its own with everyone's, so a collision across workstations is found,
seen by both, said once, graded a conflict once the other's tip is fetched, and resolved when a
side ends."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.events import Event
from orchestrator.radar.engine import Radar
from orchestrator.radar.overlap import Severity
from orchestrator.radar.records import SIGHTINGS, collisions, collisions_for, sightings
from orchestrator.state.postgres.store import PostgresStateStore
from tests.support.radar_helpers import add_session, git, make_repo, repo_git


def clone(remote: Path, where: Path) -> Path:
    git(where.parent, "clone", "-q", str(remote), str(where))
    git(where, "config", "user.email", "t@example.com")
    git(where, "config", "user.name", "T")
    return where


def two_clones(tmp_path: Path) -> tuple[Path, Path]:
    """Two workstations' clones of one remote."""
    origin = make_repo(tmp_path / "origin")
    remote = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(origin), str(remote))
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    return clone(remote, tmp_path / "one" / "repo"), clone(remote, tmp_path / "two" / "repo")


async def test_a_collision_across_two_workstations(
    tmp_path: Path, stores: tuple[PostgresStateStore, PostgresStateStore]
) -> None:
    store_1, store_2 = stores
    clone_1, clone_2 = two_clones(tmp_path)
    said_1: list[Event] = []
    said_2: list[Event] = []
    store_1.subscribe(said_1.append)
    store_2.subscribe(said_2.append)
    radar_1 = Radar(store_1, repo_git(clone_1), "refs/heads/main", workstation="ws1", team=True)
    radar_2 = Radar(store_2, repo_git(clone_2), "refs/heads/main", workstation="ws2", team=True)
    a = add_session(clone_1, "task-a", "sa")
    b = add_session(clone_2, "task-b", "sb")
    a.edit("src/mod.py", "y = x + 1", "y = x + 10")
    a.commit()
    b.edit("src/mod.py", "y = x + 1", "y = x + 20")
    b.commit()

    await radar_1.look([a.live])
    assert await collisions(store_2) == []  # b not sighted yet
    await radar_2.look([b.live])  # b's radar compares b with a's sighting from the store
    (found,) = await collisions(store_1)  # seen from the other workstation
    assert found.tasks == ("task-a", "task-b") and found.paths == ["src/mod.py"]
    assert (found.a.workstation, found.b.workstation) == ("ws1", "ws2")
    # a's tip is not in the second clone: graded by the hunks, not a merge
    assert found.severity == Severity.HUNKS and not found.conflict
    assert [c.key for c in await collisions_for(store_1, "task-a")] == [found.key]
    assert {s.session_id: s.workstation for s in await sightings(store_1)} == {
        "sa": "ws1",
        "sb": "ws2",
    }

    # b's branch published (team mode pushes session branches) and fetched by the first clone:
    # a's next phase commit grades the pair by a merge of the two tips.
    git(b.path, "push", "-q", "origin", "council/task-b/1")
    git(clone_1, "fetch", "-q", "origin", "council/task-b/1")
    a.edit("README.md", "readme", "read me")
    a.commit()
    await radar_1.moved(a.live)
    (found,) = await collisions(store_2)
    assert found.severity == Severity.CONFLICT and found.conflict_paths == ["src/mod.py"]

    # said once, by the workstation that found it first, and once more, by the one that found
    # it graver; resolved once when b ends
    by_1 = [
        (e.data["severity"], e.data["escalated_from"])
        for e in said_1
        if e.type == "radar.collision"
    ]
    by_2 = [
        (e.data["severity"], e.data["escalated_from"])
        for e in said_2
        if e.type == "radar.collision"
    ]
    assert by_2 == [("hunks", None)] and by_1 == [("conflict", "hunks")]
    await radar_2.ended("sb")
    assert await collisions(store_1) == []
    assert await store_1.get_record(SIGHTINGS, "sb") is None
    resolved = [e for e in said_1 + said_2 if e.type == "radar.resolved"]
    assert len(resolved) == 1 and resolved[0].data["reason"] == "ended"
    assert resolved[0].data["paths"] == ["src/mod.py"]
    # the first workstation's next look finds nothing to say
    await radar_1.look([a.live])
    assert await collisions(store_2) == []


async def test_the_other_workstations_tip_is_fetched_from_its_published_branch(
    tmp_path: Path, stores: tuple[PostgresStateStore, PostgresStateStore]
) -> None:
    """A team publishes each session's branch at its phase end; a radar that needs the other
    workstation's tip for a merge-tree fetches it from there, objects only (no ref, no
    FETCH_HEAD), once per tip, and grades the pair a conflict at its first look."""
    store_1, store_2 = stores
    clone_1, clone_2 = two_clones(tmp_path)
    radar_1 = Radar(
        store_1, repo_git(clone_1), "refs/heads/main", workstation="ws1", team=True, remote="origin"
    )
    radar_2 = Radar(
        store_2, repo_git(clone_2), "refs/heads/main", workstation="ws2", team=True, remote="origin"
    )
    a = add_session(clone_1, "task-a", "sa")
    b = add_session(clone_2, "task-b", "sb")
    for session, branch in ((a, "council/task-a/1"), (b, "council/task-b/1")):
        session.live = replace(session.live, branch=branch)
    a.edit("src/mod.py", "y = x + 1", "y = x + 10")
    tip_a = a.commit()
    git(a.path, "push", "-q", "origin", "HEAD:refs/council/branches/council/task-a/1")
    b.edit("src/mod.py", "y = x + 1", "y = x + 20")
    b.commit()
    git(b.path, "push", "-q", "origin", "HEAD:refs/council/branches/council/task-b/1")

    await radar_1.moved(a.live)
    cost = await radar_2.moved(b.live)
    (found,) = await collisions(store_1)
    assert found.severity == Severity.CONFLICT and found.conflict_paths == ["src/mod.py"]
    assert cost.merges == 1
    assert git(clone_2, "cat-file", "-t", tip_a) == "commit"  # its objects came
    assert "task-a" not in git(clone_2, "for-each-ref")  # and no ref with them
    assert not (clone_2 / ".git" / "FETCH_HEAD").exists()
    # a tip the remote has not published (yet) is asked for once, not at every look
    fetched: list[str] = []
    merges = radar_2._merges  # (``merges.TipMerges``)
    fetch = merges._fetch

    def counted(calls: Any, sighting: Any) -> None:
        fetched.append(sighting.tip)
        fetch(calls, sighting)

    merges._fetch = counted  # type: ignore[method-assign]
    a.edit("README.md", "readme", "read me")
    unpublished = a.commit()
    await radar_1.moved(a.live)
    for old, new in (("y = x + 20", "y = x + 30"), ("y = x + 30", "y = x + 40")):
        b.edit("src/mod.py", old, new)
        b.commit()
        await radar_2.moved(b.live)
    assert fetched == [unpublished]
