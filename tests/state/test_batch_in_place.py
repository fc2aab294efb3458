"""A batch's new task records are written in place, through their locks' descriptors
(``state.file.batch_records``): no temp file and no rename a record. A record cut short (its
writer killed, or the disk full part way) is never read as a record: the next holder of its
lock writes it whole from the batch's intent, the next process to open the store replays the
batch, and a refused write leaves no file behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.errors import StateWriteError
from orchestrator.safety.crashpoints import ENV as CRASH_AT
from orchestrator.state import FileStateStore
from orchestrator.testing.faulty_fs import FaultyFileOps, SimulatedCrash

_IDS = [f"t{n:03d}" for n in range(12)]


def _state(root: Path) -> Path:
    return root / ".council" / "state"


def _quarantined(root: Path) -> list[Path]:
    quarantine = _state(root) / "quarantine"
    return sorted(p for p in quarantine.rglob("*") if p.is_file()) if quarantine.exists() else []


async def test_new_records_are_made_in_place_without_a_temp_file_or_a_rename(
    tmp_path: Path,
) -> None:
    ops = FaultyFileOps()
    async with FileStateStore.for_repo(tmp_path, file_ops=ops) as store:
        session = await store.create_session({}, [], listed=_IDS)
        ops.calls.clear()
        assert await store.add_session_tasks(session.session_id, [{"task_id": t} for t in _IDS])
        # The intent: one file, renamed into place; each record: one file, made where it stays.
        assert ops.calls["open"] == len(_IDS) + 1
        assert ops.calls["replace"] == 1
        assert ops.calls["sync_all"] == 1
        tasks = await store.list_tasks(session.session_id)
    assert [t.task_id for t in tasks] == _IDS and all(t.version == 1 for t in tasks)
    left = [p.name for t in _IDS for p in (_state(tmp_path) / "tasks" / t).iterdir()]
    assert left == ["current.json"] * len(_IDS)


async def test_a_record_cut_short_is_written_whole_from_the_intent_by_its_next_reader(
    tmp_path: Path,
) -> None:
    ops = FaultyFileOps()
    async with FileStateStore.for_repo(tmp_path, file_ops=ops) as dying:
        session = await dying.create_session({}, [], listed=_IDS)
        # Writes: the intent, then the records: the 2nd record dies with half its bytes.
        ops.crash("write", nth=3)
        with pytest.raises(SimulatedCrash):
            await dying.add_session_tasks(session.session_id, [{"task_id": t} for t in _IDS])
    cut = _state(tmp_path) / "tasks" / _IDS[1] / "current.json"
    assert cut.stat().st_size > 0 and not cut.read_bytes().endswith(b'"}\n')

    async with FileStateStore.for_repo(tmp_path) as store:
        # The writer's process lives on here, so its batch is not replayed on opening: the
        # record's reader finishes it, under its lock, from the intent.
        task = await store.get_task_state(_IDS[1])
        assert task is not None and task.version == 1 and task.session_id == session.session_id
        listed = await store.list_tasks(session.session_id)
        assert [t.task_id for t in listed] == _IDS[:2]
        # Given again (a resume), the batch records the rest, each once.
        recorded = await store.add_session_tasks(session.session_id, [{"task_id": t} for t in _IDS])
        assert recorded == len(_IDS) - 2
        listed = await store.list_tasks(session.session_id)
        assert [t.task_id for t in listed] == _IDS and all(t.version == 1 for t in listed)
        assert await store.task_history(_IDS[1]) == []
    assert _quarantined(tmp_path) == []


async def test_a_record_the_disk_refuses_part_way_leaves_no_file(tmp_path: Path) -> None:
    ops = FaultyFileOps()
    async with FileStateStore.for_repo(tmp_path, file_ops=ops) as store:
        session = await store.create_session({}, [], listed=_IDS)
        ops.fail("write", nth=4)  # the 3rd record: half its bytes, then ENOSPC
        with pytest.raises(StateWriteError) as caught:
            await store.add_session_tasks(session.session_id, [{"task_id": t} for t in _IDS])
        assert caught.value.applied  # the batch is committed
        assert not (_state(tmp_path) / "tasks" / _IDS[2] / "current.json").exists()
        assert await store.get_task_state(_IDS[2]) is None
        assert [t.task_id for t in await store.list_tasks(session.session_id)] == _IDS[:2]
        assert (
            await store.add_session_tasks(session.session_id, [{"task_id": t} for t in _IDS])
            == len(_IDS) - 2
        )
        assert [t.task_id for t in await store.list_tasks(session.session_id)] == _IDS
    assert _quarantined(tmp_path) == []


_KILLED_MID_BATCH = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from orchestrator.state import FileStateStore

    async def main() -> None:
        ids = sys.argv[2:]
        async with FileStateStore.for_repo(Path(sys.argv[1])) as store:
            session = await store.create_session({}, [], listed=ids)
            print(session.session_id, flush=True)
            await store.add_session_tasks(session.session_id, [{"task_id": t} for t in ids])

    asyncio.run(main())
    """
)


def test_a_batch_killed_in_a_record_is_replayed_whole_by_the_next_process(tmp_path: Path) -> None:
    # A real death (SIGKILL) once the 3rd record's file is made, empty, in place.
    env = {**os.environ, CRASH_AT: "batch.record_opened:3"}
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_BATCH, str(tmp_path), *_IDS],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    session_id = killed.stdout.split()[0]
    empty = _state(tmp_path) / "tasks" / _IDS[2] / "current.json"
    assert empty.exists() and empty.stat().st_size == 0
    assert list((_state(tmp_path) / "transactions" / "batches").glob("*.json"))

    async def reopened() -> None:
        async with FileStateStore.for_repo(tmp_path) as store:
            listed = await store.list_tasks(session_id)
            assert [t.task_id for t in listed] == _IDS and all(t.version == 1 for t in listed)

    import anyio

    anyio.run(reopened)
    assert not list((_state(tmp_path) / "transactions" / "batches").glob("*.json"))
    assert _quarantined(tmp_path) == []
