"""A file lock as a run takes it (LockManager, registry in the state store) against its floor.

What each side does per iteration (one repository path, one session, uncontended):

- floor ``lock + owner record``: open the path's lock file, ``portalocker.lock`` (exclusive,
  non-blocking); write the owner record atomically (a temporary file written, renamed over
  the record: seen by every process at once) *without* fsync; then, to release, unlink the
  record, ``portalocker.unlock``, close. The least work with the same result as the manager
  with a store (an OS lock whose owner every process can read) and the same durability: the
  registry's records are written ``durable=False`` (they describe a live process; a machine
  crash ends the process too), so the floor fsyncs nothing either.
- ``LockManager + store``: ``acquire_file_lock`` + ``release_file_lock`` with a
  ``FileStateStore``: path normalisation, the OS lock with the inode re-check (in a worker
  thread), the registry's records (``session-locks`` index, ``file-owners`` entry: written,
  then deleted) and the events, each store call a worker-thread round trip.
- floor ``portalocker path``: open, lock, unlock, close: the OS lock alone.
- ``LockManager``: the manager with no store (registry in memory), against that floor.
- ``portalocker fd`` and ``flock fd``: lock + unlock of a descriptor kept open (reference only).

Rounds alternate the order of the sides; each figure is the median of the rounds, with its
range, in wall time and in CPU time of this process (all its threads: ``time.process_time``),
and the ratios are taken round by round. Targets: ``LockManager`` <= 2.0x the portalocker
path; ``LockManager + store`` <= 3x its floor (a target first set against a floor that fsynced
twice; the floor now has the manager's durability, so it is harder to meet).

    .venv/bin/python bench/lock_bench.py [--ops 3000] [--store-ops 200] [--rounds 5] [--json]
    .venv/bin/python bench/lock_bench.py --quick     # fewer operations and rounds: ~20 s
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import portalocker

from orchestrator.locks.manager import LockManager
from orchestrator.state import FileStateStore

sys.path.insert(0, str(Path(__file__).parent))
from proc_measure import machine, ratios, spread, summary, verdict

FLAGS = portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
REPO_PATH = "src/pkg/module.py"
PLAIN_TARGET = 2.0
STORE_TARGET = 3.0
Cost = tuple[float, float]  # wall, CPU seconds per operation


def timed(fn: Callable[[], None], ops: int) -> Cost:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(ops):
        fn()
    return (time.perf_counter() - wall) / ops, (time.process_time() - cpu) / ops


async def timed_async(fn: Callable[[], Awaitable[None]], ops: int) -> Cost:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(ops):
        await fn()
    return (time.perf_counter() - wall) / ops, (time.process_time() - cpu) / ops


def floor_path(lock_file: Path, ops: int) -> Cost:
    def once() -> None:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        portalocker.lock(fd, FLAGS)
        portalocker.unlock(fd)
        os.close(fd)

    return timed(once, ops)


def floor_owner(lock_file: Path, record: Path, ops: int) -> Cost:
    """The path's lock, its owner recorded atomically (not fsynced) and removed again."""
    temporary = record.with_suffix(".tmp")

    def once() -> None:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        portalocker.lock(fd, FLAGS)
        out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        os.write(out, b'{"path": "src/pkg/module.py", "session": "bench", "token": 1}')
        os.close(out)
        os.replace(temporary, record)
        os.unlink(record)
        portalocker.unlock(fd)
        os.close(fd)

    return timed(once, ops)


def floor_fd(fd: int, ops: int) -> Cost:
    def once() -> None:
        portalocker.lock(fd, FLAGS)
        portalocker.unlock(fd)

    return timed(once, ops)


def floor_flock(fd: int, ops: int) -> Cost:
    def once() -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)

    return timed(once, ops)


async def manager_round(locks: LockManager, ops: int) -> Cost:
    async def once() -> None:
        await locks.acquire_file_lock("bench", REPO_PATH)
        await locks.release_file_lock("bench", REPO_PATH)

    return await timed_async(once, ops)


