"""The orchestrator's cost: ``council run`` as a process against a bare script as a process.

Both sides land the same ``--tasks`` tasks on fresh copies of the same small repository
(``--files`` files, ``main`` checked out in the main worktree, as in a user's clone), at most
``--capacity`` at once. Task ``n`` runs the offline scripted CLI (``adapters/scripted_cli.py``,
started as the ``scripted`` adapter starts it: ``python -I -S``, no delay) with the prompt
``WRITE f<n>.txt ...``: one process that writes one file.

- **bare**: ``python -I -S bench/overhead_floor.py REPO --tasks N --capacity C``, a standalone
  script (standard library only) doing the least work that gives the same result, per task:
  ``git worktree add -b`` (no lock of its own around it), the CLI with a private HOME,
  ``git add -A`` + ``git commit``, the landing under an in-process lock (``merge-tree
  --write-tree`` + ``commit-tree`` + ``merge --ff-only`` in the base's checkout, which follows
  the tip as Council's does), ``git worktree remove`` + ``git branch -D``: 8 git processes.
  It keeps no state and writes no log, so it fsyncs nothing git does not.
- **council**: ``.venv/bin/council run CONFIG --json`` (``python -m orchestrator`` where the
  script is missing), start-up included, with one ``build`` phase, no verify commands and
  every other setting at its default, as a user runs it: the file state store, claims and
  heartbeats, the workflow, the process runner (private HOME, logs, output parsing, the
  sandbox where bubblewrap works: ``sandbox: auto``), the merge queue and the report.

Rounds alternate the two sides (bare first in even rounds, council first in odd ones), each on
a fresh copy; one untimed run of each with 2 tasks first warms the page cache and writes the
bytecode caches, as any installed command has them. For each side: wall seconds (start to
exit) and CPU seconds of all its processes (the process and every process it waited for:
git, the CLIs, the sandbox), read from the kernel at its exit (``proc_measure``); for council
also its own CPU (the orchestrator, all its threads, start-up included). Medians with their
range, and the round-by-round ratios' median and range. After the rounds, one more council
run, untimed, counts (``counted_council.py``, ``overhead_counts``) the git processes, worker
thread hops, state writes, fsyncs and state records loaded per task by step of the run; the
bare script counts its own git processes.

Targets (printed beside each figure): the orchestrator's own CPU per one-file task <= 45 ms;
all-process CPU <= 1.3x bare; git processes per task <= 12; worker-thread hops per task <= 15
(each hand-over to anyio's worker threads costs the event loop about what a small state read
does). State writes (atomic renames) and fsyncs per task are printed beside their floor
(``overhead_counts.FLOORS``: what a task cannot do without, for a kill at any write to resume
with no work lost), not judged. Wall is printed but not judged: on a loaded machine a side with
more threads gets more of the CPU (wall can favour the side that does more work).

    .venv/bin/python bench/overhead_bench.py [--tasks 64] [--capacity 8] [--rounds 5]
    .venv/bin/python bench/overhead_bench.py --quick          # 8 tasks, 2 rounds: the CI's check
    .venv/bin/python bench/overhead_bench.py --json           # the figures as JSON
    .venv/bin/python bench/overhead_bench.py --profile out.prof   # one council run, cProfile
    .venv/bin/python bench/overhead_bench.py --radar-interval 2   # the radar's timer look
                                                    # every 2 s: the time-driven work counted
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from counted_council import load
from overhead_counts import FLOORS, per_task, table
from proc_measure import Measured, machine, measure, ratios, spread, summary, verdict

BENCH = Path(__file__).resolve().parent
FLOOR = BENCH / "overhead_floor.py"
BASE = "main"
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "COUNCIL_DISABLE_PLUGINS": "1",  # built-in adapters only: the run must not depend on plugins
    # This checkout's code, whichever install the interpreter has (a worktree's bench
    # measured the installed checkout's code before).
    "PYTHONPATH": os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")])
    ),
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}
OWN_CPU_TARGET = 0.045  # seconds of the orchestrator's own CPU per one-file task
CPU_RATIO_TARGET = 1.3  # all-process CPU, council / bare
GIT_TARGET = 12  # git processes per task
HOPS_TARGET = 15  # worker-thread hops per task


def council_argv() -> list[str]:
    """The installed ``council`` script beside this interpreter, as a user starts it."""
    script = Path(sys.executable).parent / "council"
    return [str(script)] if script.exists() else [sys.executable, "-m", "orchestrator"]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=ENV, check=True
    )
    return done.stdout


def prompt_for(n: int) -> str:
    return f"WRITE f{n}.txt written by task {n}"


def make_template(path: Path, files: int) -> Path:
    """A small repository with ``files`` files on ``main``, checked out."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", BASE)
    for n in range(files):
        target = path / f"d{n % 10}" / f"src{n}.txt"
        target.parent.mkdir(exist_ok=True)
        target.write_text(f"file {n}\n" * 20)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    git(path, "config", "user.name", "bench")
    git(path, "config", "user.email", "bench@localhost")
    return path


