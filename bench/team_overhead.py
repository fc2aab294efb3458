"""The per-task cost of the PostgreSQL backend against the file backend, on one workstation.

The same run of ``--tasks`` tasks at ``--sessions`` at once, through ``Council(config).run()``
in this process (as ``overhead_bench`` does, so the orchestrator's own CPU is this process's):
task ``tNN`` runs the offline ``scripted`` CLI, which only writes ``tasks/tNN.txt`` (no sleep),
so the run is all overhead. Every variant starts from a fresh clone of a fresh bare remote,
``main`` checked out as in a user's clone, and (PostgreSQL) a fresh database:

- **file**: ``state: {backend: file}``; merges land on the clone's own ``main``.
- **pg-store**: ``state: {backend: postgresql}`` with team mode switched off in this process
  (``team_for`` answers None, so nothing goes through the remote): the same run as **file**
  with only the store changed. This isolates the store; it is not a configuration a user
  can choose.
- **team**: ``state: {backend: postgresql}`` as a user runs it, i.e. team mode with a team of
  one: the store, plus what landing through the shared remote adds per task (each new
  worktree forks from the remote's base, fetched at most once a second; the branch is
  published at each phase end; each landing fetches the remote's base and pushes with a
  lease). This is what a team member pays.

Rounds interleave the variants (their order rotates each round) so a ratio never mixes time
windows; ratios are taken from medians. Goal (issue 13): PostgreSQL <= 1.2x file per task.
CPU per task is printed too: this process (the orchestrator), the processes it started (git,
the CLI), and the PostgreSQL server (read from /proc; it is not this process's child).

    .venv/bin/python bench/team_overhead.py [--tasks 32] [--sessions 4] [--rounds 3] [--json]

Needs the PostgreSQL server binaries (``initdb``, ``pg_ctl``; Debian: ``postgresql``): the
benchmark starts a throwaway cluster of its own in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

import orchestrator.council as council_module
from orchestrator.config.run import RunConfig
from orchestrator.council import Council
from orchestrator.plugins.host import DISABLE_ENV

sys.path.insert(0, str(Path(__file__).parent))
from overhead_counts import counting, install
from team_common import Cluster, check_landed, clone, local_cluster, make_remote, run_config, task

GOAL = 1.2  # issue 13: PostgreSQL at most 1.2x file per task
VARIANTS = ("file", "pg-store", "team")


@dataclass(frozen=True)
class Sample:
    wall: float
    own_cpu: float  # this process: the orchestrator, all its threads
    child_cpu: float  # git and the CLIs
    server_cpu: float  # PostgreSQL
    git: dict[str, int]  # git processes the run started, by subcommand (load-independent)


def cpu_times() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


async def _no_team(config: RunConfig) -> None:
    return None


@contextmanager
def team_mode(enabled: bool) -> Iterator[None]:
    """Team mode as configured, or off (``pg-store``): the Council asks ``team_for``."""
    real = council_module.team_for
    if not enabled:
        council_module.team_for = _no_team  # type: ignore[assignment]
    try:
        yield
    finally:
        council_module.team_for = real


async def one_run(
    cluster: Cluster, root: Path, variant: str, tasks: int, sessions: int, label: str
) -> Sample:
    directory = Path(tempfile.mkdtemp(prefix=f"{variant}-", dir=root))
    repo = clone(make_remote(directory), directory / "clone")
    queue = [task(n) for n in range(1, tasks + 1)]
    database = f"overhead_{label}".replace("-", "_")
    state: dict[str, Any] = {"backend": "file"}
    if variant != "file":
        state = {"backend": "postgresql", "dsn": cluster.fresh_database(database)}
    config = RunConfig.model_validate(run_config(repo, queue, sessions, state))
    own, children = cpu_times()
    server = cluster.server_cpu()
    started = time.perf_counter()
    with team_mode(variant == "team"), counting() as counts:
        async with Council(config) as council:
            report = await council.run()
    wall = time.perf_counter() - started
    own_after, children_after = cpu_times()
    server = cluster.server_cpu() - server
    if report.totals.done != tasks:
        raise RuntimeError(f"{variant}: {report.totals.done} of {tasks} tasks done: {report}")
    check_landed(directory / "remote.git" if variant == "team" else repo, [t["id"] for t in queue])
    if variant != "file":
        cluster.drop(database)
    shutil.rmtree(directory)
    git: dict[str, int] = {}
    for (_, subcommand), number in counts.git.items():
        git[subcommand] = git.get(subcommand, 0) + number
    return Sample(wall, own_after - own, children_after - children, server, git)


async def measure(
    cluster: Cluster, root: Path, tasks: int, sessions: int, rounds: int
) -> dict[str, list[Sample]]:
    results: dict[str, list[Sample]] = {name: [] for name in VARIANTS}
    for round_number in range(rounds):
        shift = round_number % len(VARIANTS)
        for name in VARIANTS[shift:] + VARIANTS[:shift]:
            sample = await one_run(
                cluster, root, name, tasks, sessions, f"{name}_{tasks}_{round_number}"
            )
            results[name].append(sample)
    return results


def by_count(item: tuple[str, int]) -> tuple[int, str]:
    return -item[1], item[0]


def per_task_ms(samples: list[Sample], tasks: int, field: str) -> float:
    return statistics.median(float(getattr(sample, field)) for sample in samples) / tasks * 1000


async def main(cluster: Cluster, tasks: int, sessions: int, rounds: int, as_json: bool) -> None:
    os.environ[DISABLE_ENV] = "1"  # built-in adapters only: the run must not depend on plugins
    install()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if not as_json:
        print(
            f"team overhead: {tasks} tasks, {sessions} sessions, {rounds} round(s) per variant, "
            f"interleaved; one scripted-cli process per task writes one file; "
            f"{os.cpu_count()} CPUs, load average before the run {os.getloadavg()[0]:.1f}"
        )
    with tempfile.TemporaryDirectory(prefix="council-team-overhead-") as tmp:
        root = Path(tmp)
        await measure(cluster, root, 4, sessions, 1)  # warm imports, page cache, the server
        results = await measure(cluster, root, tasks, sessions, rounds)
    fields = ("wall", "own_cpu", "child_cpu", "server_cpu")
    table = {
        name: {field: per_task_ms(results[name], tasks, field) for field in fields}
        for name in VARIANTS
    }
    floor = table["file"]["wall"]
    if as_json:
        summary = {
            "tasks": tasks,
            "sessions": sessions,
            "rounds": {name: [asdict(s) for s in results[name]] for name in VARIANTS},
            "per_task_ms": table,
            "ratio_to_file": {name: table[name]["wall"] / floor for name in VARIANTS},
            "goal": GOAL,
        }
        print(json.dumps(summary, indent=1))
        return
    print(f"\n== per task (median of {rounds} runs / {tasks})")
    print(
        f"  {'variant':9} {'wall':>9} {'ratio':>6}  {'CPU: council':>12} {'git+CLI':>8} {'pg':>7}"
    )
    for name in VARIANTS:
        row = table[name]
        print(
            f"  {name:9} {row['wall']:6.1f} ms {row['wall'] / floor:5.2f}x  "
            f"{row['own_cpu']:9.1f} ms {row['child_cpu']:5.1f} ms {row['server_cpu']:4.1f} ms"
        )
    for name in VARIANTS:
        walls = "/".join(f"{sample.wall:.2f}" for sample in results[name])
        print(f"  {name:9} rounds {walls} s")
    print("  git processes per task (the first round's; they barely vary):")
    for name in VARIANTS:
        git = results[name][0].git
        top = ", ".join(f"{cmd} {n / tasks:.1f}" for cmd, n in sorted(git.items(), key=by_count))
        print(f"    {name:9} {sum(git.values()) / tasks:5.1f}: {top}")
    print(
        f"  goal PostgreSQL/file <= {GOAL:.1f}x: store alone (pg-store) "
        f"{table['pg-store']['wall'] / floor:4.2f}x, team mode (team) "
        f"{table['team']['wall'] / floor:4.2f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=32, help="tasks in each run")
    parser.add_argument("--sessions", type=int, default=4, help="tasks running at once")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    with local_cluster() as pg:
        anyio.run(main, pg, args.tasks, args.sessions, args.rounds, args.json)
