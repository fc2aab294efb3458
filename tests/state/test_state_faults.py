"""Disk faults under every kind of state write: ENOSPC, EIO, EACCES or a crash at the nth call
of each file operation (``orchestrator.testing.faulty_fs``).

For each write (task created or updated, claim acquired, renewed or released, session
updated, checkpoint, keyed record) and each call the write makes of each operation, the fault
is injected there and then:

- a refused write raises one ``StateWriteError`` naming the file and the errno, and the record
  is as it was (same version, same content) - or, when only the directory fsync failed after
  the replace, the error says the new version is in place (``applied``) and it is;
- a refused *follow-up* write (the session's derived metrics, the event log) does not fail the
  write it follows;
- no temp file is left behind, no record anywhere is damaged (``verify_records``), and once
  the fault is gone the same write succeeds;
- after a crash, a new store (the next process) reads the old or the new version, never a
  damaged one, the crashed writer's temp files are cleaned, and the write succeeds again.

Also: an event-log append the disk refuses (only events are lost, with one warning), and a
recovery from history the disk refuses (nothing lost; the next read recovers).

Each case starts from a copy of one seeded store, and fsyncs are counted and faulted but not
made (what they make durable cannot be seen from inside one process), so the whole matrix
costs a file copy per case rather than a dozen disk flushes.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.errors import CouncilError, StateWriteError
from orchestrator.events import Event
from orchestrator.models import ClaimStatus, TaskStatus
from orchestrator.state import FileStateStore
from orchestrator.state.file.claims import TOKEN_BLOCK
from orchestrator.testing.faulty_fs import FaultyFileOps, SimulatedCrash, UnsyncedFileOps

Act = Callable[[FileStateStore], Awaitable[object]]
Look = Callable[[FileStateStore], Awaitable[object]]

LOG = "orchestrator.state.file.log.event_log"
UNSYNCED = UnsyncedFileOps()
# The seeded claim's fencing token: the first the store hands out (its first block's first).
TOKEN = TOKEN_BLOCK


@dataclass(frozen=True)
class StoreWrite:
    """One kind of store write: what it does, what it changes, which files must not fail."""

    act: Act
    look: Look  # the state the write is about
    # Directories (under the store root) a refused write in must raise: the record the write
    # is about first, then any written before it (the fencing counter).
    fatal: tuple[str, ...]


async def seed(root: Path) -> None:
    async with FileStateStore(root, file_ops=UNSYNCED) as store:
        await store.create_session({}, ["t1", "t2"], session_id="s1")
        await store.update_task_state("t1", {"priority": 1})
        claim = await store.acquire_claim("t2", "seed", 3600, {"status": TaskStatus.RUNNING})
        assert claim is not None and claim.token == TOKEN
        await store.put_record("ns", "k", {"n": 1})
        await store.create_checkpoint("s1", "seed")


async def acquire(store: FileStateStore) -> object:
    claim = await store.acquire_claim("t1", "me", 600, {"status": TaskStatus.RUNNING})
    assert claim is not None
    return claim


WRITES: dict[str, StoreWrite] = {
    "create-task": StoreWrite(
        lambda s: s.update_task_state("t9", {"priority": 5}),
        lambda s: s.get_task_state("t9"),
        ("tasks/t9",),
    ),
    "update-task": StoreWrite(
        lambda s: s.update_task_state("t1", {"priority": 2, "metadata": {"x": "y"}}),
        lambda s: s.get_task_state("t1"),
        ("tasks/t1",),
    ),
    "claim-acquire": StoreWrite(
        acquire, lambda s: s.get_task_state("t1"), ("tasks/t1", "counters/fencing")
    ),
    "claim-renew": StoreWrite(
        lambda s: s.renew_claim("t2", TOKEN, 7200), lambda s: s.get_task_state("t2"), ("tasks/t2",)
    ),
    "claim-release": StoreWrite(
        lambda s: s.release_claim("t2", TOKEN, ClaimStatus.COMPLETED, {"status": TaskStatus.DONE}),
        lambda s: s.get_task_state("t2"),
        ("tasks/t2",),
    ),
    "session-update": StoreWrite(
        lambda s: s.update_session("s1", {"metadata": {"note": "x"}}),
        lambda s: s.get_session("s1"),
        ("sessions/s1",),
    ),
    "checkpoint": StoreWrite(
        lambda s: s.create_checkpoint("s1", "test"),
        lambda s: s.list_checkpoints("s1"),
        ("checkpoints",),
    ),
    "keyed-record": StoreWrite(
        lambda s: s.put_record("ns", "k", {"n": 2}),
        lambda s: s.get_record("ns", "k"),
        ("records/ns/k",),
    ),
    "keyed-record-volatile": StoreWrite(
        lambda s: s.put_record("ns", "k", {"n": 2}, durable=False),
        lambda s: s.get_record("ns", "k"),
        ("records/ns/k",),
    ),
}

OPS = ("mkdir", "open", "write", "fsync", "replace", "link", "fsync_dir")
# A full disk and a permission change last until someone fixes them; an I/O error may be
# a one-off. None is a crash.
FAULTS: dict[str, tuple[int | None, bool]] = {
    "ENOSPC": (errno.ENOSPC, True),
    "EACCES": (errno.EACCES, True),
    "EIO": (errno.EIO, False),
    "crash": (None, False),
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seed") / "state"
    anyio.run(seed, root)
    return root


_profiles: dict[str, dict[str, int]] = {}


def calls_made(seeded: Path, tmp_path: Path, name: str) -> dict[str, int]:
    """How often the write calls each file operation (one fault-free run)."""
    if name not in _profiles:
        root = fresh_copy(seeded, tmp_path / "profile")
        ops = FaultyFileOps(sync=False)

        async def run() -> None:
            async with FileStateStore(root, file_ops=ops) as store:
                await WRITES[name].act(store)

        anyio.run(run)
        _profiles[name] = dict(ops.calls)
    return _profiles[name]


def fresh_copy(seeded: Path, root: Path) -> Path:
    shutil.copytree(seeded, root, symlinks=True)
    return root


async def look(root: Path, write: StoreWrite) -> object:
    """The state as the next process would read it."""
    async with FileStateStore(root, file_ops=UNSYNCED) as store:
        return await write.look(store)


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.tmp"))


def is_fatal(root: Path, write: StoreWrite, hit: Path | None) -> bool:
    return any(in_dir(hit, root / d) for d in write.fatal)


def in_dir(hit: Path | None, directory: Path) -> bool:
    """Is ``hit`` the directory, or a file in it (a temp file, the record, a history link)?"""
    assert hit is not None
    return directory in (hit, hit.parent)


def landed(root: Path, write: StoreWrite, op: str, hit: Path | None) -> bool:
    """Is the record the write is about in its new version after a fault at ``hit``? Only
    when the fault came after its replace: at its directory fsync, or in a follow-up write."""
    target = root / write.fatal[0]
    return (op == "fsync_dir" and in_dir(hit, target)) or not is_fatal(root, write, hit)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("name", WRITES)
async def test_a_fault_at_every_call_leaves_a_readable_state(
    seeded: Path, tmp_path: Path, name: str, op: str, fault: str
) -> None:
    write = WRITES[name]
    code, persistent = FAULTS[fault]
    calls = await anyio.to_thread.run_sync(calls_made, seeded, tmp_path, name)
    if op in ("fsync", "fsync_dir") and name == "keyed-record-volatile":
        assert op not in calls  # lock-owner records are atomic but never synced
    if op == "link" and name in ("create-task", "checkpoint"):
        assert op not in calls  # nothing to archive: there is no previous version
    for nth in range(1, calls.get(op, 0) + 1):
        root = fresh_copy(seeded, tmp_path / f"case-{nth}")
        before = await look(root, write)
        where = f"{name}: {fault} at {op} #{nth}"
        if code is None:
            await check_crash(root, write, op, nth, before, where)
        else:
            await check_refusal(root, write, op, nth, code, persistent, before, where)


async def check_refusal(
    root: Path,
    write: StoreWrite,
    op: str,
    nth: int,
    code: int,
    persistent: bool,
    before: object,
    where: str,
) -> None:
    ops = FaultyFileOps(sync=False)
    async with FileStateStore(root, file_ops=ops) as store:
        ops.fail(op, nth=nth, code=code, persistent=persistent)
        error: BaseException | None = None
        try:
            await write.act(store)
        except BaseException as exc:  # which error, exactly, is the point
            error = exc
        assert ops.fired, where
        hits = [f.path for f in ops.fired]
        fatal = [h for h in hits if is_fatal(root, write, h)]
        if fatal:
            # One clear error naming the file, and what became of the record.
            assert isinstance(error, StateWriteError), f"{where}: {error!r}"
            assert isinstance(error, CouncilError)
            assert error.errno == code, where
            assert in_dir(fatal[0], error.path.parent), where  # the file the disk refused
            assert str(error.path) in str(error) and os.strerror(code) in str(error), where
            assert error.applied == (op == "fsync_dir"), where
            assert ("could not be synced" in str(error)) == error.applied, where
            after = await look(root, write)
            assert (after != before) == landed(root, write, op, fatal[0]), where
        else:
            # Only a follow-up failed (the event log, the session's metrics): the write stands.
            assert error is None, f"{where}: {error!r} for a fault at {hits}"
            assert await look(root, write) != before, where
        assert temp_files(root) == [], where
        assert await verify(root) == [], where

        ops.heal()  # the space is free again
        if error is not None and not error.applied:
            await write.act(store)
            assert await look(root, write) != before, where
        assert await store.update_task_state("t1", {"priority": 8}) is not None


async def check_crash(
    root: Path, write: StoreWrite, op: str, nth: int, before: object, where: str
) -> None:
    ops = FaultyFileOps(sync=False)
    async with FileStateStore(root, file_ops=ops) as store:
        ops.crash(op, nth=nth)
        with pytest.raises(SimulatedCrash):
            await write.act(store)
    new = landed(root, write, op, ops.fired[0].path)
    # The next process: every record intact, the state old or new, never damaged.
    assert await verify(root) == [], where
    after = await look(root, write)
    assert (after != before) == new, where
    async with FileStateStore(root, file_ops=UNSYNCED) as store:
        await store.clean_stale_locks()
        assert temp_files(root) == [], where
        if not new:
            await write.act(store)
            assert await write.look(store) != before, where
        assert await store.update_task_state("t1", {"priority": 8}) is not None


async def verify(root: Path) -> list[Any]:
    async with FileStateStore(root, file_ops=UNSYNCED) as store:
        return await store.verify_records()


# -- the event log ----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("op", ["mkdir", "open", "write"])
async def test_a_refused_event_append_loses_only_events_and_says_so_once(
    tmp_path: Path, op: str, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    code, _ = FAULTS[fault]
    events = tmp_path / "events.jsonl"
    async with FileStateStore(tmp_path / "state", events_path=events) as store:
        for n in range(2):
            await store.emit(Event(type="test.before", data={"n": n}))
    before = events.read_bytes()

    ops = FaultyFileOps(sync=False)
    async with FileStateStore(tmp_path / "state", events_path=events, file_ops=ops) as store:
        if code is None:
            ops.crash(op)
            await store.emit(Event(type="test.lost", data={}))  # queued for the log's writer
            with pytest.raises(SimulatedCrash):
                store.events.flush()
        else:
            # The disk stays full for three appends and one state write: the appends are
            # dropped with one warning, the state write fails on its own terms.
            ops.fail(op, code=code, persistent=True)
            with caplog.at_level(logging.WARNING, logger=LOG):
                for n in range(3):
                    await store.emit(Event(type="test.lost", data={"n": n}))
                store.events.flush()
                warnings = [r.getMessage() for r in caplog.records if r.name == LOG]
                assert len(warnings) == 1 and str(events) in warnings[0], warnings
                assert os.strerror(code) in warnings[0]
                with pytest.raises(StateWriteError):
                    await store.update_task_state("t1", {"priority": 1})
                ops.heal()
                await store.emit(Event(type="test.after", data={}))
                store.events.flush()
                last = [r.getMessage() for r in caplog.records if r.name == LOG][-1]
                assert "3 events were lost" in last
    assert events.read_bytes().startswith(before)  # what was logged stays as it was

    async with FileStateStore(tmp_path / "state", events_path=events) as store:
        await store.emit(Event(type="test.next", data={}))
        kinds = [e.type for e in store.events.read()]
        assert store.events.skipped <= 1  # at most the half line the refused append left
    expected = ["test.before", "test.before"]
    expected += ["test.next"] if code is None else ["test.after", "test.next"]
    # Appends queued together go in one write: a refused write may still have put whole lines
    # of it on the disk before it failed. Those are real events; only torn lines are skipped.
    assert [k for k in kinds if k.startswith("test.") and k != "test.lost"] == expected


# -- a recovery from history the disk refuses -------------------------------------------------


@pytest.mark.parametrize("op", ["mkdir", "replace", "open", "write", "fsync"])
async def test_a_refused_recovery_loses_nothing_and_the_next_read_recovers(
    seeded: Path, tmp_path: Path, op: str
) -> None:
    root = fresh_copy(seeded, tmp_path / "state")
    current = root / "tasks" / "t1" / "current.json"
    damaged = current.read_bytes()[:-5]
    current.write_bytes(damaged)
    ops = FaultyFileOps(sync=False)
    async with FileStateStore(root, file_ops=ops) as store:
        ops.fail(op, code=errno.ENOSPC, persistent=True)
        with pytest.raises(StateWriteError) as refused:
            await store.get_task_state("t1")
        assert refused.value.path == current
        assert "damaged" in str(refused.value) and "not recovered" in str(refused.value)
        assert temp_files(root) == []
        ops.heal()
        task = await store.get_task_state("t1")
        assert task is not None and task.priority == 0  # the version before the damaged one
    quarantined = [p.read_bytes() for p in (root / "quarantine" / "tasks").iterdir()]
    assert quarantined == [damaged]
