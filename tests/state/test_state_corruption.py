"""A state file cut short or with a changed byte, at every offset of a real file: detected,
quarantined and recovered from history, or reported with the file and the way out; never
silently reset to an empty or default record.

Every kind of file the store keeps is damaged at every byte: task, session, keyed record and
fencing counter records (with history: recovered; without: ``StateCorrupted``), checkpoints
(reported, the damaged file kept, the others still usable) and the event log (the damaged
line skipped, every other event read). The loops are fast because nothing is fsynced
(``UnsyncedFileOps``: durability is not what they test) and each offset only puts the record's
few pristine files back instead of building a new store.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from orchestrator.errors import StateCorrupted
from orchestrator.events import Event
from orchestrator.models import TaskStatus
from orchestrator.state import FileStateStore
from orchestrator.state.file.claims import TOKEN_BLOCK
from orchestrator.state.file.record_files.records import RecordKind
from orchestrator.testing.faulty_fs import UnsyncedFileOps

Make = Callable[[FileStateStore], Awaitable[object]]
Read = Callable[[FileStateStore], Awaitable[BaseModel | None]]
Pick = Callable[[FileStateStore], RecordKind[Any]]


@dataclass(frozen=True)
class Record:
    key: str
    kind: Pick
    make: Make  # writes the record twice: a history version to recover from, and current
    read: Read  # the locked read a caller makes (recovering a damaged record)


async def claim_into_a_second_block(store: FileStateStore) -> int:
    """Claims until the fencing counter was written twice (its tokens come in blocks of
    ``TOKEN_BLOCK``), so it has a version in its history; the last token."""
    await store.update_task_state("t1", {})
    token = 0
    for n in range(TOKEN_BLOCK + 1):
        claim = await store.acquire_claim("t1", f"h{n}", 600)
        assert claim is not None
        token = claim.token
        await store.release_claim("t1", claim.token)
    return token


RECORDS = {
    "task": Record(
        "t1",
        lambda s: s.tasks,
        lambda s: all_of(
            s.update_task_state("t1", {"priority": 1, "metadata": {"note": "first"}}),
            s.update_task_state("t1", {"priority": 2, "metadata": {"note": "second"}}),
        ),
        lambda s: s.get_task_state("t1"),
    ),
    "session": Record(
        "s1",
        lambda s: s.sessions,
        lambda s: all_of(
            s.create_session({"run": "x"}, [], session_id="s1"),
            s.update_session("s1", {"status": "interrupted"}),
        ),
        lambda s: s.get_session("s1"),
    ),
    "keyed-record": Record(
        "k",
        lambda s: s.core.namespace("file-owners"),
        lambda s: all_of(
            s.put_record("file-owners", "k", {"path": "a.py", "token": 1}),
            s.put_record("file-owners", "k", {"path": "a.py", "token": 2}),
        ),
        lambda s: s.get_record("file-owners", "k"),
    ),
    "fencing-counter": Record(
        "fencing",
        lambda s: s.counters,
        claim_into_a_second_block,
        lambda s: s.core.read(s.counters, "fencing"),
    ),
}


async def all_of(*steps: Awaitable[object]) -> None:
    for step in steps:
        await step


def damaged(original: bytes, mode: str) -> Iterator[tuple[int, bytes]]:
    """The file cut at every offset, or with the byte at every offset changed."""
    for offset in range(len(original)):
        if mode == "truncate":
            yield offset, original[:offset]
        else:
            data = bytearray(original)
            data[offset] ^= 0x01
            yield offset, bytes(data)


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.name != ".lock"}


def put_back(directory: Path, files: dict[str, bytes], current: bytes) -> None:
    """The record's files as they were, but for ``current``; history is never changed by a
    recovery, only added to, so only the added entries go."""
    for path in directory.iterdir():
        if path.name not in files and path.name != ".lock":
            path.unlink()
    (directory / "current.json").write_bytes(current)


def without_stamps(record: BaseModel) -> dict[str, Any]:
    return record.model_dump(exclude={"version", "updated_at"})


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A directory in memory where the machine has one: the loops below make thousands of
    small file operations, which cost a journaled disk milliseconds each on a busy machine."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(dir=shm, prefix="council-test-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def through_the_store(offset: int, size: int) -> bool:
    """Whether this offset goes through the store's locked async read (at the ends of the
    file and every 16th byte) or straight to ``load_or_recover``, the function that read runs
    in its worker thread under the record's lock (every other byte; ten times cheaper)."""
    return offset % 16 == 0 or offset < 2 or offset > size - 3


