"""The coordination layer's cost, each part as a ratio to the bare git or OS operation under it.

Runs, in one process on one machine:

1. session worktree create + remove vs ``git worktree add`` + ``remove`` (``worktree_bench``),
   and a pooled worktree vs ``git worktree add`` on a large repository;
2. steady state: a session's setup inside a long add/remove loop vs a fresh ``git worktree add``
   in a repository that never had a worktree removed (disks slow down right after deletions);
3. an uncontended file lock vs a raw portalocker lock (``lock_bench``);
4. a merge vs bare ``git merge-tree`` + ``commit-tree`` + ``update-ref`` (``merge_bench``).

Targets (issue 3): setup+teardown <= 1.2x bare + 5 ms; pooled acquire >= 5x faster than add on
20,000 files; steady-state setup <= 1.5x a fresh add; file lock <= 2x portalocker; merge <= 1.5x.

    python bench/coordination_bench.py [--large 20000] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).parent))

import lock_bench
import merge_bench
import worktree_bench

from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import WorktreeSettings


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, env=worktree_bench.ENV
    )


async def steady_state(root: Path, files: int, cycles: int, pool_size: int) -> None:
    """Median time to give a session its worktree, late in a create/remove loop, against a
    fresh ``git worktree add`` in a repository that never removed one."""
    fresh_repo = worktree_bench.make_repo(root / f"fresh-{pool_size}", files)
    loop_repo = worktree_bench.make_repo(root / f"loop-{pool_size}", files)
    fresh: list[float] = []
    for n in range(10):
        started = time.perf_counter()
        _git(
            fresh_repo,
            "worktree",
            "add",
            "-q",
            "-b",
            f"fresh-{n}",
            str(root / f"wt-{pool_size}-{n}"),
        )
        fresh.append(time.perf_counter() - started)
    manager = WorktreeManager(loop_repo, settings=WorktreeSettings(pool_size=pool_size))
    late: list[float] = []
    for n in range(cycles):
        started = time.perf_counter()
        session = await manager.create_session_worktree(f"s{n}", "bench", f"task-{n}")
        elapsed = time.perf_counter() - started
        await manager.remove_session_worktree(session)
        if n >= cycles - 10:
            late.append(elapsed)
    floor = statistics.median(fresh)
    cost = statistics.median(late)
    label = f"pool {pool_size}" if pool_size else "no pool"
    print(f"steady state ({files} files, {label}): session setup after {cycles - 10} cycles")
    print(f"  fresh git worktree add   {floor * 1e3:7.1f} ms  1.00x")
    print(
        f"  council setup            {cost * 1e3:7.1f} ms  {cost / floor:4.2f}x  (target <= 1.50x)"
    )


async def main(large: int, quick: bool) -> None:
    rounds = 1 if quick else 3
    print("== 1. session worktrees")
    await worktree_bench.main(100, 1000 if quick else large, 4 if quick else 20, rounds)
    print("\n== 2. steady state")
    with tempfile.TemporaryDirectory(prefix="council-bench-") as tmp:
        for pool_size in (0, 2):
            await steady_state(Path(tmp), 100, 20 if quick else 40, pool_size)
    print("\n== 3. file locks")
    await lock_bench.main(1000 if quick else 3000, 10 if quick else 40, rounds, False)
    print("\n== 4. merges")
    await merge_bench.main(10 if quick else 50, 50 if quick else 200, False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=20000, help="files in the large repository")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer rounds and sessions, a large repository of 1,000 files (CI)",
    )
    args = parser.parse_args()
    anyio.run(main, args.large, args.quick)
