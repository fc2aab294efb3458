"""``council status``'s first look after a write, read from a file store's record files without
the store (``run.reports.quick_report``): the same report the store gives, kept for the next
look, and the store asked instead whenever it would have something to do first (a
transaction left on disk, a damaged record, a record missing its current version)."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.store_access import newest_report
from orchestrator.models import TaskStatus, utcnow
from orchestrator.run.reports import quick_report as quick_module
from orchestrator.run.reports import report_cache
from orchestrator.run.reports.quick_report import quick_report
from orchestrator.run.reports.report import RunReport
from orchestrator.scheduler.team.presence import NAMESPACE as PRESENCE
from orchestrator.spend.line import NAMESPACE as SPEND_LINES
from orchestrator.state import FileStateStore
from orchestrator.state.file.record_files.peek_read import PeekRead

pytestmark = pytest.mark.anyio


async def varied_store(tmp_path: Path) -> tuple[Path, str]:
    """A store with an older session and a newer one whose tasks are done, failed, parked,
    running and queued (one depending on another), a live workstation of it, one gone stale,
    one of another session, and its spend line."""
    root = tmp_path / "state"
    async with FileStateStore(root) as store:
        await store.create_session({}, ["old-a"])
        tasks: list[dict[str, object]] = [
            {"id": "a"},
            {"id": "b"},
            {"id": "c"},
            {"id": "d", "depends_on": ["c"]},
            {"id": "e"},
        ]
        session = await store.create_session({"tasks": tasks}, ["a", "b", "c", "d", "e"])
        now = utcnow()
        await store.update_task_state(
            "a",
            {
                "status": TaskStatus.DONE,
                "started_at": now - timedelta(seconds=3),
                "finished_at": now,
                "metadata": {"usage": {"input_tokens": 10, "output_tokens": 2}},
            },
        )
        await store.update_task_state(
            "b", {"status": TaskStatus.FAILED, "error": "broke", "metadata": {"outcome": "x"}}
        )
        until = (now + timedelta(minutes=5)).isoformat()
        await store.update_task_state(
            "c",
            {
                "status": TaskStatus.PARKED,
                "metadata": {"parked_until": until, "parked_adapter": "a", "parks": 2},
            },
        )
        await store.update_task_state("e", {"status": TaskStatus.RUNNING})
        sid = session.session_id
        since = now.isoformat()
        alive = {"session_id": sid, "host": "h", "pid": 7, "since": since, "running": 1}
        await store.put_record(PRESENCE, "ws-1", alive)
        await store.put_record(PRESENCE, "ws-2", {**alive, "session_id": "s-other"})
        await store.put_record(PRESENCE, "ws-3", {**alive, "pid": 8}, ttl=0.001)
        line = {"usd": 1.5, "tokens": 1200, "calls": 3}
        await store.put_record(SPEND_LINES, sid, line)
    return root, sid


async def from_the_store(root: Path) -> RunReport:
    (root / report_cache.CACHE_NAME).unlink(missing_ok=True)
    report, _ = await newest_report(root)
    (root / report_cache.CACHE_NAME).unlink()
    return report


async def test_it_is_the_report_the_store_gives_and_is_kept(tmp_path: Path) -> None:
    root, sid = await varied_store(tmp_path)
    expected = await from_the_store(root)
    quick = quick_report(root)
    assert quick is not None
    assert quick.session_id == sid
    assert [w.workstation for w in quick.workstations] == ["ws-1"]
    assert quick.spend is not None and quick.spend.calls == 3
    assert "parked until" in (quick.task("c").waiting or "")
    assert quick == expected
    assert report_cache.kept_report(root) is None  # a workstation's presence ages by itself


async def test_what_it_builds_is_kept_for_the_next_look(tmp_path: Path) -> None:
    root = tmp_path / "state"
    async with FileStateStore(root) as store:
        await store.create_session({}, ["a", "b"])
        await store.update_task_state("a", {"status": TaskStatus.DONE})
    quick = quick_report(root)
    assert quick is not None and quick.task("a").status == TaskStatus.DONE
    assert report_cache.kept_report(root) == quick
    assert quick == await from_the_store(root)


async def test_nothing_recorded_leaves_it_to_the_store(tmp_path: Path) -> None:
    assert quick_report(tmp_path / "none") is None
    root = tmp_path / "state"
    async with FileStateStore(root) as store:
        await store.put_record(SPEND_LINES, "x", {"usd": 0, "tokens": 0, "calls": 0})
    assert quick_report(root) is None


async def test_a_transaction_on_disk_leaves_it_to_the_store(tmp_path: Path) -> None:
    root, _ = await varied_store(tmp_path)
    (root / "transactions").mkdir(exist_ok=True)
    (root / "transactions" / "t-1.json").write_bytes(b"{}")
    assert quick_report(root) is None
    assert not (root / report_cache.CACHE_NAME).exists()


async def test_a_store_that_recorded_a_batch_still_has_the_quick_look(tmp_path: Path) -> None:
    """The batches' directory stays once a batch of task records was written: its being there
    asked the store every time (every run since task records come in batches)."""
    root, sid = await varied_store(tmp_path)
    async with FileStateStore(root) as store:
        await store.update_session(sid, {"task_ids": ["a", "b", "c", "d", "e", "f"]})
        assert await store.add_session_tasks(sid, ["f"]) == 1
    assert (root / "transactions" / "batches").is_dir()
    quick = quick_report(root)
    assert quick is not None and quick == await from_the_store(root)


@pytest.mark.parametrize(("writer", "asked"), [("live", False), ("dead", True)])
async def test_a_batch_under_way_is_not_waited_for_a_dead_ones_is_the_stores(
    tmp_path: Path, writer: str, asked: bool
) -> None:
    root, _ = await varied_store(tmp_path)
    pid = os.getpid() if writer == "live" else _a_dead_pid()
    batches = root / "transactions" / "batches"
    batches.mkdir(parents=True)
    (batches / f"{time.time_ns():020d}-{pid}-abcd1234.json").write_bytes(b"{}")
    assert (quick_report(root) is None) == asked


def _a_dead_pid() -> int:
    """The pid of a process that has ended (and been waited for)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)  # the child: gone at once
    os.waitpid(pid, 0)
    return pid