@pytest.mark.parametrize("mode", ["truncate", "flip"])
@pytest.mark.parametrize("name", RECORDS)
async def test_damage_at_every_offset_is_recovered_from_history(
    scratch: Path, name: str, mode: str
) -> None:
    spec = RECORDS[name]
    async with FileStateStore(scratch, file_ops=UnsyncedFileOps()) as store:
        await spec.make(store)
        kind = spec.kind(store)
        directory = kind.dir_for(spec.key)
        pristine = files_of(directory)
        newest = kind.history_versions(spec.key)[-1]
        expected = without_stamps(kind.load_version(spec.key, newest))
        lost = kind.load(spec.key)
        assert lost is not None
        if spec.key != "fencing":  # a counter's content is its version
            assert without_stamps(lost) != expected  # so recovering it shows
        original = pristine["current.json"]
        for offset, data in damaged(original, mode):
            put_back(directory, pristine, data)
            for old in kind.quarantine_dir.glob("*"):
                old.unlink()

            if through_the_store(offset, len(original)):
                record = await spec.read(store)
            else:
                record, recovery = kind.load_or_recover(spec.key)
                assert recovery is not None and recovery.quarantined is not None, offset

            assert record is not None, offset
            assert without_stamps(record) == expected, offset
            assert record.version > lost.version, offset
            assert [q.read_bytes() for q in kind.quarantine_dir.iterdir()] == [data], offset


@pytest.mark.parametrize("mode", ["truncate", "flip"])
@pytest.mark.parametrize("name", RECORDS)
async def test_damage_of_the_only_version_is_reported_never_reset(
    scratch: Path, name: str, mode: str
) -> None:
    spec = RECORDS[name]
    async with FileStateStore(scratch, file_ops=UnsyncedFileOps()) as store:
        await spec.make(store)
        kind = spec.kind(store)
        current = kind.current_path(spec.key)
        for version in kind.history_versions(spec.key):
            kind.history_path(spec.key, version).unlink()
        original = current.read_bytes()
        for offset, data in damaged(original, mode):
            current.write_bytes(data)

            with pytest.raises(StateCorrupted) as caught:
                if through_the_store(offset, len(original)):
                    await spec.read(store)
                else:
                    kind.load_or_recover(spec.key)

            message = str(caught.value)
            assert caught.value.path == current, offset
            assert str(current) in message and "no valid history" in message, offset
            assert "council checkpoint restore" in message and "move" in message, offset
            assert current.read_bytes() == data, offset  # left in place for the user to see
            kept = kind.quarantine_dir / message.split("a copy is kept at ")[1].split(";")[0]
            assert kept.read_bytes() == data, offset
        current.write_bytes(original)
        assert await spec.read(store) is not None  # put back by hand: read as it was


async def test_a_damaged_fencing_counter_never_hands_out_a_token_twice(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path, file_ops=UnsyncedFileOps()) as store:
        last = await claim_into_a_second_block(store)
        current = store.counters.current_path("fencing")
        current.write_bytes(current.read_bytes()[:-3])
    # The next process reads the damaged counter (recovered from its history, a block back).
    async with FileStateStore(tmp_path, file_ops=UnsyncedFileOps()) as store:
        claim = await store.acquire_claim("t1", "c", 600)
        assert claim is not None and claim.token > last


