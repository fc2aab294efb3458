"""MergeQueue.merge as a ratio to the bare git merge it is built on.

One repository, ``--branches`` branches each touching one file of ``--files``. Every branch is
merged into three bases that start at the same commit, so all sides see the same repository
shape in the same run, interleaved (the order rotates) so disk and CPU noise hit all alike:

- ``main``: ``MergeQueue.merge`` (lock, tips, trailer index, merge-tree, checkout lookup,
  commit-tree, compare-and-swap, result);
- ``floor``: the bare sequence started straight from ``anyio.run_process``:
  ``git merge-tree --write-tree`` + ``git commit-tree`` + ``git update-ref`` (it knows its own
  base tip, so it reads nothing and checks nothing);
- ``floor-git``: the same three commands through ``orchestrator.git.repo.Git.run``, to separate
  the wrapper's cost from the queue's;
- ``floor-sync``: the same three commands with a blocking ``subprocess.run`` (no event loop,
  no thread: the cheapest way to start git from Python, shown for reference).

With ``--checkout``, a second part merges into bases checked out in clean linked worktrees:
the queue (which then fast-forwards the checkout) against ``git merge --no-ff`` run there.
The ratio is taken from the medians. Target: at most 1.5x against ``floor``.

    python bench/merge_bench.py [--branches 50] [--files 200] [--checkout]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from orchestrator.git.repo import Git
from orchestrator.merge.queue import GitIdentity, MergeQueue, MergeStatus

IDENTITY = GitIdentity().env()
FLOORS = ("floor", "floor-git", "floor-sync")
Say = Callable[[str], None]
ENV = {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=ENV
    ).stdout.strip()


def build_repo(root: Path, files: int, branches: int, bases: list[str]) -> Path:
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "start")
    with (repo / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write(".council/\n")
    for n in range(files):
        (repo / f"f{n:04}.txt").write_text(f"file {n}\n" * 20)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "initial")
    for n in range(branches):
        git(repo, "switch", "-q", "-c", f"b{n}", "start")
        path = repo / f"f{n % files:04}.txt"
        path.write_text(path.read_text() + f"branch {n}\n")
        git(repo, "commit", "-q", "-am", f"branch {n}")
    git(repo, "switch", "-q", "--detach", "start")
    for base in bases:
        git(repo, "branch", base, "start")
    return repo


class BareMerge:
    """merge-tree + commit-tree + update-ref, with the base tip carried from the last merge."""

    def __init__(self, repo: Path, base: str, runner: Callable[..., Awaitable[str]]) -> None:
        self.repo, self.base, self.run = repo, base, runner
        self.tip = git(repo, "rev-parse", base)

    async def merge(self, branch: str) -> None:
        tree = (await self.run("merge-tree", "--write-tree", self.tip, branch)).split()[0]
        new = await self.run(
            "commit-tree", tree, "-p", self.tip, "-p", branch, "-m", f"Merge {branch}"
        )
        await self.run("update-ref", f"refs/heads/{self.base}", new, self.tip)
        self.tip = new


def process_runner(repo: Path) -> Callable[..., Awaitable[str]]:
    async def run(*args: str) -> str:
        done = await anyio.run_process(["git", "-C", str(repo), *args], env=ENV)
        return done.stdout.decode().strip()

    return run


def blocking_runner(repo: Path) -> Callable[..., Awaitable[str]]:
    async def run(*args: str) -> str:
        return git(repo, *args)

    return run


def wrapper_runner(repo: Path) -> Callable[..., Awaitable[str]]:
    wrapped = Git(repo, repo / ".council" / "git-hooks", IDENTITY)

    async def run(*args: str) -> str:
        return (await wrapped.run(*args)).out

    return run


async def timed(action: Awaitable[object]) -> float:
    started = time.perf_counter()
    await action
    return time.perf_counter() - started


async def bench_worktreeless(repo: Path, branches: int, say: Say) -> dict[str, float]:
    queue = MergeQueue(repo, "main")
    floor = BareMerge(repo, "floor", process_runner(repo))
    floor_git = BareMerge(repo, "floor-git", wrapper_runner(repo))
    floor_sync = BareMerge(repo, "floor-sync", blocking_runner(repo))
    times: dict[str, list[float]] = {name: [] for name in ("queue", *FLOORS)}
    calls: list[int] = []

    async def queue_merge(branch: str) -> None:
        result = await queue.merge("bench", branch, task_id=branch)
        assert result.status is MergeStatus.MERGED, result
        calls.append(result.git_calls)

    for n in range(branches):
        sides = [
            ("queue", queue_merge),
            ("floor", floor.merge),
            ("floor-git", floor_git.merge),
            ("floor-sync", floor_sync.merge),
        ]
        for name, merge in sides[n % 4 :] + sides[: n % 4]:
            times[name].append(await timed(merge(f"b{n}")))
    tree = {git(repo, "rev-parse", f"{b}^{{tree}}") for b in ("main", *FLOORS)}
    assert len(tree) == 1, "every base must end with the same tree"
    med = {name: statistics.median(values) for name, values in times.items()}
    say(f"branches merged per side    {branches}")
    say(
        f"git processes per merge     queue {statistics.median(calls):g} (first {calls[0]}), bare 3"
    )
    say(f"bare (anyio.run_process)    {med['floor'] * 1e3:.2f} ms")
    say(f"bare (orchestrator Git.run) {med['floor-git'] * 1e3:.2f} ms")
    say(f"bare (blocking subprocess)  {med['floor-sync'] * 1e3:.2f} ms")
    say(f"MergeQueue.merge            {med['queue'] * 1e3:.2f} ms")
    say(f"ratio queue/bare            {med['queue'] / med['floor']:.2f}x  (target <= 1.50x)")
    say(f"ratio queue/bare Git.run    {med['queue'] / med['floor-git']:.2f}x")
    say(f"ratio queue/bare blocking   {med['queue'] / med['floor-sync']:.2f}x")
    return {name: value * 1e3 for name, value in med.items()}


async def bench_checkout(root: Path, repo: Path, branches: int, say: Say) -> dict[str, float]:
    queue_wt, floor_wt = root / "wt-queue", root / "wt-floor"
    git(repo, "worktree", "add", "-q", str(queue_wt), "co-main")
    git(repo, "worktree", "add", "-q", str(floor_wt), "co-floor")
    queue = MergeQueue(repo, "co-main")
    runner = process_runner(floor_wt)
    times: dict[str, list[float]] = {"queue": [], "floor": []}

    async def queue_merge(branch: str) -> None:
        result = await queue.merge("bench", branch, task_id=f"co-{branch}")
        assert result.status is MergeStatus.MERGED and result.checkout == queue_wt, result

    async def floor_merge(branch: str) -> None:
        await runner("merge", "--no-ff", "--quiet", "--no-stat", "-m", f"Merge {branch}", branch)

    for n in range(branches):
        sides = [("queue", queue_merge), ("floor", floor_merge)]
        for name, merge in sides[n % 2 :] + sides[: n % 2]:
            times[name].append(await timed(merge(f"b{n}")))
    med = {name: statistics.median(values) for name, values in times.items()}
    say(f"checked-out base: git merge --no-ff in the checkout {med['floor'] * 1e3:.2f} ms")
    say(f"checked-out base: MergeQueue.merge (fast-forward)    {med['queue'] * 1e3:.2f} ms")
    say(f"ratio queue/merge --no-ff    {med['queue'] / med['floor']:.2f}x")
    return {name: value * 1e3 for name, value in med.items()}


async def main(branches: int, files: int, checkout: bool, as_json: bool = False) -> None:
    out = sys.stderr if as_json else sys.stdout  # the figures' JSON alone on stdout
    say: Say = functools.partial(print, file=out)
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="council-merge-bench-") as tmp:
        root = Path(tmp)
        bases = ["main", *FLOORS, "co-main", "co-floor"]
        repo = build_repo(root, files, branches, bases)
        figures["worktreeless_ms"] = await bench_worktreeless(repo, branches, say)
        if checkout:
            figures["checkout_ms"] = await bench_checkout(root, repo, branches, say)
    if as_json:
        print(json.dumps({"branches": branches, "files": files, **figures}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--branches", type=int, default=50)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--checkout", action="store_true")
    parser.add_argument("--quick", action="store_true", help="10 branches of 50 files (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.branches, args.files = 10, 50
    anyio.run(main, args.branches, args.files, args.checkout, args.json)
