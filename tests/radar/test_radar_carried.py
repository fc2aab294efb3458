"""A session's first sighting carried by another store call (``Radar.first_carried``, issue
51): written there, its pairs then computed by ``moved`` with no read or write of its own; a
session seen before carries nothing; a look that fails writes nothing and fails nothing (the
radar advises), and ``moved`` then looks itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestrator.errors import GitError
from orchestrator.radar import engine
from orchestrator.radar.engine import Radar
from orchestrator.radar.records import SIGHTINGS, collisions
from orchestrator.state.carried_in_turn import carried_in_turn
from orchestrator.state.file.store import FileStateStore
from tests.support.hops import count_hops
from tests.support.radar_helpers import add_session, make_repo, repo_git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


async def test_a_carried_first_sighting_is_taken_by_moved(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a, b = add_session(repo, "task-a", "sa"), add_session(repo, "task-b", "sb")
        b.edit("src/mod.py", "y = x + 1", "y = x + 20")
        await radar.moved(b.live)
        a.edit("src/mod.py", "y = x + 1", "y = x + 10")
        carrier = radar.first_carried(a.live)
        assert carrier is not None
        (written,) = await carried_in_turn(store, [carrier.put])  # (a call of another room)
        carrier.done(written)
        assert written is not None and written.data["task_id"] == "task-a"
        hopped = count_hops(monkeypatch)
        await radar.moved(a.live)
        names = [getattr(fn, "__qualname__", "") for fn in hopped]
        # (the pair's collision written in the pass's one store call: ``radar.writes``)
        assert "Radar._read_all" not in names and "_try_all" in names, names
        record = await store.get_record(SIGHTINGS, "sa")
        assert record is not None and record.version == 1  # not written again
        assert [f.tasks for f in await collisions(store)] == [("task-a", "task-b")]
        assert radar.first_carried(a.live) is None  # seen: nothing to carry


async def test_a_failed_carried_look_writes_nothing_and_moved_looks_itself(
    repo: Path, tmp_path: Path
) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a = add_session(repo, "task-a", "sa")
        a.edit("src/mod.py", "y = x + 1", "y = x + 10")
        carrier = radar.first_carried(a.live)
        assert carrier is not None
        moved_away = a.path.with_name("moved-away")
        shutil.move(a.path, moved_away)  # no snapshot now: nothing to write, nothing raised
        assert carrier.put.make(None) is None
        carrier.done(None)
        shutil.move(moved_away, a.path)
        await radar.moved(a.live)  # its own first look
        record = await store.get_record(SIGHTINGS, "sa")
        assert record is not None and record.data["task_id"] == "task-a"


async def test_a_carried_look_that_raises_fails_nothing(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a = add_session(repo, "task-a", "sa")
        carrier = radar.first_carried(a.live)
        assert carrier is not None

        def broken(*_: object) -> None:
            raise GitError(["diff"], 128, "fatal: bad object")

        monkeypatch.setattr(engine, "read_snapshot", broken)
        (written,) = await carried_in_turn(store, [carrier.put])  # no error comes out
        assert written is None
        assert await store.get_record(SIGHTINGS, "sa") is None
