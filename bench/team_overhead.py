"""PostgreSQL team mode per task against the file backend: ``council run`` processes, one clone.

The same run of ``--tasks`` tasks at ``--sessions`` at once, each side as ``.venv/bin/council
run CONFIG --json`` (a process, start-up included): task ``tNN`` runs the offline ``scripted``
CLI, which only writes ``tasks/tNN.txt`` (no sleep), so the run is all overhead. Each run
starts from a fresh clone of a fresh bare remote, ``main`` checked out as in a user's clone:

- **file**: ``state: {backend: file}``: the embedded store; merges land on the clone's ``main``.
- **team**: ``state: {backend: postgresql}`` with the database in ``COUNCIL_DATABASE_URL`` (a
  fresh database of a throwaway local cluster, migrated in advance): team mode as a user runs
  it, with a team of one: the shared store, presence, and landing through the shared remote
  (each new worktree forks from the remote's base, each landing fetches it and pushes with a
  lease). There is no PostgreSQL mode without team mode a user can choose, so none is measured.

Rounds alternate the sides (file first in even rounds). Per side: wall seconds, and CPU
seconds of all its processes (``council`` with its git and CLI processes, read from the kernel
at its exit, ``proc_measure``) plus, for **team**, the PostgreSQL server's CPU over the run
(read from /proc: the server is not the bench's child). Medians with their range, ratios round
by round. Target: team mode <= 1.3x the file backend per task, judged on CPU of all processes
(the server's included); wall printed beside it. After the rounds, one untimed counted run of
each side (``counted_council.py``) gives the git processes per task.

    .venv/bin/python bench/team_overhead.py [--tasks 32] [--sessions 4] [--rounds 5] [--json]
    .venv/bin/python bench/team_overhead.py --quick       # 6 tasks, 1 round: the CI's check

Needs the PostgreSQL server binaries (``initdb``, ``pg_ctl``; Debian: ``postgresql``): the
benchmark starts a throwaway cluster of its own in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from proc_measure import machine, measure, ratios, spread, summary, verdict
from team_common import (
    ENV,
    Cluster,
    check_landed,
    clone,
    local_cluster,
    make_remote,
    run_config,
    task,
    write_config,
)

BENCH = Path(__file__).resolve().parent
GOAL = 1.3  # team mode at most 1.3x the file backend per task
SIDES = ("file", "team")


@dataclass(frozen=True)
class Sample:
    wall: float
    client_cpu: float  # council and every process under it
    own_cpu: float  # council itself
    server_cpu: float  # PostgreSQL (team only)

    @property
    def cpu(self) -> float:
        return self.client_cpu + self.server_cpu


def council_argv() -> list[str]:
    script = Path(sys.executable).parent / "council"
    return [str(script)] if script.exists() else [sys.executable, "-m", "orchestrator"]


def prepare(
    cluster: Cluster, root: Path, side: str, tasks: int, sessions: int, label: str
) -> tuple[Path, Path, dict[str, str], str | None]:
    """A fresh remote, a clone and its config (and a fresh database for team)."""
    directory = Path(tempfile.mkdtemp(prefix=f"{side}-", dir=root))
    repo = clone(make_remote(directory), directory / "clone")
    queue = [task(n) for n in range(1, tasks + 1)]
    env = dict(ENV)
    database = None
    if side == "team":
        database = f"overhead_{label}"
        env["COUNCIL_DATABASE_URL"] = cluster.fresh_database(database)
        state: dict[str, Any] = {"backend": "postgresql"}
    else:
        state = {"backend": "file"}
    config = write_config(directory / "council.yaml", run_config(repo, queue, sessions, state))
    return directory, config, env, database


def finish(cluster: Cluster, directory: Path, side: str, tasks: int, database: str | None) -> None:
    ids = [task(n)["id"] for n in range(1, tasks + 1)]
    check_landed(directory / "remote.git" if side == "team" else directory / "clone", ids)
    if database is not None:
        cluster.drop(database)
    shutil.rmtree(directory)


def one_run(
    cluster: Cluster, root: Path, side: str, tasks: int, sessions: int, label: str
) -> Sample:
    directory, config, env, database = prepare(cluster, root, side, tasks, sessions, label)
    server = cluster.server_cpu()
    done = measure([*council_argv(), "run", str(config), "--json"], directory, env)
    server = cluster.server_cpu() - server if side == "team" else 0.0
    finish(cluster, directory, side, tasks, database)
    return Sample(done.wall, done.cpu, done.own_cpu, server)


def counted(cluster: Cluster, root: Path, side: str, tasks: int, sessions: int) -> float:
    """Git processes per task of one untimed counted run."""
    directory, config, env, database = prepare(cluster, root, side, tasks, sessions, "counted")
    out = directory / "counts.json"
    argv = [sys.executable, str(BENCH / "counted_council.py"), str(out)]
    measure([*argv, "run", str(config), "--json"], directory, env)
    git = sum(row[-1] for row in json.loads(out.read_text())["git"])
    finish(cluster, directory, side, tasks, database)
    return float(git) / tasks


def main(
    cluster: Cluster, tasks: int, sessions: int, rounds: int, as_json: bool, counts: bool
) -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    header = machine()
    if not as_json:
        print(
            f"team overhead: {tasks} tasks, {sessions} sessions, {rounds} rounds alternating; "
            f"one scripted-cli process per task writes one file; {header}"
        )
    samples: dict[str, list[Sample]] = {side: [] for side in SIDES}
    git: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="council-team-overhead-") as tmp:
        root = Path(tmp)
        for side in SIDES:  # warm the page cache, the bytecode caches, the server
            one_run(cluster, root, side, 2, sessions, f"warm_{side}")
        for number in range(rounds):
            order = SIDES if number % 2 == 0 else SIDES[::-1]
            for side in order:
                sample = one_run(cluster, root, side, tasks, sessions, f"{side}_{number}")
                samples[side].append(sample)
                if not as_json:
                    print(
                        f"  round {number + 1} {side:4}: wall {sample.wall:6.2f} s, CPU of all "
                        f"processes {sample.cpu:6.2f} s (council itself {sample.own_cpu:5.2f} s, "
                        f"PostgreSQL {sample.server_cpu:5.2f} s)"
                    )
        if counts:
            git = {side: counted(cluster, root, side, tasks, sessions) for side in SIDES}
    file, team = samples["file"], samples["team"]
    cpu_ratio = ratios([s.cpu for s in team], [s.cpu for s in file])
    wall_ratio = ratios([s.wall for s in team], [s.wall for s in file])
    if as_json:
        result = {
            "bench": "team_overhead",
            "machine": header,
            "tasks": tasks,
            "sessions": sessions,
            "rounds": {side: [asdict(s) for s in samples[side]] for side in SIDES},
            "cpu_per_task": {
                side: summary([s.cpu / tasks for s in samples[side]]) for side in SIDES
            },
            "wall_per_task": {
                side: summary([s.wall / tasks for s in samples[side]]) for side in SIDES
            },
            "ratio_cpu": summary(cpu_ratio),
            "ratio_wall": summary(wall_ratio),
            "git_per_task": git,
            "goal": GOAL,
        }
        print(json.dumps(result, indent=1))
        return
    print(f"\n== per task, median [range] of {rounds} rounds (ms)")
    print(f"  {'':34} {'file':>22} {'team (PostgreSQL)':>22}")
    rows: tuple[tuple[str, Callable[[Sample], float]], ...] = (
        ("wall", lambda s: s.wall),
        ("CPU, all processes", lambda s: s.cpu),
        ("  of which council itself", lambda s: s.own_cpu),
        ("  of which PostgreSQL", lambda s: s.server_cpu),
    )
    for label, field in rows:
        cells = [
            spread([field(s) / tasks for s in samples[side]], 1000, "{:.1f}") for side in SIDES
        ]
        print(f"  {label:34} {cells[0]:>22} {cells[1]:>22}")
    if git:
        print(f"  {'git processes':34} {git['file']:>22.1f} {git['team']:>22.1f}")
    print(
        f"  team / file, CPU of all processes: {spread(cpu_ratio)}x "
        f"({verdict(statistics.median(cpu_ratio), GOAL)})"
    )
    print(f"  (not judged) team / file, wall: {spread(wall_ratio)}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=32, help="tasks in each run")
    parser.add_argument("--sessions", type=int, default=4, help="tasks running at once")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each side, alternating")
    parser.add_argument("--quick", action="store_true", help="6 tasks, 1 round (CI)")
    parser.add_argument("--no-counts", action="store_true", help="skip the counted runs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    tasks, rounds = (6, 1) if args.quick else (args.tasks, args.rounds)
    with local_cluster() as pg:
        main(pg, tasks, args.sessions, rounds, args.json, not args.no_counts)