def fresh_copy(template: Path, root: Path, label: str) -> Path:
    repo = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=root)) / "repo"
    shutil.copytree(template, repo, symlinks=True)
    return repo


TIMED = ("tick", "radar.timer", "heartbeat", "claim.sweep", "monitor")  # time-driven steps
RADAR_INTERVAL: float | None = None  # ``--radar-interval``: None keeps the run config's default


def write_config(repo: Path, tasks: int, capacity: int) -> Path:
    config: dict[str, Any] = {
        "repo": str(repo),
        "base_branch": BASE,
        "adapters": {"cli": {"type": "scripted", "options": {"delay": 0}}},
        "default_adapter": "cli",
        "capacity": {"sessions": capacity},
        "workflow": {"phases": [{"name": "build"}]},
        "verify": [],
        "tasks": [{"id": f"t{n}", "prompt": prompt_for(n)} for n in range(tasks)],
    }
    if RADAR_INTERVAL is not None:
        config["radar"] = {"interval": RADAR_INTERVAL}
    path = repo.parent / "council.yaml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    return path


def check_landed(repo: Path, tasks: int) -> None:
    """Every task's file is on the base, each task merged once, and the base's checkout
    follows it: both sides did the work."""
    names = set(git(repo, "ls-tree", "--name-only", BASE).split())
    missing = [n for n in range(tasks) if f"f{n}.txt" not in names]
    trailers = git(
        repo, "log", "--first-parent", "--format=%(trailers:key=Council-Task,valueonly)", BASE
    ).split()
    if missing or len(trailers) != tasks or len(set(trailers)) != tasks:
        raise RuntimeError(f"{repo}: missing {missing[:5]}, {len(trailers)} merges for {tasks}")
    dirty = git(repo, "status", "--porcelain", "--untracked-files=no")
    if dirty:
        raise RuntimeError(f"{repo}: the base's checkout does not follow its tip:\n{dirty}")


def run_side(side: str, template: Path, root: Path, tasks: int, capacity: int) -> Measured:
    repo = fresh_copy(template, root, side)
    if side == "bare":
        argv = [sys.executable, "-I", "-S", str(FLOOR), str(repo)]
        argv += ["--tasks", str(tasks), "--capacity", str(capacity)]
    else:
        argv = [*council_argv(), "run", str(write_config(repo, tasks, capacity)), "--json"]
    done = measure(argv, repo.parent, ENV)
    check_landed(repo, tasks)
    shutil.rmtree(repo.parent)
    return done


