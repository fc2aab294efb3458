"""Team mode's speed-up: one queue of tasks run by 1, then 2, then 3 workstations.

Each round makes a fresh bare remote, one clone of it per workstation, and a fresh PostgreSQL
database; every workstation runs ``council run`` (a real process, ``state: {backend:
postgresql}``, the database in ``COUNCIL_DATABASE_URL``) on the same config of ``--tasks``
tasks with ``--sessions`` sessions, and they share the queue. Task ``tNN`` runs the offline
``scripted`` CLI, whose build sleeps ``--sleep`` seconds and then writes ``tasks/tNN.txt`` (a
file of its own: no conflicts). The CLIs sleep, so the figure measures coordination (claims,
the shared merge queue, fetches and pushes to the remote), not CPU: on two cores, nine sessions
that each burnt a core could not go faster than two.

Wall time runs from the first ``council run`` started to the last one's exit. Each round is
checked: every task landed on the remote's ``main`` exactly once (its ``Council-Task``
trailers on the first-parent history). Printed: the wall times, the speed-ups 1->2 and 1->3,
the ideal ones for this many tasks and slots (whole waves of ``--sleep``), and the goal
(3 workstations >= 2.6x one). Also per round: CPU per task of the council processes (with
their git and CLI processes) and of the server, and how long the team's merge lock was held
in all (landings are serial: fetch, merge, push with a lease; their sum bounds the wall time
whatever the number of workstations).

    .venv/bin/python bench/team_speedup.py [--tasks 60] [--sessions 3] [--sleep 2]
        [--workstations 1 2 3] [--json]

Needs the PostgreSQL server binaries (``initdb``, ``pg_ctl``; Debian: ``postgresql``): the
benchmark starts a throwaway cluster of its own in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
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

GOAL = 2.6  # issue 13: three workstations at least 2.6x one


@dataclass(frozen=True)
class Round:
    workstations: int
    wall: float
    ideal: float  # whole waves of sleeping sessions: the floor no coordination can beat
    client_cpu: float  # the council processes with their git and CLI processes
    server_cpu: float
    landing: float  # seconds the team's merge lock was held, all landings together


def one_round(
    cluster: Cluster,
    root: Path,
    workstations: int,
    tasks: int,
    sessions: int,
    sleep: float,
    timeout: float,
) -> Round:
    directory = Path(tempfile.mkdtemp(prefix=f"team-{workstations}-", dir=root))
    remote = make_remote(directory)
    queue = [task(n, sleep=sleep) for n in range(1, tasks + 1)]
    database = f"speedup_{workstations}"
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
        cluster.dump(database, directory)  # the round's directory stays, for the report
        raise
    landing = sum(cluster.landing_seconds(database))
    cluster.drop(database)
    shutil.rmtree(directory)
    ideal = math.ceil(tasks / (sessions * workstations)) * sleep
    return Round(workstations, wall, ideal, client, server, landing)


def main(
    tasks: int, sessions: int, sleep: float, counts: list[int], timeout: float, as_json: bool
) -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if not as_json:
        print(
            f"team speed-up: {tasks} tasks, {sessions} sessions per workstation, each CLI "
            f"sleeps {sleep:g} s then writes one file; {os.cpu_count()} CPUs, load average "
            f"before the run {os.getloadavg()[0]:.1f}"
        )
    rounds: list[Round] = []
    root = Path(tempfile.mkdtemp(prefix="council-team-speedup-"))
    with local_cluster() as cluster:
        for workstations in counts:
            done = one_round(cluster, root, workstations, tasks, sessions, sleep, timeout)
            rounds.append(done)
            if not as_json:
                print(
                    f"  {workstations} workstation(s): {done.wall:6.2f} s  (ideal "
                    f"{done.ideal:5.1f} s); CPU per task: council, git and CLIs "
                    f"{done.client_cpu / tasks * 1000:5.0f} ms, PostgreSQL "
                    f"{done.server_cpu / tasks * 1000:4.0f} ms; {tasks} tasks landed once each; "
                    f"merge lock held {done.landing:5.1f} s ({done.landing / done.wall:.0%} of "
                    "the wall: landings are serial)"
                )
    shutil.rmtree(root)  # a failed round's stays (see failure_report)
    one = rounds[0]
    speedups = {f"1->{r.workstations}": one.wall / r.wall for r in rounds[1:]}
    ideals = {f"1->{r.workstations}": one.ideal / r.ideal for r in rounds[1:]}
    three = next((r for r in rounds if r.workstations == 3), None)
    if as_json:
        summary = {
            "tasks": tasks,
            "sessions": sessions,
            "sleep": sleep,
            "rounds": [asdict(r) for r in rounds],
            "speedup": speedups,
            "ideal_speedup": ideals,
            "goal_3": GOAL,
        }
        print(json.dumps(summary, indent=1))
        return
    print("\n== speed-up (wall time of 1 workstation / wall time of n)")
    for key, value in speedups.items():
        print(f"  {key}  {value:4.2f}x  (ideal {ideals[key]:4.2f}x)")
    if three is not None and one.workstations == 1:
        verdict = "met" if one.wall / three.wall >= GOAL else "NOT met"
        print(f"  goal: 1->3 >= {GOAL:.1f}x: {verdict}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=60, help="tasks in the shared queue")
    parser.add_argument("--sessions", type=int, default=3, help="sessions per workstation")
    parser.add_argument("--sleep", type=float, default=2.0, help="seconds each CLI sleeps")
    parser.add_argument(
        "--workstations",
        type=int,
        nargs="+",
        default=[1, 2, 3],
        help="workstation counts, one round each; the first is the baseline",
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds a round may take before it fails"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    main(args.tasks, args.sessions, args.sleep, args.workstations, args.timeout, args.json)
