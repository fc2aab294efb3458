"""The OS lock wrapper: exclusive/shared semantics, dead holders, unlinked lock files."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from orchestrator import filelock
from orchestrator.errors import LockError, LockTimeout, LockUnusable
from tests.support.timing import patience


def hold_forever(path: str, ready: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    lock = filelock.try_acquire(Path(path))
    assert lock is not None
    ready.set()  # type: ignore[attr-defined]
    time.sleep(600)


async def test_a_killed_holder_releases_its_lock(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=hold_forever, args=(str(path), ready))
    holder.start()
    try:
        assert ready.wait(60)
        assert filelock.try_acquire(path) is None
        with pytest.raises(LockTimeout):
            await filelock.acquire(path, timeout=patience(0.1))
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(30)
        lock = await filelock.acquire(path, timeout=patience(5))
        lock.release()
    finally:
        if holder.is_alive():
            holder.kill()


def test_two_handles_in_one_process_conflict(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first = filelock.try_acquire(path)
    assert first is not None
    assert filelock.try_acquire(path) is None
    assert filelock.try_acquire(path, shared=True) is None
    first.release()
    readers = [filelock.try_acquire(path, shared=True) for _ in range(3)]
    assert all(r is not None for r in readers)
    assert filelock.try_acquire(path) is None
    for reader in readers:
        assert reader is not None
        reader.release()


def test_an_unlinked_lock_file_is_not_shared_by_two_holders(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    cleaner = filelock.try_acquire(path)
    assert cleaner is not None
    cleaner.unlink_and_release()
    assert not path.exists()
    first = filelock.try_acquire(path)
    assert first is not None and path.exists()
    assert filelock.try_acquire(path) is None
    first.release()


def test_blocking_acquire_times_out(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    held = filelock.try_acquire(path)
    assert held is not None
    with held, pytest.raises(LockTimeout):  # never raised, it would hang to pytest's timeout
        filelock.acquire_blocking(path, timeout=0.1)


def bump(path: Path, at_least: int) -> int:
    lock = filelock.try_acquire(path)
    assert lock is not None
    with lock:
        return lock.bump_counter(at_least)


def test_the_counter_in_a_lock_file_only_grows(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    assert [bump(path, floor) for floor in (0, 0, 10, 0)] == [1, 2, 11, 12]
    path.write_bytes(b"garbage-that-is-long")  # damaged: the caller's floor keeps it growing
    assert bump(path, 12) == 13
    assert path.read_bytes() == b"13"


def test_only_an_exclusive_holder_bumps_the_counter(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    reader = filelock.try_acquire(path, shared=True)
    assert reader is not None
    with pytest.raises(LockError, match="exclusive"):
        reader.bump_counter()
    reader.release()
    with pytest.raises(LockError):
        reader.bump_counter()


def test_a_link_at_a_lock_file_or_on_its_way_is_refused_never_followed(tmp_path: Path) -> None:
    # Some locks keep a counter or a note in their own bytes: through a link, taking the lock
    # would write into whatever it points at (and a link is nobody holding it: no waiting).
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("precious\n")
    root = tmp_path / "root"
    (root / "locks").mkdir(parents=True)
    at_file = root / "locks" / "counter.lock"
    at_file.symlink_to(outside / "victim")
    with pytest.raises(LockUnusable, match=r"counter\.lock: refused .* is a symbolic link"):
        filelock.try_acquire(at_file, root=root)
    (root / "dir").symlink_to(outside, target_is_directory=True)
    with pytest.raises(LockUnusable, match="'dir' on the way is a symbolic link"):
        filelock.try_acquire(root / "dir" / "x.lock", root=root)
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "precious\n"
    at_file.unlink()  # what the message says to do
    lock = filelock.try_acquire(at_file, root=root)
    assert lock is not None and lock.bump_counter() == 1
    lock.release()