def counted_run(template: Path, root: Path, tasks: int, capacity: int) -> dict[str, Any]:
    """One untimed council run with the counting wrappers; its counts, as JSON."""
    repo = fresh_copy(template, root, "counted")
    out = repo.parent / "counts.json"
    argv = [sys.executable, str(BENCH / "counted_council.py"), str(out)]
    argv += ["run", str(write_config(repo, tasks, capacity)), "--json"]
    done = measure(argv, repo.parent, ENV)
    check_landed(repo, tasks)
    data: dict[str, Any] = json.loads(out.read_text())
    data["wall"] = done.wall  # (not a count: what the time-driven steps are paid over)
    shutil.rmtree(repo.parent)
    return data


def profile_run(tasks: int, capacity: int, files: int, out: Path) -> None:
    """One untimed council run as a process under the standard library's profiler (the event
    loop's thread); its statistics saved in ``out``, the top 30 by cumulative time printed."""
    import pstats

    with tempfile.TemporaryDirectory(prefix="council-overhead-") as tmp:
        root = Path(tmp)
        repo = fresh_copy(make_template(root / "template", files), root, "profile")
        argv = [sys.executable, "-m", "cProfile", "-o", str(out.resolve()), "-m", "orchestrator"]
        measure([*argv, "run", str(write_config(repo, tasks, capacity)), "--json"], root, ENV)
        check_landed(repo, tasks)
    pstats.Stats(str(out)).sort_stats("cumulative").print_stats(30)