def damage(current: Path) -> None:
    raw = bytearray(current.read_bytes())
    raw[5] ^= 1  # the checksum no longer matches
    current.write_bytes(bytes(raw))


@pytest.mark.parametrize("where", ["sessions/SESSION", f"records/{SPEND_LINES}/SESSION"])
async def test_a_damaged_record_leaves_it_to_the_store(tmp_path: Path, where: str) -> None:
    root, sid = await varied_store(tmp_path)
    damage(root / where.replace("SESSION", sid) / "current.json")
    assert quick_report(root) is None


async def test_a_damaged_task_is_recovered_by_the_store_as_before(tmp_path: Path) -> None:
    root, sid = await varied_store(tmp_path)
    damage(root / "tasks" / "b" / "current.json")
    assert quick_report(root) is None
    report, _ = await newest_report(root)  # the store recovers it from its history
    assert report.session_id == sid and report.task("b").status == TaskStatus.QUEUED


async def test_a_record_without_its_current_version_leaves_it_to_the_store(
    tmp_path: Path,
) -> None:
    root, _ = await varied_store(tmp_path)
    (root / "tasks" / "b" / "current.json").unlink()  # history left: a recovery's business
    assert quick_report(root) is None


async def test_a_record_under_another_name_leaves_it_to_the_store(tmp_path: Path) -> None:
    root, _ = await varied_store(tmp_path)
    tasks = root / "tasks"
    (tasks / "b" / "current.json").write_bytes((tasks / "a" / "current.json").read_bytes())
    assert quick_report(root) is None


async def settled_store(tmp_path: Path) -> Path:
    """A store of one session whose report holds until something is written: tasks done,
    failed and queued, no lease, park or workstation that ages."""
    root = tmp_path / "settled"
    async with FileStateStore(root) as store:
        await store.create_session({}, ["d", "e", "q"])
        await store.update_task_state("d", {"status": TaskStatus.DONE})
        await store.update_task_state("e", {"status": TaskStatus.FAILED, "error": "broke"})
    assert quick_report(root) is not None and report_cache.kept_report(root) is not None
    return root


async def test_a_task_written_after_its_record_was_read_leaves_the_kept_report_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write after the task records were read (before the report is kept): the report shows
    what was read, and is kept as stale as the identities of the files read say (each taken
    from its descriptor), so the next look builds it again and shows the write."""
    root = await settled_store(tmp_path)
    read_tasks = PeekRead.tasks
    kind = FileStateStore(root).tasks

    def then_written(self: PeekRead, *args: Any) -> Any:
        found = read_tasks(self, *args)
        before = kind.load("e")
        assert before is not None and before.status != TaskStatus.DONE
        done = before.model_copy(update={"status": TaskStatus.DONE, "version": before.version + 1})
        kind.write("e", done, previous_version=before.version)
        return found

    monkeypatch.setattr(PeekRead, "tasks", then_written)
    shown = quick_report(root)
    assert shown is not None and shown.task("e").status != TaskStatus.DONE
    assert report_cache.kept_report(root) is None
    monkeypatch.undo()
    again = quick_report(root)
    assert again is not None and again.task("e").status == TaskStatus.DONE
    assert report_cache.kept_report(root) is not None  # nothing written since: kept


async def test_identities_of_the_sessions_are_taken_before_they_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session written between its identity's snapshot and its read: the kept report is as
    stale as the identities say (the next look builds it again)."""
    root = await settled_store(tmp_path)
    taken = report_cache.snapshot_sessions
    store = FileStateStore(root)

    def then_written(where: Path) -> report_cache.Snapshot:
        shot = taken(where)
        (key,) = store.sessions.keys()
        session = store.sessions.load(key)
        assert session is not None
        store.sessions.write(
            session.session_id,
            session.model_copy(update={"version": session.version + 1}),
            previous_version=session.version,
        )
        return shot

    monkeypatch.setattr(quick_module, "snapshot_sessions", then_written)
    assert quick_report(root) is not None
    assert report_cache.kept_report(root) is None
