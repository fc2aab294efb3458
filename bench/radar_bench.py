"""The collision radar's cost per phase commit, with 16 and 64 live sessions, incremental
against a full recompute.

Setup per session count: a repository of ``--files`` modules of 40 lines; that many sessions,
each a real git worktree on a branch of its own, each with a small committed edit: session
``i`` changes two lines of module ``i // 2`` (so sessions pair up on one module: the odd one of
a pair edits the lines next to its partner's, a hunk overlap and a merge-tree conflict) and one
line of a module shared by every eighth session (file overlaps). A ``Radar`` over a
``FileStateStore`` looks at all of them once (the start of the run).

Then each round, alternating which side goes first:

- ``incremental``: ``--commits`` phase commits, one after another; each is one session's new
  small edit, committed (outside the measure: that is the CLI's and the phase's work), then
  ``Radar.moved(session)`` measured: its worktree read, its pairs with every live session
  compared, a ``merge-tree`` for each pair that shares a file (tips cached), the collision
  records written or deleted in the store;
- ``full``: ``Radar.full(sessions)``: every worktree read and every pair compared again, every
  merge asked again (the cache cleared): what the radar would cost at each phase commit
  without its snapshots;
- ``timer look``: ``Radar.look(sessions)`` with nothing moved: the every-``radar.interval``
  look of a long phase (each worktree's tip and diff read, nothing compared).

Figures: wall and CPU (this process's threads plus every git process it started and waited
for: ``getrusage``'s self and children) per operation, git processes per operation; median
[range] of the rounds; the ratio full / incremental taken round by round.

    .venv/bin/python bench/radar_bench.py [--sessions 16 64] [--rounds 5] [--commits 8] [--json]
    .venv/bin/python bench/radar_bench.py --quick     # 2 and 8 sessions, 2 rounds (CI)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from orchestrator.git.repo import Git
from orchestrator.radar.engine import LiveSession, PassCost, Radar
from orchestrator.state import FileStateStore

sys.path.insert(0, str(Path(__file__).parent))
from proc_measure import machine, ratios, spread, summary

LINES = 40


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def module(n: int) -> str:
    return "".join(f"value_{n}_{i} = {i}\n" for i in range(LINES))


@dataclass
class Session:
    live: LiveSession
    edits: int = 0

    def edit(self, rel: str, line: int, text: str) -> None:
        path = self.live.path / rel
        lines = path.read_text().splitlines(keepends=True)
        lines[line] = text + "\n"
        path.write_text("".join(lines))

    def commit(self) -> None:
        git(self.live.path, "commit", "-q", "-am", f"phase {self.edits}")


def build(root: Path, sessions: int) -> tuple[Path, list[Session]]:
    repo = root / "repo"
    (repo / "src").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "bench@example.com")
    git(repo, "config", "user.name", "bench")
    modules = sessions // 2 + sessions // 8 + 1
    for n in range(modules):
        (repo / "src" / f"m{n}.py").write_text(module(n))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    fork = git(repo, "rev-parse", "HEAD")
    found = []
    for i in range(sessions):
        path = root / "worktrees" / f"s{i}"
        git(repo, "worktree", "add", "-q", "-b", f"council/t{i}/1", str(path), "main")
        session = Session(LiveSession(f"s{i}", f"t{i}", path, fork))
        first = 10 + (i % 2)  # the pair's edits touch: lines 10-11 and 11-12
        session.edit(f"src/m{i // 2}.py", first, f"edit_{i} = 'a'")
        session.edit(f"src/m{i // 2}.py", first + 1, f"edit_{i} = 'b'")
        shared = sessions // 2 + i // 8  # every eighth session shares a module, lines apart
        session.edit(f"src/m{shared}.py", 2 + 4 * (i % 8), f"shared_{i} = 1")
        session.commit()
        found.append(session)
    return repo, found


def cpu() -> float:
    """CPU seconds of this process's threads and of every child it waited for (microseconds,
    where ``os.times`` counts clock ticks of 10 ms)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def measured(action: Callable[[], Awaitable[PassCost]]) -> tuple[float, float, int]:
    wall, used = time.perf_counter(), cpu()
    cost = await action()
    return time.perf_counter() - wall, cpu() - used, cost.git


