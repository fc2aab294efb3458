"""``events.jsonl`` is rotated by rename when it grows past its size, never truncated: a reader
holding it keeps the old inode's lines whole, the next appends start a new file, and reading
the log goes through the archives first, so no event is lost or repeated, even with two
processes appending and rotating at once. Settled archives are compressed; ``council
clean``'s session cleanup drops the archives older than every session it keeps."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

from orchestrator.events import Event
from orchestrator.models import SessionStatus
from orchestrator.state import FileStateStore
from orchestrator.state.file.log.event_archive import SETTLE_SECONDS, archive_time
from orchestrator.state.file.log.event_log import EventLog


def _log(path: Path, rotate_bytes: int) -> EventLog:
    log = EventLog(path, rotate_bytes=rotate_bytes)
    log.ops.confine(path.parent)
    log.recheck = 0  # check the size at every append
    return log


def _append(log: EventLog, writer: str, count: int) -> None:
    for n in range(count):
        log.write([Event(type="test.tick", data={"writer": writer, "n": n, "pad": "x" * 80})])


def test_rotation_renames_and_reading_finds_every_event(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = _log(path, rotate_bytes=4000)
    _append(log, "a", 5)
    with path.open("rb") as tail:  # a reader tailing the log, as `council watch` does
        held = os.fstat(tail.fileno()).st_ino
        _append(log, "a", 200)
        assert os.stat(path).st_ino != held, "a new file was started"
        first = tail.read().splitlines()
        assert first and all(json.loads(line)["type"] == "test.tick" for line in first)
    archives = log.archives()
    assert len(archives) >= 4
    assert archives[0].stat().st_ino == held, "renamed, not copied or truncated"
    assert all(a.stat().st_size >= 4000 for a in archives)
    assert [e.data["n"] for e in log.read()] == list(range(5)) + list(range(200))
    assert [e.data["n"] for e in log.read(archived=False)] != list(range(200))
    log.close()


def _writer(path: str, name: str) -> None:
    log = _log(Path(path), rotate_bytes=3000)
    _append(log, name, 300)
    log.close()


def test_two_processes_rotating_at_once_lose_and_repeat_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    spawn = multiprocessing.get_context("spawn")
    writers = [spawn.Process(target=_writer, args=(str(path), name)) for name in ("p", "q")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
        assert writer.exitcode == 0
    log = _log(path, rotate_bytes=3000)
    seen = [(e.data["writer"], e.data["n"]) for e in log.read()]
    assert log.skipped == 0
    assert sorted(seen) == sorted((w, n) for w in ("p", "q") for n in range(300))
    for writer in ("p", "q"):  # each process's own events stay in its order
        assert [n for w, n in seen if w == writer] == list(range(300))
    assert len(log.archives()) >= 10


def test_settled_archives_are_compressed_and_still_read(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = _log(path, rotate_bytes=4000)
    _append(log, "a", 60)
    plain = log.archives()
    assert plain and all(a.suffix == ".jsonl" for a in plain)  # not settled yet
    settled = time.time() - SETTLE_SECONDS - 1
    for archive in plain:
        os.utime(archive, (settled, settled))
    _append(log, "a", 60)  # the next rotation compresses what settled
    archives = log.archives()
    assert [a.name for a in archives[: len(plain)]] == [a.name + ".gz" for a in plain]
    assert archives[-1].suffix == ".jsonl"
    assert [e.data["n"] for e in log.read()] == list(range(60)) * 2
    log.close()


async def test_session_cleanup_drops_archives_older_than_every_kept_session(
    tmp_path: Path,
) -> None:
    async with FileStateStore(
        tmp_path / "state", events_path=tmp_path / "events.jsonl", events_rotate_bytes=2000
    ) as store:
        store.events.recheck = 0
        old = await store.create_session({}, ["t1"])
        await store.update_session(old.session_id, {"status": SessionStatus.COMPLETED})
        for n in range(40):
            await store.update_task_state("t1", {"priority": n})
        before_kept = store.events.archives()
        assert before_kept
        time.sleep(0.01)
        kept = await store.create_session({}, ["t2"])
        for n in range(40):
            await store.update_task_state("t2", {"priority": n})
        after_kept = [a for a in store.events.archives() if a not in before_kept]
        assert after_kept and all(archive_time(a) > kept.created_at for a in after_kept)

        assert await store.cleanup_old_sessions(0) == 1
        assert await store.get_session(old.session_id) is None
        assert store.events.archives() == after_kept, "older than every kept session: gone"
        left = [e for e in store.events.read() if e.type == "state.updated"]
        assert {e.data["key"] for e in left} >= {"t2"}
        assert [e.data["key"] for e in left].count("t1") < 40


def test_a_real_run_rotates_and_every_event_is_still_found(tmp_path: Path) -> None:
    from tests.support.cli_process_helpers import council, events
    from tests.support.council_process import task, write_config
    from tests.support.scheduler_helpers import new_repo

    repo = new_repo(tmp_path)
    build = "SAY one\nSLEEP 1.5\nSAY two\nSLEEP 1.5\nWRITE a.txt done"
    config = write_config(tmp_path, repo, task("a", build))
    text = config.read_text().replace(
        "tasks:\n", "state: {monitor: {events_rotate_size: 1KiB}}\ntasks:\n", 1
    )
    config.write_text(text)
    done = council("run", config, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    council_dir = repo / ".council"
    assert list(council_dir.glob("events.*.jsonl*")), "the log was rotated during the run"
    kinds = [e["type"] for e in events(repo)]
    assert "session.created" in kinds and "run.started" in kinds and "run.finished" in kinds
    assert kinds.index("run.started") < kinds.index("task.dispatched") < kinds.index("run.finished")
    shown = council("status", config, cwd=tmp_path)
    assert shown.returncode == 0 and "done" in shown.stdout