async def main(ops: int, store_ops: int, rounds: int, as_json: bool) -> None:
    header = machine()
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="council-bench-", dir=Path.cwd()) as tmp:
        project = Path(tmp)
        (project / "src" / "pkg").mkdir(parents=True)
        (project / REPO_PATH).write_text("x = 1\n")
        lock_file = project / "floor.lock"
        lock_file.touch()
        (project / "owners").mkdir()
        record = project / "owners" / "owner.json"
        fd = os.open(lock_file, os.O_RDWR | os.O_CLOEXEC)
        async with FileStateStore.for_repo(project) as store:
            plain = LockManager(project)
            stored = LockManager(project, store=store)
            await manager_round(plain, 100)  # warm caches, create lock files
            await manager_round(stored, 10)

            async def sync(fn: Callable[[], Cost]) -> Cost:
                return fn()

            order: list[tuple[str, Callable[[], Awaitable[Cost]]]] = [
                ("portalocker path", lambda: sync(lambda: floor_path(lock_file, ops))),
                ("lock + owner record", lambda: sync(lambda: floor_owner(lock_file, record, ops))),
                ("portalocker fd", lambda: sync(lambda: floor_fd(fd, ops))),
                ("flock fd", lambda: sync(lambda: floor_flock(fd, ops))),
                ("LockManager", lambda: manager_round(plain, ops)),
                ("LockManager + store", lambda: manager_round(stored, store_ops)),
            ]
            for number in range(rounds):
                for name, run in order if number % 2 == 0 else list(reversed(order)):
                    wall, cpu = await run()
                    walls.setdefault(name, []).append(wall)
                    cpus.setdefault(name, []).append(cpu)
        os.close(fd)
    plain_wall = ratios(walls["LockManager"], walls["portalocker path"])
    plain_cpu = ratios(cpus["LockManager"], cpus["portalocker path"])
    store_wall = ratios(walls["LockManager + store"], walls["lock + owner record"])
    store_cpu = ratios(cpus["LockManager + store"], cpus["lock + owner record"])
    if as_json:
        result = {
            "bench": "lock",
            "machine": header,
            "rounds": rounds,
            "wall_per_op": {name: summary(values) for name, values in walls.items()},
            "cpu_per_op": {name: summary(values) for name, values in cpus.items()},
            "ratio_manager_wall": summary(plain_wall),
            "ratio_manager_cpu": summary(plain_cpu),
            "ratio_store_wall": summary(store_wall),
            "ratio_store_cpu": summary(store_cpu),
            "targets": {"manager": PLAIN_TARGET, "store": STORE_TARGET},
        }
        print(json.dumps(result, indent=1))
        return
    print(f"lock: {rounds} rounds alternating; {header}")
    print(f"{'median [range], us per lock+unlock':34} {'wall':>26} {'CPU':>26}")
    for name in walls:
        wall_text = spread(walls[name], 1e6, "{:.1f}")
        cpu_text = spread(cpus[name], 1e6, "{:.1f}")
        print(f"{name:34} {wall_text:>26} {cpu_text:>26}")
    print(
        f"LockManager / portalocker path: wall {spread(plain_wall)}x, CPU {spread(plain_cpu)}x "
        f"({verdict(statistics.median(plain_cpu), PLAIN_TARGET)} on CPU)"
    )
    print(
        f"LockManager + store / lock + owner record (same durability): wall "
        f"{spread(store_wall)}x, CPU {spread(store_cpu)}x "
        f"({verdict(statistics.median(store_cpu), STORE_TARGET)} on CPU)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=3000, help="operations per round (floors)")
    parser.add_argument(
        "--store-ops", type=int, default=200, help="operations per round with a store"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1000 ops (60 with a store), 3 rounds")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    ops, store_ops, rounds = (
        (1000, 60, 3) if args.quick else (args.ops, args.store_ops, args.rounds)
    )
    anyio.run(main, ops, store_ops, rounds, args.json)