async def bench(sessions: int, rounds: int, commits: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="radar-bench-") as tmp:
        root = Path(tmp)
        repo, live = build(root, sessions)
        everyone = [s.live for s in live]
        async with FileStateStore(root / "state") as store:
            radar = Radar(store, Git(repo, root / "hooks"), "refs/heads/main")
            await radar.look(everyone)
            collisions = len(await store.list_records("radar-collisions"))
            figures: dict[str, list[tuple[float, float, float]]] = {
                "incremental": [],
                "full": [],
                "timer look": [],
            }
            turn = 0

            async def incremental() -> tuple[float, float, float]:
                nonlocal turn
                walls, cpus, gits = [], [], []
                for _ in range(commits):
                    session = live[turn % len(live)]
                    turn += 1
                    session.edits += 1
                    target = f"src/m{(turn % len(live)) // 2}.py"
                    session.edit(target, 30 + session.edits % 8, f"more_{turn} = 1")
                    session.commit()
                    wall, used, calls = await measured(lambda s=session: radar.moved(s.live))
                    walls.append(wall)
                    cpus.append(used)
                    gits.append(calls)
                return statistics.mean(walls), statistics.mean(cpus), statistics.mean(gits)

            async def full() -> tuple[float, float, float]:
                wall, used, calls = await measured(lambda: radar.full(everyone))
                return wall, used, float(calls)

            async def timer() -> tuple[float, float, float]:
                wall, used, calls = await measured(lambda: radar.look(everyone))
                return wall, used, float(calls)

            sides = [("incremental", incremental), ("full", full), ("timer look", timer)]
            for n in range(rounds):
                order = sides if n % 2 == 0 else list(reversed(sides))
                for name, side in order:
                    figures[name].append(await side())
    result: dict[str, Any] = {"sessions": sessions, "collisions": collisions}
    for name, values in figures.items():
        result[name] = {
            "wall": summary([v[0] for v in values]),
            "cpu": summary([v[1] for v in values]),
            "git": summary([v[2] for v in values]),
        }
    result["full_over_incremental_cpu"] = summary(
        ratios([v[1] for v in figures["full"]], [v[1] for v in figures["incremental"]])
    )
    result["full_over_incremental_wall"] = summary(
        ratios([v[0] for v in figures["full"]], [v[0] for v in figures["incremental"]])
    )
    return result


def show(result: dict[str, Any]) -> None:
    print(f"{result['sessions']} live sessions ({result['collisions']} collisions at the start):")
    for name in ("incremental", "full", "timer look"):
        side = result[name]
        print(
            f"  {name:<12} wall {spread(side['wall']['values'], 1000, '{:.1f}')} ms, "
            f"CPU {spread(side['cpu']['values'], 1000, '{:.1f}')} ms, "
            f"git processes {spread(side['git']['values'], 1, '{:.1f}')}"
        )
    print(
        "  full / incremental: CPU "
        f"{spread(result['full_over_incremental_cpu']['values'], 1, '{:.1f}x')}, wall "
        f"{spread(result['full_over_incremental_wall']['values'], 1, '{:.1f}x')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--commits", type=int, default=8, help="phase commits per round")
    parser.add_argument(
        "--quick", action="store_true", help="2 and 8 sessions, 2 rounds of 2 commits (CI)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    rounds, commits = (2, 2) if args.quick else (args.rounds, args.commits)
    sessions = [2, 8] if args.quick else args.sessions
    results = [anyio.run(bench, n, rounds, commits) for n in sessions]
    if args.json:
        print(json.dumps({"machine": machine(), "results": results}, indent=1))
        return
    print(machine())
    print(f"the collision radar per phase commit: {rounds} rounds, {commits} commits a round")
    for result in results:
        show(result)


if __name__ == "__main__":
    main()
