"""Uncontended file-lock cost of LockManager as a ratio to a bare portalocker lock in the same run.

What each side does per iteration:

- floor ``portalocker path``: open the lock file, ``portalocker.lock`` (exclusive, non-blocking),
  ``portalocker.unlock``, close: the least a lock on a *path* can cost.
- floor ``portalocker fd`` and ``flock fd``: lock + unlock of a descriptor kept open (shown for
  reference: a manager cannot keep one descriptor open per repository file forever).
- ``LockManager``: ``acquire_file_lock`` + ``release_file_lock`` of one repository path by one
  session: path normalization (symlinks resolved), registry check and entry, fencing token,
  OS lock with the inode re-check.
- ``LockManager + store``: the same with a ``FileStateStore``: the registry entry, the session
  index and the events are state-store records (atomic files, not fsynced: they describe live
  processes) and event-log lines, each a worker-thread round trip, so this side is in milliseconds.

- floor ``portalocker + durable write``: the path's lock plus one durable write (temporary
  file fsynced, renamed, directory fsynced): what the issue allows a lock with its registry.

Rounds alternate so machine noise hits every side alike; medians are compared. Targets: with
the store, at most 3x the portalocker path plus one durable write (issue 16); without one, at
most 2.0x the portalocker path (issue 5; the OS lock is now tried in a worker thread, so the
event loop never opens a lock file, and that hop is most of what this side costs).

    python bench/lock_bench.py [--ops 3000] [--store-ops 40] [--rounds 5]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import portalocker

from orchestrator.locks.manager import LockManager
from orchestrator.state import FileStateStore

FLAGS = portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
REPO_PATH = "src/pkg/module.py"


def timed(fn: Callable[[], None], ops: int) -> float:
    started = time.perf_counter()
    for _ in range(ops):
        fn()
    return (time.perf_counter() - started) / ops


def floor_path(lock_file: Path, ops: int) -> float:
    def once() -> None:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        portalocker.lock(fd, FLAGS)
        portalocker.unlock(fd)
        os.close(fd)

    return timed(once, ops)


def floor_durable(lock_file: Path, record: Path, ops: int) -> float:
    """The issue's floor for a lock with its registry: the path's lock plus one durable write
    (a temporary file written and fsynced, renamed over the record, its directory fsynced)."""

    def once() -> None:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        portalocker.lock(fd, FLAGS)
        temporary = record.with_suffix(".tmp")
        out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        os.write(out, b'{"session": "bench", "token": 1}')
        os.fsync(out)
        os.close(out)
        os.replace(temporary, record)
        directory = os.open(record.parent, os.O_RDONLY | os.O_CLOEXEC)
        os.fsync(directory)
        os.close(directory)
        portalocker.unlock(fd)
        os.close(fd)

    return timed(once, ops)


def floor_fd(fd: int, ops: int) -> float:
    def once() -> None:
        portalocker.lock(fd, FLAGS)
        portalocker.unlock(fd)

    return timed(once, ops)


def floor_flock(fd: int, ops: int) -> float:
    def once() -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)

    return timed(once, ops)


async def manager_round(locks: LockManager, ops: int) -> float:
    started = time.perf_counter()
    for _ in range(ops):
        await locks.acquire_file_lock("bench", REPO_PATH)
        await locks.release_file_lock("bench", REPO_PATH)
    return (time.perf_counter() - started) / ops


async def main(ops: int, store_ops: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="council-bench-", dir=Path.cwd()) as tmp:
        project = Path(tmp)
        (project / "src" / "pkg").mkdir(parents=True)
        (project / REPO_PATH).write_text("x = 1\n")
        lock_file = project / "floor.lock"
        lock_file.touch()
        fd = os.open(lock_file, os.O_RDWR | os.O_CLOEXEC)
        samples: dict[str, list[float]] = {}
        async with FileStateStore.for_repo(project) as store:
            plain = LockManager(project)
            stored = LockManager(project, store=store)
            await manager_round(plain, 100)  # warm caches, create lock files
            await manager_round(stored, 3)
            for _ in range(rounds):
                for name, cost in (
                    ("portalocker path", floor_path(lock_file, ops)),
                    (
                        "portalocker + durable write",
                        floor_durable(lock_file, project / "owner.json", store_ops),
                    ),
                    ("portalocker fd", floor_fd(fd, ops)),
                    ("flock fd", floor_flock(fd, ops)),
                    ("LockManager", await manager_round(plain, ops)),
                    ("LockManager + store", await manager_round(stored, store_ops)),
                ):
                    samples.setdefault(name, []).append(cost)
        os.close(fd)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    for name, cost in medians.items():
        print(f"{name:28s} {cost * 1e6:10.1f} us per lock+unlock")
    floor = medians["portalocker path"]
    plain_ratio = medians["LockManager"] / floor
    print(f"ratio LockManager / portalocker path          {plain_ratio:8.2f}x  (target <= 2.0x)")
    print(
        "ratio LockManager / portalocker fd            "
        f"{medians['LockManager'] / medians['portalocker fd']:8.2f}x"
    )
    print(
        "ratio LockManager + store / portalocker path  "
        f"{medians['LockManager + store'] / floor:8.0f}x  (registry kept in the state store)"
    )
    durable = medians["portalocker + durable write"] + 2 * floor
    print(
        "ratio LockManager + store / (3x portalocker + one durable write)  "
        f"{medians['LockManager + store'] / durable:5.2f}x  (target <= 1.0x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--store-ops", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    anyio.run(main, args.ops, args.store_ops, args.rounds)
