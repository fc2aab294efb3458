"""A session's first sighting is read and written in one store call (issue 51): on the file
store its snapshot's git processes and its record's write are one worker-thread call; a
session seen before is read alone and written only when it moved; one whose worktree is gone
writes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from orchestrator.radar.engine import Radar
from orchestrator.radar.records import COLLISIONS, SIGHTINGS, collisions
from orchestrator.state.carried import CarriedPut
from orchestrator.state.deletions import Deletion
from orchestrator.state.file.store import FileStateStore
from orchestrator.state.local_records import Written
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
        a.commit()  # seen before and moved: read and written in one call too
        await radar.moved(a.live)
        names = [getattr(fn, "__qualname__", "") for fn in hopped]
        assert "Radar._read_all" not in names
        # that call, and the live collisions read (the pair's finding the same: no write)
        assert names == ["FileCore._try_locked", "FileCore.read_many.<locals>.read_all"]
        moved = await store.get_record(SIGHTINGS, "sa")
        assert moved is not None and moved.version == 2

        hopped.clear()
        await radar.moved(a.live)  # as last seen: read in the call that would write, no write
        assert [getattr(fn, "__qualname__", "") for fn in hopped] == ["FileCore._try_locked"]
        same = await store.get_record(SIGHTINGS, "sa")
        assert same is not None and same.version == 2


async def test_a_looks_writes_are_one_store_call_however_many_moved(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timer's look: every moved session's sighting and every collision found written in
    one store call (``radar.writes``; one worker-thread call on the file store), besides the
    one that reads the worktrees; the live collisions it read not read back by its caller."""
    async with FileStateStore(tmp_path / "state") as store:
        radar = Radar(store, repo_git(repo), "refs/heads/main")
        await store.list_records(COLLISIONS)  # the store's first call settles it: not counted
        sessions = [add_session(repo, f"task-{n}", f"s{n}") for n in range(5)]
        for n, session in enumerate(sessions):
            session.edit("src/mod.py", "y = x + 1", f"y = x + {n + 10}")
        calls: list[str] = []
        for name in ("put_record", "put_made_record", "delete_record", "put_and_delete_records"):
            real = getattr(store, name)

            async def spy(*args: Any, __real: Any = real, __name: str = name, **kw: Any) -> Any:
                calls.append(__name)
                return await __real(*args, **kw)

            monkeypatch.setattr(store, name, spy)
        said: list[str] = []
        store.subscribe(lambda event: said.append(event.type))
        hopped = count_hops(monkeypatch)
        cost = await radar.look([s.live for s in sessions])
        names = [getattr(fn, "__qualname__", "") for fn in hopped]
        assert cost.moved == 5 and calls == ["put_and_delete_records"]
        assert names == ["Radar._read_all", "_try_all"]  # no collision record before it
        assert len(await store.list_records(SIGHTINGS)) == 5
        assert radar.known is not None and len(radar.known) == 10  # every pair of the five
        assert radar.known == await collisions(store)
        assert said.count("radar.collision") == 10

        # Two moved apart, one ended: their sightings, the deletion and the ten collisions'
        # changes (six resolved) in one call again, after the one read of the live collisions.
        calls.clear()
        hopped.clear()
        sessions[0].edit("src/mod.py", "y = x + 10", "y = x + 1")
        sessions[1].edit("src/mod.py", "y = x + 11", "y = x + 1")
        cost = await radar.look([s.live for s in sessions[:4]])
        names = [getattr(fn, "__qualname__", "") for fn in hopped]
        assert cost.moved == 2 and calls == ["put_and_delete_records"], calls
        assert names == ["FileCore.read_many.<locals>.read_all", "Radar._read_all", "_try_all"]
        assert await store.get_record(SIGHTINGS, "s4") is None
        left = await collisions(store)
        assert radar.known == left and [c.tasks for c in left] == [("task-2", "task-3")]
        assert said.count("radar.resolved") == 9

        calls.clear()
        await radar.look([s.live for s in sessions[:4]])  # nothing moved: nothing written
        assert calls == []


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
        real = store.put_and_delete_records

        async def batch(puts: Sequence[CarriedPut], gone: Sequence[Deletion] = ()) -> Written:
            deleted.extend(item.namespace for item in gone)
            return await real(puts, gone)

        monkeypatch.setattr(store, "put_and_delete_records", batch)
        assert await radar.ended("sa", deleted=True) == []  # its collision resolved
        assert SIGHTINGS not in deleted and await collisions(store) == []

        # Written again after it was handed out: deleted by the end after all.
        radar.leaving("sb")
        b.commit()
        await radar.moved(b.live)
        assert await store.get_record(SIGHTINGS, "sb") is not None
        await radar.ended("sb", deleted=True)
        assert SIGHTINGS in deleted and await store.get_record(SIGHTINGS, "sb") is None

        # Ended again (a look's end of a session gone, then its attempt's): the sighting is
        # surely not there, told with no worker-thread call; the live collisions read alone.
        hopped = count_hops(monkeypatch)
        assert await radar.ended("sb") == []
        names = [getattr(fn, "__qualname__", "") for fn in hopped]
        assert names == ["FileCore.read_many.<locals>.read_all"]
