"""The collision radar on real worktrees: two sessions editing the same function (a conflict),
different functions of one file (a file-level overlap, not a conflict), different files
(nothing); events on a new collision and when it resolves; only moved sessions cost git
processes; the CLI's index is never locked."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from orchestrator.events import Event
from orchestrator.radar.engine import Radar
from orchestrator.radar.overlap import Severity
from orchestrator.radar.records import COLLISIONS, SIGHTINGS, collisions, collisions_for
from orchestrator.state.file.store import FileStateStore
from tests.support.radar_helpers import add_session, git, make_repo, repo_git
from tests.support.timing import patience


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def _events(store: FileStateStore) -> list[Event]:
    seen: list[Event] = []
    store.subscribe(seen.append)
    return seen


async def test_two_sessions_editing_the_same_function_collide_with_a_conflict(
    repo: Path, tmp_path: Path
) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        seen = _events(store)
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a, b = add_session(repo, "task-a", "sa"), add_session(repo, "task-b", "sb")
        a.edit("src/mod.py", "y = x + 1", "y = x + 10")
        a.commit()
        b.edit("src/mod.py", "y = x + 1", "y = x + 20")
        b.commit()
        await radar.look([a.live, b.live])
        (found,) = await collisions(store)
        assert found.severity == Severity.CONFLICT and found.conflict
        assert found.paths == ["src/mod.py"] and found.conflict_paths == ["src/mod.py"]
        assert found.tasks == ("task-a", "task-b")
        assert [(h.path, h.a, h.b) for h in found.hunks] == [("src/mod.py", "line 2", "line 2")]
        assert "+    y = x + 20" in found.b.diff and "+    y = x + 10" in found.a.diff
        assert [c.key for c in await collisions_for(store, "task-b")] == [found.key]
        assert await collisions_for(store, "task-c") == []
        said = [e for e in seen if e.type == "radar.collision"]
        assert len(said) == 1 and said[0].data["paths"] == ["src/mod.py"]
        assert said[0].data["severity"] == "conflict"
        assert {said[0].data["task_id"], said[0].data["other_task_id"]} == {"task-a", "task-b"}


async def test_a_collision_that_grows_graver_is_said_again_once(repo: Path, tmp_path: Path) -> None:
    """Same lines edited, not committed yet (``hunks``: no merge without tips of their own),
    then both commit and the merge conflicts: one more ``radar.collision``, saying what it
    was; a look that finds the same again says nothing."""
    async with FileStateStore(tmp_path / "state") as store:
        seen = _events(store)
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a, b = add_session(repo, "task-a", "sa"), add_session(repo, "task-b", "sb")
        a.edit("src/mod.py", "y = x + 1", "y = x + 10")
        b.edit("src/mod.py", "y = x + 1", "y = x + 20")
        await radar.look([a.live, b.live])
        (found,) = await collisions(store)
        assert found.severity == Severity.HUNKS
        a.commit()
        b.commit()
        await radar.look([a.live, b.live])
        await radar.look([a.live, b.live])
        (found,) = await collisions(store)
        assert found.severity == Severity.CONFLICT
        said = [e.data for e in seen if e.type == "radar.collision"]
        assert [(d["severity"], d.get("escalated_from")) for d in said] == [
            ("hunks", None),
            ("conflict", "hunks"),
        ]


async def test_different_functions_of_one_file_overlap_by_file_and_merge_cleanly(
    repo: Path, tmp_path: Path
) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a, b = add_session(repo, "task-a", "sa"), add_session(repo, "task-b", "sb")
        a.edit("src/mod.py", "y = x + 1", "y = x + 10")
        a.commit()
        b.edit("src/mod.py", "return x - 1", "return x - 2")
        b.commit()
        await radar.look([a.live, b.live])
        (found,) = await collisions(store)
        assert found.severity == Severity.FILE and not found.conflict
        assert found.paths == ["src/mod.py"] and found.hunks == []


async def test_different_files_do_not_collide(repo: Path, tmp_path: Path) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        seen = _events(store)
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a, b = add_session(repo, "task-a", "sa"), add_session(repo, "task-b", "sb")
        a.edit("src/mod.py", "y = x + 1", "y = x + 10")
        a.commit()
        b.edit("README.md", "readme", "read me")
        b.commit()
        cost = await radar.look([a.live, b.live])
        assert await collisions(store) == []
        assert cost.merges == 0  # no shared file: git is not asked to merge
        assert not [e for e in seen if e.type.startswith("radar.")]


async def test_uncommitted_work_is_seen_and_graded_by_its_hunks(repo: Path, tmp_path: Path) -> None:
    """Mid-phase (nothing committed yet) the diffs still meet; without tips of their own the
    pair is graded by hunks, not by a merge."""
    async with FileStateStore(tmp_path / "state") as store:
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a, b = add_session(repo, "task-a", "sa"), add_session(repo, "task-b", "sb")
        a.edit("src/mod.py", "y = x * 2", "y = x * 3")
        b.edit("src/mod.py", "y = x * 2", "y = x * 4")
        cost = await radar.look([a.live, b.live])
        (found,) = await collisions(store)
        assert found.severity == Severity.HUNKS and not found.conflict
        assert cost.merges == 0


async def test_resolved_when_a_side_ends_or_moves_apart(repo: Path, tmp_path: Path) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        seen = _events(store)
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a, b = add_session(repo, "task-a", "sa"), add_session(repo, "task-b", "sb")
        c = add_session(repo, "task-c", "sc")
        a.edit("src/mod.py", "y = x + 1", "y = x + 10")
        a.commit()
        b.edit("src/mod.py", "y = x + 1", "y = x + 20")
        b.commit()
        c.edit("src/mod.py", "y = x + 1", "y = x + 30")
        await radar.look([a.live, b.live, c.live])
        assert len(await collisions(store)) == 3
        # c undoes its edit: its collisions resolve as "apart"
        git(c.path, "checkout", "--", "src/mod.py")
        await radar.moved(c.live)
        left = await collisions(store)
        assert [f.tasks for f in left] == [("task-a", "task-b")]
        apart = [e.data for e in seen if e.type == "radar.resolved"]
        assert {d["reason"] for d in apart} == {"apart"} and len(apart) == 2
        # a lands (its session ends): the last one resolves as "ended"
        await radar.ended("sa")
        assert await collisions(store) == []
        ended = [e.data for e in seen if e.type == "radar.resolved" and e.data["reason"] == "ended"]
        assert [(d["task_id"], d["other_task_id"], d["paths"]) for d in ended] == [
            ("task-a", "task-b", ["src/mod.py"])
        ]
        assert await store.get_record(SIGHTINGS, "sa") is None
        assert await store.get_record(SIGHTINGS, "sb") is not None


async def test_only_the_session_that_moved_is_compared_again(repo: Path, tmp_path: Path) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        seen = _events(store)
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        sessions = [add_session(repo, f"task-{n}", f"s{n}") for n in range(4)]
        for n, session in enumerate(sessions):
            session.edit("src/mod.py", "y = x + 1", f"y = x + {n + 10}")
            session.commit()
        first = await radar.look([s.live for s in sessions])
        assert first.moved == 4 and first.pairs == 6 and first.merges == 6
        again = await radar.look([s.live for s in sessions])
        assert again.moved == 0 and again.pairs == 0 and again.merges == 0
        assert again.git == 4  # each worktree's diff read (its tip from git's files)
        sessions[0].edit("README.md", "readme", "read me")  # uncommitted: diff moved, tip not
        moved = await radar.moved(sessions[0].live)
        assert moved.moved == 1 and moved.pairs == 3 and moved.merges == 0  # tips cached
        sessions[1].edit("src/mod.py", "return x - 1", "return x - 5")
        sessions[1].commit()
        moved = await radar.moved(sessions[1].live)
        assert moved.pairs == 3 and moved.merges == 3
        assert len([e for e in seen if e.type == "radar.collision"]) == 6  # each pair said once


async def test_the_radar_never_locks_a_worktrees_index(repo: Path, tmp_path: Path) -> None:
    """A file touched since the index was written (same content, new mtime): a plain ``git diff`` in
    the worktree would refresh the index under ``index.lock`` and rename a new one over it (as
    git 2.39 does even with ``--no-optional-locks``); the radar's look leaves it alone, and
    looks even while a CLI's ``git add`` holds the lock."""
    async with FileStateStore(tmp_path / "state") as store:
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a = add_session(repo, "task-a", "sa")
        admin = Path(git(a.path, "rev-parse", "--absolute-git-dir"))
        index = admin / "index"
        a.edit("src/mod.py", "y = x + 1", "y = x + 10")
        git(a.path, "add", "src/mod.py")
        target = a.path / "README.md"  # as in the base; only its stat data moves
        earlier = index.stat().st_mtime_ns - 5_000_000_000
        os.utime(target, ns=(earlier, earlier))
        before = index.stat().st_ino, index.stat().st_mtime_ns, index.read_bytes()
        cost = await radar.look([a.live])
        assert cost.read == 1 and cost.moved == 1
        assert (index.stat().st_ino, index.stat().st_mtime_ns, index.read_bytes()) == before
        # the control: git itself, without the radar's copy, does rewrite it
        git(a.path, "diff", "main")
        assert index.read_bytes() != before[2]
        (admin / "index.lock").write_text("")  # a CLI's git add under way
        try:
            a.edit("src/mod.py", "y = x + 10", "y = x + 11")
            cost = await radar.look([a.live])
            assert cost.moved == 1
        finally:
            (admin / "index.lock").unlink()
        (sighting,) = radar.seen()
        assert "+    y = x + 11" in sighting.files["src/mod.py"].diff