def main(tasks: int, capacity: int, rounds: int, files: int, as_json: bool, counts: bool) -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    header = machine()
    if not as_json:
        print(
            f"overhead: {tasks} tasks, capacity {capacity}, {files}-file repository, {rounds} "
            f"rounds alternating; one scripted-cli process per task writes one file; {header}"
        )
    samples: dict[str, list[Measured]] = {"bare": [], "council": []}
    with tempfile.TemporaryDirectory(prefix="council-overhead-") as tmp:
        root = Path(tmp)
        template = make_template(root / "template", files)
        for side in samples:  # warm the page cache, write the bytecode caches
            run_side(side, template, root, 2, capacity)
        for number in range(rounds):
            order = ["bare", "council"] if number % 2 == 0 else ["council", "bare"]
            for side in order:
                done = run_side(side, template, root, tasks, capacity)
                samples[side].append(done)
                if not as_json:
                    print(
                        f"  round {number + 1} {side:7}: wall {done.wall:6.2f} s, CPU of all "
                        f"processes {done.cpu:6.2f} s (the process itself {done.own_cpu:5.2f} s)"
                    )
        counted = counted_run(template, root, tasks, capacity) if counts else None

    bare, council = samples["bare"], samples["council"]
    wall_ratio = ratios([s.wall for s in council], [s.wall for s in bare])
    cpu_ratio = ratios([s.cpu for s in council], [s.cpu for s in bare])
    own = [s.own_cpu / tasks for s in council]
    bare_git = [json.loads(s.stdout)["git_processes"] / tasks for s in bare]
    retries = sum(json.loads(s.stdout)["retries"] for s in bare)
    retried = sorted({line for s in bare for line in s.stderr.splitlines() if "tried" in line})
    council_git = None
    totals: dict[str, float] = {}
    if counted is not None:
        totals = per_task(load(counted), tasks)
        council_git = totals["git"]
    if as_json:
        result = {
            "bench": "overhead",
            "machine": header,
            "tasks": tasks,
            "capacity": capacity,
            "rounds": rounds,
            "wall": {side: summary([s.wall for s in samples[side]]) for side in samples},
            "cpu_all": {side: summary([s.cpu for s in samples[side]]) for side in samples},
            "cpu_own": {side: summary([s.own_cpu for s in samples[side]]) for side in samples},
            "ratio_wall": summary(wall_ratio),
            "ratio_cpu_all": summary(cpu_ratio),
            "council_own_cpu_per_task": summary(own),
            "git_per_task": {"bare": bare_git[0], "council": council_git},
            "per_task": totals,
            "floors": FLOORS,
            "bare_retries": retries,
            "targets": {
                "own_cpu_per_task": OWN_CPU_TARGET,
                "ratio_cpu_all": CPU_RATIO_TARGET,
                "git_per_task": GIT_TARGET,
                "hops_per_task": HOPS_TARGET,
            },
            "counts": counted,
        }
        print(json.dumps(result, indent=1))
        return
    print(f"\n== {tasks} tasks: median [range] of {rounds} rounds")
    print(f"  {'':28} {'bare script':>22} {'council run':>22}")
    for label, field in (("wall (s)", "wall"), ("CPU, all processes (s)", "cpu")):
        cells = [spread([getattr(s, field) for s in samples[side]]) for side in samples]
        print(f"  {label:28} {cells[0]:>22} {cells[1]:>22}")
    cells = [spread([s.own_cpu for s in samples[side]]) for side in samples]
    print(f"  {'CPU, the process itself (s)':28} {cells[0]:>22} {cells[1]:>22}")
    print("\n== judged")
    print(
        f"  council / bare, CPU of all processes: {spread(cpu_ratio)}x  "
        f"({verdict(median(cpu_ratio), CPU_RATIO_TARGET)})"
    )
    print(
        f"  orchestrator's own CPU per task (start-up included): {spread(own, 1000, '{:.1f}')} "
        f"ms  ({verdict(median(own) * 1000, OWN_CPU_TARGET * 1000)})"
    )
    if council_git is not None:
        print(
            f"  git processes per task: council {council_git:.1f} "
            f"({verdict(council_git, GIT_TARGET)}), bare {bare_git[0]:.1f}"
        )
        print(
            f"  worker-thread hops per task: {totals['hops']:.1f} "
            f"({verdict(totals['hops'], HOPS_TARGET)})"
        )
        print(
            f"  (floor, not judged) state writes per task: {totals['writes']:.1f} "
            f"(floor {FLOORS['writes']}); fsyncs per task: {totals['fsyncs']:.1f} "
            f"(floor {FLOORS['fsyncs']})"
        )
        print(f"  (not judged) state records loaded (parsed) per task: {totals['loads']:.1f}")
        print(
            f"  (not judged, the counted run) CPU of the worker threads' hops per task: "
            f"{totals['worker_cpu_ms']:.1f} ms, by step in the table below"
        )
    print(f"  (not judged) council / bare, wall: {spread(wall_ratio)}x")
    if retries:
        print(f"  the bare script tried git again {retries} time(s) in all rounds, e.g.:")
        for line in retried[:3]:
            print(f"    {line[:160]}")
    if counted is not None:
        print(f"\n== council per task, by step (one counted run of {tasks} tasks)")
        for line in table(load(counted), tasks):
            print(line)
        wall = float(counted.get("wall", 0.0))
        hops = load(counted).hops
        timed = ", ".join(f"{step} {hops[step] / wall:.3f}" for step in TIMED if wall > 0)
        print(f"  the counted run's wall: {wall:.1f} s; hops a second of it: {timed}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=64, help="tasks in each run")
    parser.add_argument("--capacity", type=int, default=8, help="tasks running at once")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each side, alternating")
    parser.add_argument("--files", type=int, default=100, help="files in the small repository")
    parser.add_argument("--quick", action="store_true", help="8 tasks, 2 rounds (CI)")
    parser.add_argument("--no-counts", action="store_true", help="skip the counted run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--profile", type=Path, metavar="OUT", help="only profile one council run (cProfile)"
    )
    parser.add_argument(
        "--radar-interval",
        type=float,
        metavar="SECONDS",
        help="seconds between the radar's timer looks (default: the run config's, 30 s); "
        "shorter shows the run's time-driven work in its counts as a longer run would",
    )
    args = parser.parse_args()
    RADAR_INTERVAL = args.radar_interval
    tasks, rounds = (8, 2) if args.quick else (args.tasks, args.rounds)
    if args.profile is not None:
        profile_run(tasks, args.capacity, args.files, args.profile)
        raise SystemExit(0)
    main(tasks, args.capacity, rounds, args.files, args.json, not args.no_counts)
