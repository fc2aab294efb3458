"""Session worktrees against the bare git operations under them, in the same run.

Small repository (``--small`` files): one session's create + remove through
``WorktreeManager`` (without a store, and with a ``FileStateStore`` recording ownership)
against bare ``git worktree add -b`` + ``git worktree remove`` + ``git branch -D``, one at a
time and at concurrency 8 (bare git at concurrency 8 runs without any lock, so some of its
adds may fail: those are counted). Rounds alternate so disk noise hits every side alike;
ratios are taken from medians.

Large repository (``--large`` files): how long a new session takes to get its worktree:
bare ``git worktree add``, the manager's fresh add (``--no-checkout`` under the metadata lock,
then the checkout outside it), and a pooled worktree taken and reset to a fresh branch.

    python bench/worktree_bench.py [--small 100] [--large 20000] [--sessions 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import anyio

from orchestrator.state import FileStateStore
from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import WorktreeSettings

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}
_counter = 0


Say = Callable[[str], None]


def next_id() -> int:
    global _counter
    _counter += 1
    return _counter


def git(repo: Path, *args: str, check: bool = True) -> bool:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, env=ENV)
    if check and done.returncode != 0:
        raise RuntimeError(done.stderr.decode())
    return done.returncode == 0


def make_repo(path: Path, files: int) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for n in range(files):
        target = path / f"d{n % 100:02d}" / f"f{n}.txt"
        target.parent.mkdir(exist_ok=True)
        target.write_text(f"file {n}\n" * 20)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


async def bare_round(repo: Path, sessions: int, concurrency: int) -> tuple[float, int]:
    failures = 0
    slots = anyio.Semaphore(concurrency)

    def one() -> bool:
        n = next_id()
        path = repo / ".council" / "bare" / f"b{n}"
        ok = git(repo, "worktree", "add", "-q", "-b", f"bare/{n}", str(path), "main", check=False)
        ok = git(repo, "worktree", "remove", str(path), check=False) and ok
        return git(repo, "branch", "-q", "-D", f"bare/{n}", check=False) and ok

    async def run() -> None:
        nonlocal failures
        async with slots:
            if not await anyio.to_thread.run_sync(one):
                failures += 1

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(sessions):
            group.start_soon(run)
    return (time.perf_counter() - started) / sessions, failures


async def council_round(manager: WorktreeManager, sessions: int, concurrency: int) -> float:
    slots = anyio.Semaphore(concurrency)

    async def run() -> None:
        async with slots:
            n = next_id()
            session = await manager.create_session_worktree(f"s{n}", "bench", f"t{n % 5}")
            await manager.remove_session_worktree(session)

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(sessions):
            group.start_soon(run)
    return (time.perf_counter() - started) / sessions


async def small(
    root: Path, files: int, sessions: int, rounds: int, say: Say
) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    repo = make_repo(root / "small", files)
    async with FileStateStore.for_repo(repo) as store:
        plain = WorktreeManager(repo)
        recorded = WorktreeManager(repo, store=store)
        for concurrency in (1, 8):
            results: dict[str, list[float]] = {"bare": [], "council": [], "council+store": []}
            failed = 0
            for _ in range(rounds):
                seconds, failures = await bare_round(repo, sessions, concurrency)
                results["bare"].append(seconds)
                failed += failures
                results["council"].append(await council_round(plain, sessions, concurrency))
                results["council+store"].append(
                    await council_round(recorded, sessions, concurrency)
                )
            floor = statistics.median(results["bare"])
            say(f"small repo ({files} files), create+remove, concurrency {concurrency}:")
            figures[f"concurrency {concurrency}"] = seen = {}
            for name, values in results.items():
                median = seen[f"{name}_ms"] = statistics.median(values) * 1000
                say(f"  {name:14} {median:7.1f} ms/session  {median / floor / 1000:4.2f}x")
            say(f"  bare git failures without the lock: {failed} of {sessions * rounds}")
    return figures


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def large(root: Path, files: int, rounds: int, say: Say) -> dict[str, float]:
    started = time.perf_counter()
    repo = make_repo(root / "large", files)
    say(f"large repo ({files} files) made in {time.perf_counter() - started:.1f}s")
    fresh = WorktreeManager(repo)
    pooled = WorktreeManager(repo, settings=WorktreeSettings(pool_size=1))
    seed = await pooled.create_session_worktree("seed", "bench", "seed")
    await pooled.remove_session_worktree(seed)  # the pool now holds one worktree
    results: dict[str, list[float]] = {"bare add": [], "council add": [], "council pool": []}
    for _ in range(rounds):
        n = next_id()
        path = str(repo / ".council" / "bare" / f"b{n}")
        add = partial(git, repo, "worktree", "add", "-q", "-b", f"bare/{n}", path)
        results["bare add"].append(await timed(partial(anyio.to_thread.run_sync, add)))
        await anyio.to_thread.run_sync(partial(git, repo, "worktree", "remove", path))
        for name, manager in (("council add", fresh), ("council pool", pooled)):
            sid = f"s{next_id()}"
            create = partial(manager.create_session_worktree, sid, "bench", "t")
            results[name].append(await timed(create))
            await manager.remove_session_worktree(sid)
    floor = statistics.median(results["bare add"])
    say(f"large repo ({files} files), time until a new session has its worktree:")
    figures: dict[str, float] = {}
    for name, values in results.items():
        median = figures[f"{name}_s"] = statistics.median(values)
        say(f"  {name:14} {median:6.2f} s  {median / floor:4.2f}x")
    return figures


async def main(
    small_files: int, large_files: int, sessions: int, rounds: int, as_json: bool = False
) -> None:
    say: Say = partial(print, file=sys.stderr if as_json else sys.stdout)
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="council-bench-") as tmp:
        root = Path(tmp)
        figures["small"] = await small(root, small_files, sessions, rounds, say)
        if large_files:
            figures["large"] = await large(root, large_files, rounds, say)
    if as_json:
        print(json.dumps({"sessions": sessions, "rounds": rounds, **figures}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1,000 files in the large one, 4 sessions, 1 round (CI)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.large, args.sessions, args.rounds = 1000, 4, 1
    anyio.run(main, args.small, args.large, args.sessions, args.rounds, args.json)
