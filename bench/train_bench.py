"""Landings per second: merges one at a time against merges that travel as trains, and the floor.

``--branches`` branches, each adding one file, are landed on a base, every side starting from
the same commit in the same run, in alternating rounds (the order rotates) so noise hits all
alike. Two places the base can live:

- **local**: the repository's own ``main`` (not checked out);
- **remote**: a bare repository's ``main``, pushed to with a lease from a clone (the team's
  way: each landing fetches, builds, pushes).

Sides, on each:

- ``one at a time``: ``MergeQueue.merge`` awaited for each branch in turn: every landing pays
  a lock hold, a read of the base (a fetch), its update (a push);
- ``trains``: the same merges asked for all at once (``--ready`` at a time, as that many
  sessions finishing together would): they board trains (``merge.train``);
- ``floor``: a bare script of plain git commands doing the least trains of ``--ready`` must
  do: for each ``--ready`` branches, one read (one fetch) of the base, ``merge-tree
  --write-tree`` + ``commit-tree`` per branch, each on the one before, one ``update-ref`` (one
  ``push --force-with-lease``). It knows nothing is landed already and checks nothing.

Printed: landings per second of each side (median of rounds, with the range), and the ratios
trains / one at a time and floor / trains. Wall time is what landings per second means; the
process CPU of each side (this process plus its git children) is printed too.

    .venv/bin/python bench/train_bench.py [--branches 64] [--ready 8] [--rounds 5]
        [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from orchestrator.merge.queue import GitIdentity, MergeQueue, MergeStatus

IDENTITY = GitIdentity().env()
ENV = {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}
SIDES = ("one at a time", "trains", "floor")


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env=ENV,
        input=stdin,
    ).stdout.strip()


def cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Place:
    """A repository with ``branches`` branches, and a fresh base for each landing round."""

    def __init__(self, root: Path, branches: int, remote: bool) -> None:
        self.remote = remote
        self.repo = root / "repo"
        self.repo.mkdir()
        git(self.repo, "init", "-q", "-b", "start")
        with (self.repo / ".git" / "info" / "exclude").open("a") as exclude:
            exclude.write(".council/\n")
        for n in range(50):
            (self.repo / f"f{n:03}.txt").write_text(f"file {n}\n" * 20)
        git(self.repo, "add", ".")
        git(self.repo, "commit", "-q", "-m", "initial")
        self.start = git(self.repo, "rev-parse", "HEAD")
        self.branches = [f"b{n:04}" for n in range(branches)]
        for name in self.branches:
            blob = git(self.repo, "hash-object", "-w", "--stdin", stdin=f"{name}\n")
            tree = git(
                self.repo,
                "mktree",
                stdin=git(self.repo, "ls-tree", self.start) + f"\n100644 blob {blob}\t{name}.txt\n",
            )
            commit = git(self.repo, "commit-tree", tree, "-p", self.start, "-m", name)
            git(self.repo, "update-ref", f"refs/heads/{name}", commit)
        git(self.repo, "switch", "-q", "--detach")
        self.bare = root / "remote.git"
        if remote:
            git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
            git(self.repo, "remote", "add", "origin", str(self.bare))
        self.rounds = 0

    def fresh_base(self) -> str:
        """A new base branch at the start commit (a new ``main`` on the remote): its name."""
        self.rounds += 1
        name = f"main{self.rounds}"
        if self.remote:
            git(self.repo, "push", "-q", "origin", f"{self.start}:refs/heads/{name}")
        else:
            git(self.repo, "update-ref", f"refs/heads/{name}", self.start)
        return name


async def one_at_a_time(place: Place, base: str, ready: int) -> None:
    queue = queue_for(place, base)
    for name in place.branches:
        landed = await queue.merge("s1", name, task_id=name)
        assert landed.status is MergeStatus.MERGED, landed


async def trains(place: Place, base: str, ready: int) -> None:
    queue = queue_for(place, base)
    limiter = anyio.Semaphore(ready)

    async def land(name: str) -> None:
        async with limiter:
            landed = await queue.merge(f"s-{name}", name, task_id=name)
            assert landed.status is MergeStatus.MERGED, landed

    async with anyio.create_task_group() as group:
        for name in place.branches:
            group.start_soon(land, name)


async def floor(place: Place, base: str, ready: int) -> None:
    """For each ``ready`` branches at a time: one read of the base, a chain of merge commits,
    one update (see the module doc)."""

    def run() -> None:
        repo = place.repo
        for first in range(0, len(place.branches), ready):
            if place.remote:
                fetched = f"refs/heads/{base}:refs/remotes/origin/{base}"
                git(repo, "fetch", "-q", "origin", fetched)
                tip = git(repo, "rev-parse", f"refs/remotes/origin/{base}")
            else:
                tip = git(repo, "rev-parse", f"refs/heads/{base}")
            old = tip
            for name in place.branches[first : first + ready]:
                tree = git(repo, "merge-tree", "--write-tree", tip, name).splitlines()[0]
                tip = git(repo, "commit-tree", tree, "-p", tip, "-p", name, "-m", f"merge {name}")
            if place.remote:
                lease = f"--force-with-lease=refs/heads/{base}:{old}"
                git(repo, "push", "-q", lease, "origin", f"{tip}:refs/heads/{base}")
            else:
                git(repo, "update-ref", f"refs/heads/{base}", tip, old)

    await anyio.to_thread.run_sync(run)


def queue_for(place: Place, base: str) -> MergeQueue:
    return MergeQueue(place.repo, base, remote="origin" if place.remote else None)


SIDE: dict[str, Callable[[Place, str, int], Awaitable[None]]] = {
    "one at a time": one_at_a_time,
    "trains": trains,
    "floor": floor,
}


def measure(place: Place, rounds: int, ready: int) -> dict[str, dict[str, list[float]]]:
    found: dict[str, dict[str, list[float]]] = {s: {"wall": [], "cpu": []} for s in SIDES}
    for n in range(rounds):
        order = SIDES[n % len(SIDES) :] + SIDES[: n % len(SIDES)]
        for side in order:
            base = place.fresh_base()
            started, used = time.perf_counter(), cpu()
            anyio.run(SIDE[side], place, base, ready)
            found[side]["wall"].append(time.perf_counter() - started)
            found[side]["cpu"].append(cpu() - used)
            where = place.bare if place.remote else place.repo
            count = ("rev-list", "--count", "--first-parent", base, "--not", place.start)
            assert int(git(where, *count)) == len(place.branches), side
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--branches", type=int, default=64)
    parser.add_argument("--ready", type=int, default=8, help="merges asked for at once")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="8 branches, 2 rounds (CI)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.branches, args.rounds = 8, 2
    report: dict[str, object] = {"branches": args.branches, "ready": args.ready}
    for where in ("local", "remote"):
        with tempfile.TemporaryDirectory() as tmp:
            place = Place(Path(tmp), args.branches, where == "remote")
            found = measure(place, args.rounds, args.ready)
        rates = {s: [args.branches / w for w in found[s]["wall"]] for s in SIDES}
        med = {s: statistics.median(rates[s]) for s in SIDES}
        cpu_each = {s: statistics.median(found[s]["cpu"]) / args.branches for s in SIDES}
        report[where] = {
            "landings_per_second": med,
            "range": {s: [min(rates[s]), max(rates[s])] for s in SIDES},
            "cpu_ms_per_landing": {s: cpu_each[s] * 1000 for s in SIDES},
            "trains_vs_one_at_a_time": med["trains"] / med["one at a time"],
            "floor_vs_trains": med["floor"] / med["trains"],
        }
        if not args.json:
            print(
                f"{where}: {args.branches} landings, {args.ready} asked at once, "
                f"{args.rounds} rounds"
            )
            for s in SIDES:
                low, high = min(rates[s]), max(rates[s])
                print(
                    f"  {s:<14} {med[s]:8.1f} landings/s  (range {low:.1f}-{high:.1f}),"
                    f" CPU {cpu_each[s] * 1000:6.1f} ms per landing"
                )
            print(
                f"  trains / one at a time: {med['trains'] / med['one at a time']:.2f}x;"
                f" floor / trains: {med['floor'] / med['trains']:.2f}x"
            )
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
