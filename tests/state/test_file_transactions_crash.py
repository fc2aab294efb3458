"""A file-backend transaction whose process is SIGKILLed part-way is all-or-nothing.

A real child process runs ``write_many`` over three records on a store whose file layer
kills it (``orchestrator.testing.killing_fs``) at a chosen point: while its intent is being
committed (then nothing may be applied), between two record writes or before the intent is
removed (then everything must be, once someone uses the store again). The parent looks with
a fresh store, as the next run would, and with a store opened before the crash, which must
finish the transaction before it reads a record the transaction touched.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.state import FileStateStore
from tests.support.timing import patience

pytestmark = pytest.mark.asyncio

# The child: the transaction the parent checks, on a store that dies where it is told.
_CHILD = """
import sys, anyio
from orchestrator.state import FileStateStore
from orchestrator.state.transactions import PutRecord, UpdateTask
from orchestrator.testing.killing_fs import KillingFileOps

repo, op, nth, match = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

async def main() -> None:
    async with FileStateStore.for_repo(repo, file_ops=KillingFileOps(op, nth, match)) as store:
        await store.write_many([
            UpdateTask("t1", {"priority": 7}, 1),
            UpdateTask("t2", {"priority": 8}, 1),
            PutRecord("landings", "t1", {"state": "pushed"}, 1),
        ])
    print("committed")

anyio.run(main)
"""

# Lock order, hence write order: records/landings/t1, tasks/t1, tasks/t2.
_APPLIED = {"t1": (2, 7), "t2": (2, 8), "landing": (2, "pushed")}
_UNTOUCHED = {"t1": (1, 0), "t2": (1, 0), "landing": (1, "prepared")}


async def _prepare(repo: Path) -> None:
    async with FileStateStore.for_repo(repo) as store:
        await store.update_task_state("t1", {"priority": 0})
        await store.update_task_state("t2", {"priority": 0})
        await store.put_record("landings", "t1", {"state": "prepared"})


def _run_child(repo: Path, op: str, nth: int, match: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # our own interpreter and script
        [sys.executable, "-c", _CHILD, str(repo), op, str(nth), match],
        capture_output=True,
        text=True,
        timeout=patience(120),
        check=False,
    )


async def _seen(store: FileStateStore) -> dict[str, tuple[int, object]]:
    t1 = await store.get_task_state("t1")
    t2 = await store.get_task_state("t2")
    landing = await store.get_record("landings", "t1")
    assert t1 is not None and t2 is not None and landing is not None
    return {
        "t1": (t1.version, t1.priority),
        "t2": (t2.version, t2.priority),
        "landing": (landing.version, landing.data["state"]),
    }


def _leftovers(repo: Path) -> list[str]:
    directory = repo / ".council" / "state" / "transactions"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def _raw_versions(repo: Path) -> tuple[bool, bool]:
    """Whether each task's current file on disk is already at version 2 (no store involved:
    what the crash left, before anyone replays it)."""
    base = repo / ".council" / "state" / "tasks"
    return tuple(  # type: ignore[return-value]
        b'"version":2' in (base / key / "current.json").read_bytes() for key in ("t1", "t2")
    )


@pytest.mark.parametrize(
    ("op", "nth", "match", "raw", "expected"),
    [
        # Inside the commit: the intent's temp file is written and synced, not renamed.
        pytest.param(
            "replace", 1, "transactions", (False, False), _UNTOUCHED, id="before-intent-committed"
        ),
        # Between two record writes: the keyed record is written, neither task.
        pytest.param(
            "replace", 2, "current.json", (False, False), _APPLIED, id="after-first-record"
        ),
        # Between the second and third record writes.
        pytest.param(
            "replace", 3, "current.json", (True, False), _APPLIED, id="after-second-record"
        ),
        # Every record written, the intent still there.
        pytest.param(
            "unlink", 1, "transactions", (True, True), _APPLIED, id="before-intent-removed"
        ),
    ],
)
async def test_killed_transaction_is_all_or_nothing_on_next_open(
    tmp_path: Path,
    op: str,
    nth: int,
    match: str,
    raw: tuple[bool, bool],
    expected: dict[str, tuple[int, object]],
) -> None:
    await _prepare(tmp_path)
    child = _run_child(tmp_path, op, nth, match)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert "committed" not in child.stdout
    assert _raw_versions(tmp_path) == raw  # what the dead process left on disk
    if expected is _UNTOUCHED:
        assert [n for n in _leftovers(tmp_path) if n.endswith(".tmp")]  # died mid-commit
    else:
        assert [n for n in _leftovers(tmp_path) if n.endswith(".json")]  # committed intent
    async with FileStateStore.for_repo(tmp_path) as store:
        assert await _seen(store) == expected
    assert _leftovers(tmp_path) == []  # replayed or rolled back, and cleared


async def test_store_open_before_the_crash_finishes_it_before_reading(tmp_path: Path) -> None:
    await _prepare(tmp_path)
    async with FileStateStore.for_repo(tmp_path) as store:
        assert await _seen(store) == _UNTOUCHED  # this store is in use before the crash
        child = _run_child(tmp_path, "replace", 2, "current.json")
        assert child.returncode == -signal.SIGKILL, child.stderr
        assert _raw_versions(tmp_path) == (False, False)  # half done on disk
        task = await store.get_task_state("t2")  # a record the dead transaction touched
        assert task is not None and (task.version, task.priority) == (2, 8)
        assert await _seen(store) == _APPLIED
        assert _leftovers(tmp_path) == []


async def test_a_write_after_the_crash_waits_for_the_replay(tmp_path: Path) -> None:
    """A single-record write of a record the dead transaction touched comes after it: its
    expected version is the one the transaction left."""
    await _prepare(tmp_path)
    child = _run_child(tmp_path, "replace", 2, "current.json")
    assert child.returncode == -signal.SIGKILL, child.stderr
    async with FileStateStore.for_repo(tmp_path) as store:
        task = await store.update_task_state("t2", {"priority": 9}, expected_version=2)
        assert (task.version, task.priority) == (3, 9)
        history = await store.task_history("t2")
        assert [t.priority for t in history][:1] == [8]  # the transaction's version kept


async def test_damaged_intent_is_quarantined_not_replayed(tmp_path: Path) -> None:
    """An intent is framed with a checksum like every record: one damaged on disk after it
    was committed is moved aside whole rather than replayed from bytes that lie (the
    transaction is then lost past its first write, and the quarantined file says what it
    was)."""
    await _prepare(tmp_path)
    child = _run_child(tmp_path, "replace", 2, "current.json")
    assert child.returncode == -signal.SIGKILL, child.stderr
    (intent,) = (tmp_path / ".council" / "state" / "transactions").glob("*.json")
    raw = intent.read_bytes()
    assert raw.count(b"\n") == 2 and b'"sha256"' in raw  # body line + checksum line
    damaged = raw.replace(b'"priority":8', b'"priority":6')
    intent.write_bytes(damaged)
    async with FileStateStore.for_repo(tmp_path) as store:
        seen = await _seen(store)
    # The damaged intent is moved aside, not replayed: the record the dead process wrote
    # before it died stays, the others stay as they were.
    assert seen == {**_UNTOUCHED, "landing": (2, "pushed")}
    assert (tmp_path / ".council" / "state" / "quarantine" / "transactions" / intent.name).exists()
