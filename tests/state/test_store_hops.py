"""Worker-thread hops of the file store (issue 51: a few hops per task, not seventy).

A record that surely does not exist is told on the calling thread by two stats
(``FileCore.surely_absent``): no hop for a read, a listing or a deletion of nothing. It is never
told where it might be stale: a record another store (another process) wrote is seen at once,
and a transaction a dead process left on disk is finished before anything is told absent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from orchestrator.state import FileStateStore
from orchestrator.state.file.fsops import FileOps
from orchestrator.state.file.intents import IntentLog
from tests.support.timing import patience


class Hops:
    def __init__(self) -> None:
        self.count = 0


@contextmanager
def counted_hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hops]:
    """Count every ``anyio.to_thread.run_sync`` call made inside the block."""
    hops = Hops()
    original = anyio.to_thread.run_sync

    async def counting(*args: Any, **kwargs: Any) -> Any:
        hops.count += 1
        return await original(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(anyio.to_thread, "run_sync", counting)
        yield hops


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileStateStore]:
    async with FileStateStore.for_repo(tmp_path) as opened:
        await opened.get_task_state("first")  # the first use settles what a crash left
        yield opened


async def test_nothing_there_is_told_without_a_worker_thread(
    store: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.put_record("kept", "a", {"n": 1})
    with counted_hops(monkeypatch) as hops:
        assert await store.get_record("nowhere", "k") is None  # no namespace
        assert await store.get_record("kept", "absent") is None  # a namespace, not the key
        assert await store.list_records("nowhere") == []
        assert await store.delete_record("nowhere", "k") is False
        assert await store.delete_record("kept", "absent") is False
        assert await store.get_task_state("never") is None
    assert hops.count == 0
    with counted_hops(monkeypatch) as hops:
        found = await store.get_record("kept", "a")  # a record that exists: one hop
    assert found is not None and found.data == {"n": 1}
    assert hops.count == 1


async def test_what_another_store_wrote_is_seen_at_once(
    tmp_path: Path, store: FileStateStore
) -> None:
    assert await store.get_record("shared", "k") is None
    assert await store.list_records("shared") == []
    assert await store.get_task_state("t9") is None
    async with FileStateStore.for_repo(tmp_path) as other:  # another process's store
        await other.put_record("shared", "k", {"by": "other"})
        await other.update_task_state("t9", {"priority": 3})
    record = await store.get_record("shared", "k")
    assert record is not None and record.data == {"by": "other"}
    assert [r.key for r in await store.list_records("shared")] == ["k"]
    task = await store.get_task_state("t9")
    assert task is not None and task.priority == 3
    async with FileStateStore.for_repo(tmp_path) as other:
        assert await other.delete_record("shared", "k") is True
    assert await store.get_record("shared", "k") is None
    assert await store.list_records("shared") == []


# A transaction that makes a new record, killed after its intent is committed and before
# any record is written: the record exists only in the intent.
_CHILD = """
import sys, anyio
from orchestrator.state import FileStateStore
from orchestrator.state.transactions import PutRecord
from orchestrator.testing.killing_fs import KillingFileOps

async def main() -> None:
    ops = KillingFileOps("replace", 1, "current.json")
    async with FileStateStore.for_repo(sys.argv[1], file_ops=ops) as store:
        await store.write_many([PutRecord("fresh", "k", {"made": "by the dead"})])
    print("committed")

anyio.run(main)
"""


async def test_a_record_a_dead_transaction_makes_is_never_told_absent(
    tmp_path: Path, store: FileStateStore
) -> None:
    assert await store.get_record("fresh", "k") is None  # this store is in use already
    child = subprocess.run(  # our own interpreter and script
        [sys.executable, "-c", _CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=patience(120),
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert not (store.root / "records" / "fresh" / "k" / "current.json").exists()
    record = await store.get_record("fresh", "k")  # the intent is finished first
    assert record is not None and record.data == {"made": "by the dead"}


def test_an_intent_directory_is_quiet_only_when_surely_empty(tmp_path: Path) -> None:
    log = IntentLog(tmp_path / "transactions", FileOps())
    assert log.quiet()  # no directory: nothing pending
    log.directory.mkdir()
    assert not log.quiet()  # never listed: a listing must tell
    # Listed empty while its last change is recent (its time stamp set a minute ahead, so
    # however slow the machine, the listing comes within the window): not trusted yet.
    ahead = time.time_ns() + 60 * 10**9
    os.utime(log.directory, ns=(ahead, ahead))
    assert log.pending() == []
    assert not log.quiet()
    # Its last change long past: listed empty once, then one stat tells, until it changes.
    past = time.time_ns() - 60 * 10**9
    os.utime(log.directory, ns=(past, past))
    assert log.pending() == []
    assert log.quiet()
    (log.directory / "1-2-ab.json").write_bytes(b"{}")
    assert not log.quiet()
    assert [p.name for p in log.pending()] == ["1-2-ab.json"]
