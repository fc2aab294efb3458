"""Team mode's speed-up: one queue of tasks run by 1, 3 and 6 workstations, rounds alternating.

A workstation is a ``council run`` process (``.venv/bin/council run CONFIG --json``, start-up
included; ``state: {backend: postgresql}``, the database in ``COUNCIL_DATABASE_URL``) in a
clone of its own of one bare remote, all on this machine. Each run makes a fresh bare remote,
one clone per workstation and a fresh database of a throwaway local PostgreSQL cluster
(migrated in advance); the workstations start together on the same config of ``--tasks``
tasks with ``--sessions`` sessions each and share the queue. Task ``tNN`` runs the offline
``scripted`` CLI, whose build sleeps ``--sleep`` seconds and then writes ``tasks/tNN.txt`` (a
file of its own: no conflicts). The CLIs sleep, so the figure measures coordination (claims,
the shared merge queue, fetches and pushes to the remote), not CPU: on two cores, 18 sessions
that each burnt a core could not go faster than two. What the workstations themselves cost in
CPU (start-up, the orchestrator) still counts, as it would on a team's one machine each only if
they had cores to spare: here all share two, which is against the team.

Each round runs every workstation count once, the order rotated from round to round (1, 3, 6;
then 3, 6, 1; then 6, 1, 3), so a slow spell of the machine does not fall on one count. Wall
time runs from the first ``council run`` started to the last one's exit. Each run is checked:
every task landed on the remote's ``main`` exactly once. Printed per count: wall time, the
speed-up against one workstation of the same round (median and range), the ideal (whole waves
of ``--sleep``), landings per second, how long the team's merge lock was held (all landings
together, per landing and the landings per train: whichever workstation holds the lock lands
every workstation's ready branches in one train, ``scheduler.team.train``; trains are serial, so
their sum bounds the wall time), and the CPU per task of the council processes (with their git
and CLI processes) and of the server.

Targets (issue 51): 3 workstations >= 2.6x one; 6 workstations >= 1.5x three. Both are judged
and printed, with the load average at the start: the machine's other work counts against the
team (every workstation here shares its cores).

    .venv/bin/python bench/team_speedup.py [--tasks 72] [--sessions 3] [--sleep 2] [--rounds 3]
        [--workstations 1 3 6] [--json]
    .venv/bin/python bench/team_speedup.py --quick    # 6 tasks of 0.5 s, 1 and 3 workstations (CI)

Needs the PostgreSQL server binaries (``initdb``, ``pg_ctl``; Debian: ``postgresql``): the
benchmark starts a throwaway cluster of its own in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from proc_measure import machine, spread, summary, verdict
from team_common import (
    ENV,
    Cluster,
    check_landed,
    clone,
    cpu_of_children,
    local_cluster,
    make_remote,
    run_config,
    run_processes,
    task,
    write_config,
)

GOAL = 2.6  # three workstations at least 2.6x one
GOAL_6 = 1.5  # six workstations at least 1.5x three


@dataclass(frozen=True)
class Run:
    round: int
    workstations: int
    wall: float
    ideal: float  # whole waves of sleeping sessions: the floor no coordination can beat
    client_cpu: float  # the council processes with their git and CLI processes
    server_cpu: float
    landing: float  # seconds the team's merge lock was held, all trains together
    landings: int
    trains: int


def one_run(
    cluster: Cluster,
    root: Path,
    number: int,
    workstations: int,
    tasks: int,
    sessions: int,
    sleep: float,
    timeout: float,
) -> Run:
    directory = Path(tempfile.mkdtemp(prefix=f"team-{workstations}-", dir=root))
    remote = make_remote(directory)
    queue = [task(n, sleep=sleep) for n in range(1, tasks + 1)]
    database = f"speedup_{number}_{workstations}"
    url = cluster.fresh_database(database)
    configs = [
        write_config(
            directory / f"w{n}.yaml",
            run_config(
                clone(remote, directory / f"w{n}"), queue, sessions, {"backend": "postgresql"}
            ),
        )
        for n in range(1, workstations + 1)
    ]
    client, server = cpu_of_children(), cluster.server_cpu()
    try:
        wall = run_processes(configs, {**ENV, "COUNCIL_DATABASE_URL": url}, timeout)
        client, server = cpu_of_children() - client, cluster.server_cpu() - server
        check_landed(remote, [entry["id"] for entry in queue])
    except RuntimeError:
        cluster.dump(database, directory)  # the run's directory stays, for the report
        raise
    held, landings = cluster.landing_seconds(database)
    cluster.drop(database)
    shutil.rmtree(directory)
    ideal = math.ceil(tasks / (sessions * workstations)) * sleep
    return Run(number, workstations, wall, ideal, client, server, sum(held), landings, len(held))


def main(
    tasks: int,
    sessions: int,
    sleep: float,
    counts: list[int],
    rounds: int,
    timeout: float,
    as_json: bool,
) -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    header = machine()
    if not as_json:
        print(
            f"team speed-up: {tasks} tasks, {sessions} sessions per workstation, each CLI "
            f"sleeps {sleep:g} s then writes one file; {rounds} round(s), order rotating; "
            f"{header}"
        )
    runs: list[Run] = []
    root = Path(tempfile.mkdtemp(prefix="council-team-speedup-"))
    with local_cluster() as cluster:
        for number in range(rounds):
            shift = number % len(counts)
            for workstations in counts[shift:] + counts[:shift]:
                done = one_run(cluster, root, number, workstations, tasks, sessions, sleep, timeout)
                runs.append(done)
                if not as_json:
                    print(
                        f"  round {number + 1}, {workstations} workstation(s): {done.wall:6.2f} s "
                        f"(ideal {done.ideal:5.1f} s); merge lock held {done.landing:5.1f} s "
                        f"for {done.landings} landings in {done.trains} trains"
                    )
    shutil.rmtree(root)  # a failed run's directory stays (see failure_report)
    base = counts[0]
    by_count = {n: [r for r in runs if r.workstations == n] for n in counts}
    walls = {n: [r.wall for r in by_count[n]] for n in counts}
    speedups = {
        n: [walls[base][i] / walls[n][i] for i in range(rounds)] for n in counts if n != base
    }
    ideals = {n: by_count[base][0].ideal / by_count[n][0].ideal for n in counts if n != base}
    rates = {n: [tasks / r.wall for r in by_count[n]] for n in counts}
    held = {n: [r.landing for r in by_count[n]] for n in counts}
    per_landing = {n: [r.landing / max(1, r.landings) for r in by_count[n]] for n in counts}
    per_train = {n: [r.landings / max(1, r.trains) for r in by_count[n]] for n in counts}
    six = [walls[3][i] / walls[6][i] for i in range(rounds)] if 3 in walls and 6 in walls else []
    client = {n: [r.client_cpu / tasks for r in by_count[n]] for n in counts}
    server = {n: [r.server_cpu / tasks for r in by_count[n]] for n in counts}
    if as_json:
        result = {
            "bench": "team_speedup",
            "machine": header,
            "tasks": tasks,
            "sessions": sessions,
            "sleep": sleep,
            "runs": [asdict(r) for r in runs],
            "wall": {n: summary(walls[n]) for n in counts},
            "speedup": {f"{base}->{n}": summary(v) for n, v in speedups.items()},
            "ideal_speedup": {f"{base}->{n}": v for n, v in ideals.items()},
            "landings_per_second": {n: summary(rates[n]) for n in counts},
            "merge_lock_held": {n: summary(held[n]) for n in counts},
            "merge_lock_per_landing": {n: summary(per_landing[n]) for n in counts},
            "landings_per_train": {n: summary(per_train[n]) for n in counts},
            "speedup_3_to_6": summary(six) if six else None,
            "goal_3_to_6": GOAL_6,
            "client_cpu_per_task": {n: summary(client[n]) for n in counts},
            "server_cpu_per_task": {n: summary(server[n]) for n in counts},
            "goal_3": GOAL,
        }
        print(json.dumps(result, indent=1))
        return
    print(f"\n== median [range] of {rounds} round(s)")
    print(
        f"  {'ws':>2} {'wall (s)':>20} {'speed-up':>18} {'ideal':>6} {'landings/s':>16} "
        f"{'lock held (s)':>18} {'per landing (ms)':>18} {'per train':>12} "
        f"{'CPU/task: council':>18} {'pg':>6}"
    )
    for n in counts:
        speed = spread(speedups[n]) + "x" if n in speedups else "1x"
        ideal = f"{ideals[n]:.2f}x" if n in ideals else ""
        print(
            f"  {n:>2} {spread(walls[n]):>20} {speed:>18} {ideal:>6} {spread(rates[n]):>16} "
            f"{spread(held[n], fmt='{:.1f}'):>18} {spread(per_landing[n], 1000, '{:.0f}'):>18} "
            f"{spread(per_train[n], fmt='{:.1f}'):>12} "
            f"{spread(client[n], 1000, '{:.0f}') + ' ms':>18} "
            f"{statistics.median(server[n]) * 1000:4.0f} ms"
        )
    if base == 1 and 3 in speedups:
        judged = verdict(statistics.median(speedups[3]), GOAL, at_most=False)
        print(f"  3 workstations: {spread(speedups[3])}x one ({judged})")
    if six:
        judged = verdict(statistics.median(six), GOAL_6, at_most=False)
        print(f"  6 workstations: {spread(six)}x three ({judged})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=72, help="tasks in the shared queue")
    parser.add_argument("--sessions", type=int, default=3, help="sessions per workstation")
    parser.add_argument("--sleep", type=float, default=2.0, help="seconds each CLI sleeps")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (every count once each)")
    parser.add_argument(
        "--workstations",
        type=int,
        nargs="+",
        default=[1, 3, 6],
        help="workstation counts; the first is the baseline",
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds a run may take before it fails"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="6 tasks sleeping 0.5 s, 1 round, 1 and 3 workstations (CI)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    tasks, sleep, rounds = (6, 0.5, 1) if args.quick else (args.tasks, args.sleep, args.rounds)
    workstations = [1, 3] if args.quick else args.workstations
    main(tasks, args.sessions, sleep, workstations, rounds, args.timeout, args.json)
