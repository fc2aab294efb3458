"""A lock on a directory's own descriptor (``filelock``, ``directory=True``), as the file store
locks its records: it excludes as a lock file does, across processes and inside one, and a
directory removed or renamed under a waiting locker is never taken for the one there now."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from orchestrator import filelock
from orchestrator.errors import LockError, LockTimeout, LockUnusable
from orchestrator.state.file.fsops import FileOps
from tests.support.timing import patience


def hold_forever(path: str, ready: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    lock = filelock.try_acquire(Path(path), directory=True)
    assert lock is not None
    ready.set()  # type: ignore[attr-defined]
    time.sleep(600)


async def test_another_process_is_excluded_until_its_holder_dies(tmp_path: Path) -> None:
    record = tmp_path / "tasks" / "t1"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=hold_forever, args=(str(record), ready))
    holder.start()
    try:
        assert ready.wait(60)
        assert record.is_dir() and not list(record.iterdir())  # made, and no file in it
        assert filelock.try_acquire(record, directory=True) is None
        assert filelock.try_acquire(record, shared=True, directory=True) is None
        with pytest.raises(LockTimeout):
            await filelock.acquire(record, timeout=patience(0.1), directory=True)
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(30)
        lock = await filelock.acquire(record, timeout=patience(5), directory=True)
        lock.release()
    finally:
        holder.kill()
        holder.join(30)


def test_two_handles_in_one_process_conflict_and_readers_share(tmp_path: Path) -> None:
    record = tmp_path / "r"
    first = filelock.try_acquire(record, shared=True, directory=True)
    second = filelock.try_acquire(record, shared=True, directory=True)
    assert first is not None and second is not None
    assert filelock.try_acquire(record, directory=True) is None
    first.release()
    assert filelock.try_acquire(record, directory=True) is None  # one reader left
    second.release()
    writer = filelock.try_acquire(record, directory=True)
    assert writer is not None
    assert filelock.try_acquire(record, shared=True, directory=True) is None
    writer.release()


def test_the_stores_opener_gives_each_lock_a_descriptor_of_its_own(tmp_path: Path) -> None:
    """The store reaches a record's directory through descriptors it keeps open and shares
    between threads; a lock must still be an open of its own, or two locks in one process
    would be one."""
    ops = FileOps()
    ops.confine(tmp_path)
    record = tmp_path / "tasks" / "t1"
    taken = filelock.try_acquire(record, root=tmp_path, opener=ops.open_lock, directory=True)
    assert taken is not None and record.is_dir()
    again = filelock.try_acquire(record, root=tmp_path, opener=ops.open_lock, directory=True)
    assert again is None
    assert filelock.try_acquire(record, root=tmp_path, directory=True) is None
    taken.release()
    again = filelock.try_acquire(record, root=tmp_path, opener=ops.open_lock, directory=True)
    assert again is not None
    again.release()
    ops.close_dirs()


@pytest.mark.parametrize("change", ["removed", "renamed"])
def test_a_directory_gone_from_its_path_is_not_the_lock_any_more(
    tmp_path: Path, change: str
) -> None:
    """A holder removes its record's directory while it holds the lock (or it is moved
    aside); a locker that opened the old directory before gets the lock on it only after
    the holder let go, sees the path names another directory (or none), and locks the one
    there now: never two holders of the lock the path names."""
    record = tmp_path / "r"
    holder = filelock.try_acquire(record, directory=True)
    assert holder is not None
    stale = os.open(record, os.O_RDONLY | os.O_DIRECTORY)  # what a racer opened before
    if change == "removed":
        os.rmdir(record)
    else:
        os.rename(record, tmp_path / "aside")
    holder.release()
    # The path names a new directory now: whoever locks it holds the only lock there is.
    fresh = filelock.try_acquire(record, directory=True)
    assert fresh is not None and record.is_dir()
    assert os.fstat(stale).st_ino != os.stat(record).st_ino
    assert filelock.try_acquire(record, directory=True) is None
    fresh.release()
    os.close(stale)


def test_a_directory_lock_has_no_file_to_unlink_count_or_note(tmp_path: Path) -> None:
    lock = filelock.try_acquire(tmp_path / "r", directory=True)
    assert lock is not None
    with pytest.raises(LockError):
        lock.unlink_and_release()  # its owner removes the directory, then releases
    with pytest.raises(LockError):
        lock.bump_counter()
    with pytest.raises(LockError):
        lock.write_note(b"me")
    assert lock.held
    lock.release()


def test_a_file_or_a_link_in_place_of_the_directory_is_unusable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory\n")
    with pytest.raises(LockUnusable, match=r"cannot use lock directory .*move it away"):
        filelock.try_acquire(tmp_path / "file", root=tmp_path, directory=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "link").symlink_to(elsewhere)
    with pytest.raises(LockUnusable, match="never follows or touches it: move it away"):
        filelock.try_acquire(tmp_path / "link", root=tmp_path, directory=True)
    assert (tmp_path / "file").read_text() == "not a directory\n" and elsewhere.is_dir()