async def test_a_collision_left_by_a_run_that_died_ends_at_the_next_look(
    repo: Path, tmp_path: Path
) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        seen = _events(store)
        dead = Radar(store, repo_git(repo), "refs/heads/main", sighting_ttl=0.2)
        a, b = add_session(repo, "task-a", "sa"), add_session(repo, "task-b", "sb")
        a.edit("src/mod.py", "y = x + 1", "y = x + 10")
        b.edit("src/mod.py", "y = x + 1", "y = x + 20")
        await dead.look([a.live, b.live])
        assert len(await collisions(store)) == 1
        # that orchestrator died; its sightings expire, and the next run's radar looks
        with anyio.fail_after(patience(10)):
            while await store.get_record(SIGHTINGS, "sa") is not None:
                await anyio.sleep(0.05)
        fresh = Radar(store, repo_git(repo), "refs/heads/main")
        await fresh.look([])
        assert await collisions(store) == []
        (resolved,) = [e.data for e in seen if e.type == "radar.resolved"]
        assert resolved["reason"] == "ended"


async def test_an_end_gives_the_collisions_left_from_its_own_read(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``radar_watch`` shows after a session ends comes from the end's one read of the
    collisions (a worker-thread hop a task less than reading them back)."""
    async with FileStateStore(tmp_path / "state") as store:
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        sessions = [add_session(repo, f"task-{n}", f"s{n}") for n in "abc"]
        for n, session in enumerate(sessions):
            session.edit("src/mod.py", "y = x + 1", f"y = x + {n + 10}")
            session.commit()
        await radar.look([s.live for s in sessions])
        assert len(await collisions(store)) == 3
        lists: list[str] = []
        real = store.list_records

        async def list_records(namespace: str) -> object:
            lists.append(namespace)
            return await real(namespace)

        monkeypatch.setattr(store, "list_records", list_records)
        left = await radar.ended("sa")
        assert lists == [COLLISIONS]  # read once
        assert [c.tasks for c in left] == [("task-b", "task-c")]
        assert left == await collisions(store)


async def test_the_radars_known_false_positive_and_miss(repo: Path, tmp_path: Path) -> None:
    """What the closing note reports: the same edit made by both sessions touches the same
    lines (graded ``hunks``) though git merges it cleanly (never graded ``conflict``); a rename
    in one file and a new call of the old name in another is no textual overlap at all, so the
    radar says nothing (a semantic conflict is the verify commands' to find)."""
    async with FileStateStore(tmp_path / "state") as store:
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a, b = add_session(repo, "task-a", "sa"), add_session(repo, "task-b", "sb")
        a.edit("src/mod.py", "y = x + 1", "y = x + 10")
        a.commit()
        b.edit("src/mod.py", "y = x + 1", "y = x + 10")
        b.commit()
        await radar.look([a.live, b.live])
        (found,) = await collisions(store)
        assert found.severity == Severity.HUNKS and not found.conflict
        await radar.ended("sa")
        await radar.ended("sb")
        c, d = add_session(repo, "task-c", "sc"), add_session(repo, "task-d", "sd")
        c.edit("src/mod.py", "def beta(x):", "def beta_renamed(x):")
        c.commit()
        d.write("src/use.py", "from src.mod import beta\n")
        d.commit()
        await radar.look([c.live, d.live])
        assert await collisions(store) == []


async def test_the_tip_is_read_from_gits_files_packed_or_detached(
    repo: Path, tmp_path: Path
) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a, b = add_session(repo, "task-a", "sa"), add_session(repo, "task-b", "sb")
        a.edit("src/mod.py", "y = x + 1", "y = x + 10")
        tip_a = a.commit()
        git(repo, "pack-refs", "--all")  # a's branch now only in packed-refs
        b.edit("src/mod.py", "y = x + 1", "y = x + 20")
        tip_b = b.commit()
        git(b.path, "checkout", "-q", "--detach")
        cost = await radar.look([a.live, b.live])
        tips = {s.session_id: s.tip for s in radar.seen()}
        assert tips == {"sa": tip_a, "sb": tip_b}
        assert cost.git == 2 + 1  # two diffs, one merge-tree: no tip asked of git
        (found,) = await collisions(store)
        assert found.severity == Severity.CONFLICT


async def test_an_edit_in_the_second_of_the_checkout_is_seen_later(
    repo: Path, tmp_path: Path
) -> None:
    """A CLI's edit of the same size made in the second its worktree was checked out looks
    unchanged by its stat data; git reads such a "racily clean" entry's content because it is
    as new as the index. The radar's copy of the index keeps the index's date, so the edit is
    seen when the look comes seconds later."""
    async with FileStateStore(tmp_path / "state") as store:
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        for attempt in range(5):
            a = add_session(repo, f"task-a{attempt}", f"sa{attempt}")
            a.edit("src/mod.py", "y = x * 2", "y = x * 3")  # the same size
            admin = Path(git(a.path, "rev-parse", "--absolute-git-dir"))
            edited = (a.path / "src/mod.py").stat()
            if int(edited.st_ctime) == int((admin / "index").stat().st_mtime):
                break  # the racy case: the edit in the index's second
        await anyio.sleep(1.1)  # the look comes in a later second
        await radar.look([a.live])
        (sighting,) = radar.seen()
        assert "+    y = x * 3" in sighting.files["src/mod.py"].diff
