"""A session's first sighting is read and written in one store call (issue 51): on the file
store its snapshot's git processes and its record's write are one worker-thread call; a
session seen before is read alone and written only when it moved; one whose worktree is gone
writes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestrator.radar.engine import Radar
from orchestrator.radar.records import SIGHTINGS, collisions
from orchestrator.state.file.store import FileStateStore
from tests.support.hops import count_hops
from tests.support.radar_helpers import add_session, make_repo, repo_git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


async def test_a_first_sighting_is_read_and_written_in_one_call(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a, b = add_session(repo, "task-a", "sa"), add_session(repo, "task-b", "sb")
        b.edit("src/mod.py", "y = x + 1", "y = x + 20")
        await radar.moved(b.live)  # the store's first write settles it: not counted
        a.edit("src/mod.py", "y = x + 1", "y = x + 10")
        hopped = count_hops(monkeypatch)
        await radar.moved(a.live)
        names = [getattr(fn, "__qualname__", "") for fn in hopped]
        assert "Radar._read_all" not in names  # rode with the sighting's write
        record = await store.get_record(SIGHTINGS, "sa")
        assert record is not None and record.data["task_id"] == "task-a"
        assert [f.tasks for f in await collisions(store)] == [("task-a", "task-b")]

        hopped.clear()
        a.commit()  # seen before: read alone, written as it moved
        await radar.moved(a.live)
        names = [getattr(fn, "__qualname__", "") for fn in hopped]
        assert "Radar._read_all" in names
        moved = await store.get_record(SIGHTINGS, "sa")
        assert moved is not None and moved.version == 2


async def test_a_session_whose_worktree_is_gone_writes_nothing(repo: Path, tmp_path: Path) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a = add_session(repo, "task-a", "sa")
        shutil.rmtree(a.path)
        await radar.moved(a.live)
        assert await store.get_record(SIGHTINGS, "sa") is None


async def test_a_sighting_handed_to_the_landing_is_not_deleted_twice(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``leaving``: the sighting's deletion goes with the landing's store call; ``ended``
    then makes none of its own, unless the sighting was written again since (a look in
    between), which it then deletes as before."""
    async with FileStateStore(tmp_path / "state") as store:
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        a, b = add_session(repo, "task-a", "sa"), add_session(repo, "task-b", "sb")
        a.edit("src/mod.py", "y = x + 1", "y = x + 10")
        b.edit("src/mod.py", "y = x + 1", "y = x + 20")
        await radar.moved(a.live)
        await radar.moved(b.live)
        assert len(await collisions(store)) == 1
        assert await store.delete_records([radar.leaving("sa")]) == [True]
        deleted: list[str] = []
        real = store.delete_record

        async def delete_record(namespace: str, key: str, *args: object, **kw: object) -> bool:
            deleted.append(namespace)
            return await real(namespace, key, *args, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(store, "delete_record", delete_record)
        assert await radar.ended("sa", deleted=True) == []  # its collision resolved
        assert SIGHTINGS not in deleted and await collisions(store) == []

        # Written again after it was handed out: deleted by the end after all.
        radar.leaving("sb")
        b.commit()
        await radar.moved(b.live)
        assert await store.get_record(SIGHTINGS, "sb") is not None
        await radar.ended("sb", deleted=True)
        assert SIGHTINGS in deleted and await store.get_record(SIGHTINGS, "sb") is None