# -- checkpoints ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["truncate", "flip"])
async def test_a_damaged_checkpoint_is_reported_and_the_others_still_serve(
    scratch: Path, mode: str
) -> None:
    async with FileStateStore(scratch, file_ops=UnsyncedFileOps()) as store:
        await store.create_session({"run": "x"}, ["a"], session_id="s1")
        older = await store.create_checkpoint("s1", "older")
        await store.update_task_state("a", {"status": TaskStatus.DONE})
        newer = await store.create_checkpoint("s1", "newer")
        path = store.checkpoints.path(newer.checkpoint_id)
        original = path.read_bytes()
        for offset, data in damaged(original, mode):
            path.write_bytes(data)

            with pytest.raises(StateCorrupted) as caught:
                if through_the_store(offset, len(original)):
                    await store.get_checkpoint(newer.checkpoint_id)
                else:
                    store.checkpoints.read(newer.checkpoint_id)
            assert caught.value.path == path and str(path) in str(caught.value), offset
            assert "council checkpoint list" in str(caught.value), offset
            assert path.read_bytes() == data, offset  # never replaced or removed
            if not through_the_store(offset, len(original)):
                continue
            listed = await store.list_checkpoints("s1")
            assert [c.checkpoint_id for c in listed] == [older.checkpoint_id], offset
            problems = await store.verify_records()
            assert [(p.kind, p.key, p.recovered) for p in problems] == [
                ("checkpoints", newer.checkpoint_id, False)
            ], offset
            assert str(path) in problems[0].detail, offset


# -- the event log ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["truncate", "flip"])
async def test_a_damaged_event_log_loses_only_the_damaged_line(tmp_path: Path, mode: str) -> None:
    log = tmp_path / "events.jsonl"
    async with FileStateStore(tmp_path / "state", events_path=log) as store:
        for n in range(3):
            await store.emit(Event(type="test.event", data={"n": n}))
        originals = list(store.events.read())
    original = log.read_bytes()
    ends = [i + 1 for i, byte in enumerate(original) if byte == ord("\n")]
    for offset, data in damaged(original, mode):
        log.write_bytes(data)
        line = next(n for n, end in enumerate(ends) if offset < end)
        if mode == "truncate":
            # Cut just before its newline, the line is whole: the next append ends it.
            whole = offset == ends[line] - 1
            hit = set(range(line + whole, len(originals)))
        elif offset == ends[line] - 1:  # its newline: the line runs into the next one
            hit = {line, line + 1}
        else:
            hit = {line}
        async with FileStateStore(tmp_path / "state", events_path=log) as store:
            await store.emit(Event(type="test.event", data={"n": "next"}))
            read = list(store.events.read())
            skipped = store.events.skipped

        # Every other line as it was, then the new event on a line of its own. The event log
        # has no checksum (it is not state): a changed byte that still parses, a digit in a
        # field, reads as that line with the change.
        intact = [e for n, e in enumerate(originals) if n not in hit]
        assert read[-1].data == {"n": "next"}, offset
        assert [e for e in read[:-1] if e in originals] == intact, offset
        assert len(read) - 1 - len(intact) <= (0 if mode == "truncate" else 1), offset
        assert skipped <= 1, offset


async def test_the_checkpoint_just_written_is_read_back_from_memory_only_while_its_file_holds_it(
    scratch: Path,
) -> None:
    # A stop reads its checkpoint back at once (``session_report.stopped_report``): the model
    # it was written from, parsed from no file, but only while the file holds those bytes.
    async with FileStateStore(scratch, file_ops=UnsyncedFileOps()) as store:
        await store.create_session({"run": "x"}, ["a", "b"], session_id="s1")
        made = await store.create_checkpoint("s1", "first")
        path = store.checkpoints.path(made.checkpoint_id)
        parsed: list[str] = []
        read = store.checkpoints.read

        def counted(checkpoint_id: str) -> Any:
            parsed.append(checkpoint_id)
            return read(checkpoint_id)

        store.checkpoints.read = counted  # type: ignore[method-assign]
        served = await store.get_checkpoint(made.checkpoint_id)
        assert parsed == []  # from memory: the file holds what was written
        assert served == read(made.checkpoint_id)
        assert [t.task_id for t in served.tasks] == ["a", "b"]
        again = await store.get_checkpoint(made.checkpoint_id)
        assert parsed == [made.checkpoint_id] and again == served  # once only, then the file

        # Written again, damaged at once (the same size): the damage is reported, not hidden.
        newer = await store.create_checkpoint("s1", "second")
        path = store.checkpoints.path(newer.checkpoint_id)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(StateCorrupted):
            await store.get_checkpoint(newer.checkpoint_id)
