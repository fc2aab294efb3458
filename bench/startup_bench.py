"""Start-up cost of the ``council`` command as a ratio to a bare ``python -c pass``, same run.

Each command runs ``--runs`` times, each time in a fresh process, in a temporary copy of the
offline demo on which ``council run configs/demo.yaml`` has finished (so ``status`` reads a
real report: seven tasks, their sessions and events), and beside it a finished run of
``--tasks`` tasks (1,024 by default: one build phase each on the offline scripted CLI, each
writing its own file; the run itself takes a few minutes, said as it goes):

- floor ``python -c pass``: the interpreter alone (its start-up, ``site``, the venv).
- floor ``python -c "import typer, rich"``: the two libraries every ``council`` command's
  output is drawn with, imported and nothing done.
- ``council --help``: the root help, which lists every command from the table in
  ``orchestrator/cli/app.py`` without importing one.
- ``council --version``.
- ``council status``: in the demo's repository, the newest run's table read from its store.
- ``council status (N tasks)``: the same in the big run's repository: the summary kept beside
  its store with the report (``run.reports.report_cache``, ``cli.status.kept_view``) is drawn
  again, without reading the report back, as on every look while no record changes, the first
  look after the run included (the run kept it: ``cli.status.kept_after_run``).
- ``council status (N tasks, built)``: the same with the kept report deleted before each run:
  the first look after a write, built from every record (and kept again).

Rounds alternate the commands so machine noise hits each alike; medians are printed with
their range. Wall time depends on what else the machine runs; the CPU time of the process and
its children (user + system, read from the kernel at its exit: ``proc_measure``) much less so,
and CPU is what is judged. Target: ``--help`` and ``status`` in at most 0.25 s of CPU,
``status`` of the 1,024-task run included (the figure the README quotes), and ``--help`` in at
most twice the CPU of importing typer and rich.

    .venv/bin/python bench/startup_bench.py [--runs 15] [--tasks 1024] [--compare DIR] [--json]
    .venv/bin/python bench/startup_bench.py --quick   # 16 tasks, 2 runs: the CI's check

``--quick`` makes the big run 16 tasks (a run of 1,024 takes several minutes on a loaded
machine), so it does not judge the 1,024-task target; only a full run does.

``--compare DIR`` adds the same commands run from the ``orchestrator`` package in DIR (made
with ``git archive REV orchestrator adapters | tar -x -C DIR``), in the same environment and
the same rounds: two versions compared under the same load. A kept report names the code that
kept it, and a version finds another's kept report stale and builds its own: so each version's
kept look runs with that version's own kept report put in place first (and taken aside after),
or compared kept looks would be built looks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from proc_measure import machine, measure, spread, summary, verdict

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.25  # seconds, for --help and status
HELP_RATIO_TARGET = 2.0  # council --help's CPU over `import typer, rich`'s
LIBRARIES = "python -c 'import typer, rich'"
# Bytecode caches on, as after any install (pip writes them): with PYTHONDONTWRITEBYTECODE set,
# every run would compile the project's modules from source again.
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "COUNCIL_DISABLE_PLUGINS": "1",
    # This checkout's code, whichever install the interpreter has (a worktree's bench
    # measured the installed checkout's code before).
    "PYTHONPATH": os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")])
    ),
}


@dataclass(frozen=True)
class Command:
    name: str
    argv: list[str]
    cwd: Path
    forget: Path | None = None  # a file deleted before each run (the kept report)
    # (the kept report, this version's copy of it): put in place before each run, taken
    # aside after it (``--compare``: each version looks at its own kept report)
    own: tuple[Path, Path] | None = None


# `council` from the code in argv[1]: an editable install's import hook would find the installed
# package first, so it is taken out.
FROM_SOURCE = """\
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path.insert(0, sys.argv.pop(1))
sys.argv[0] = "council"
from orchestrator.cli.app import main
main()
"""


def council_argv(source: Path | None = None) -> list[str]:
    """The installed ``council`` script beside this interpreter, as a user starts it; or the
    command from the code in ``source``."""
    if source is not None:
        return [sys.executable, "-c", FROM_SOURCE, str(source)]
    script = Path(sys.executable).parent / "council"
    return [str(script)] if script.exists() else [sys.executable, "-m", "orchestrator"]


def run_to_the_end(where: Path, config: str, what: str) -> None:
    """``council run config`` in ``where``, to its end; stops the bench if it failed."""
    done = subprocess.run(
        [*council_argv(), "run", config, "--json"],
        cwd=where,
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} failed ({done.returncode}): {done.stderr[-2000:]}")


def finished_demo(tmp: Path) -> Path:
    """``tmp`` with the demo config, after a whole demo run; returns the demo's repository."""
    (tmp / "configs").mkdir()
    shutil.copy(ROOT / "configs" / "demo.yaml", tmp / "configs" / "demo.yaml")
    run_to_the_end(tmp, "configs/demo.yaml", "the demo run")
    return tmp / ".council-demo" / "repo"


def finished_big_run(tmp: Path, tasks: int) -> Path:
    """``tmp`` after a whole run of ``tasks`` one-phase tasks; returns its repository."""
    lines = [
        "repo: ./repo",
        "sample_repo: true",
        "base_branch: main",
        "capacity: {sessions: 4}",
        "adapters: {a: {type: scripted, options: {persona: quick}}}",
        "default_adapter: a",
        "workflow: {phases: [{name: build}]}",
        "tasks:",
    ]
    for n in range(tasks):
        lines += [
            f"  - id: t{n:04d}",
            f'    prompt: "WRITE notes/n{n:04d}.txt note {n}"',
            f"    files: [notes/n{n:04d}.txt]",
        ]
    (tmp / "big.yaml").write_text("\n".join(lines) + "\n")
    print(f"running {tasks} tasks for the big run's state (a few minutes)...", file=sys.stderr)
    started = time.perf_counter()
    run_to_the_end(tmp, "big.yaml", "the big run")
    print(f"  done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return tmp / "repo"


def once(command: Command) -> tuple[float, float]:
    """Wall and CPU seconds (the process and its children) of one run of ``command`` in a
    fresh process."""
    if command.forget is not None:
        command.forget.unlink(missing_ok=True)
    if command.own is not None:
        kept, aside = command.own
        if aside.exists():
            shutil.copy2(aside, kept)
    done = measure(command.argv, command.cwd, ENV)
    if command.own is not None and kept.exists():
        shutil.copy2(kept, aside)
    return done.wall, done.cpu


def main(runs: int, tasks: int, compare: Path | None, as_json: bool) -> None:
    header = machine()
    if not as_json:
        print(f"start-up: {runs} runs of each command, alternating; {header}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="council-bench-") as tmp:
        (Path(tmp) / "demo").mkdir()
        (Path(tmp) / "big").mkdir()
        repo = finished_demo(Path(tmp) / "demo")
        big = finished_big_run(Path(tmp) / "big", tasks)
        commands = [
            Command("python -c pass", [sys.executable, "-c", "pass"], repo),
            Command(LIBRARIES, [sys.executable, "-c", "import typer, rich"], repo),
        ]
        versions = [("", council_argv())]
        if compare is not None:
            versions.append((f" [{compare.name}]", council_argv(compare)))
        kept_demo = repo / ".council" / "state" / "report-cache.json"
        kept_big = big / ".council" / "state" / "report-cache.json"
        for number, (suffix, council) in enumerate(versions):
            own = None
            if compare is not None:  # each version its own kept reports (module doc)
                own = {
                    kept_demo: Path(tmp) / f"kept-demo-{number}.json",
                    kept_big: Path(tmp) / f"kept-big-{number}.json",
                }
            commands += [
                Command(f"council --help{suffix}", [*council, "--help"], repo),
                Command(f"council --version{suffix}", [*council, "--version"], repo),
                Command(
                    f"council status{suffix}",
                    [*council, "status"],
                    repo,
                    own=None if own is None else (kept_demo, own[kept_demo]),
                ),
                Command(
                    f"council status ({tasks} tasks){suffix}",
                    [*council, "status"],
                    big,
                    own=None if own is None else (kept_big, own[kept_big]),
                ),
                Command(
                    f"council status ({tasks} tasks, built){suffix}",
                    [*council, "status"],
                    big,
                    forget=kept_big,
                ),
            ]
        for command in commands:
            once(command)  # warm the page cache; write the bytecode caches
        walls: dict[str, list[float]] = {c.name: [] for c in commands}
        cpus: dict[str, list[float]] = {c.name: [] for c in commands}
        for number in range(runs):
            order = commands if number % 2 == 0 else list(reversed(commands))
            for command in order:
                wall, cpu = once(command)
                walls[command.name].append(wall)
                cpus[command.name].append(cpu)
    judged = [
        "council --help",
        "council status",
        f"council status ({tasks} tasks)",
        f"council status ({tasks} tasks, built)",
    ]
    if as_json:
        result = {
            "bench": "startup",
            "machine": header,
            "runs": runs,
            "tasks": tasks,
            "wall": {name: summary(values) for name, values in walls.items()},
            "cpu": {name: summary(values) for name, values in cpus.items()},
            "target_cpu": TARGET,
            "help_over_libraries_cpu": statistics.median(cpus["council --help"])
            / statistics.median(cpus[LIBRARIES]),
            "target_help_over_libraries": HELP_RATIO_TARGET,
        }
        print(json.dumps(result, indent=1))
        return
    floor_wall = statistics.median(walls["python -c pass"])
    floor_cpu = statistics.median(cpus["python -c pass"])
    width = max(len(c.name) for c in commands)
    print(header)
    print(
        f"{f'median [range] of {runs} runs':{width}s} {'wall (s)':>21} {'CPU (s)':>21}"
        "  wall ratio  CPU ratio"
    )
    for command in commands:
        wall = statistics.median(walls[command.name])
        cpu = statistics.median(cpus[command.name])
        print(
            f"{command.name:{width}s} {spread(walls[command.name], fmt='{:.3f}'):>21} "
            f"{spread(cpus[command.name], fmt='{:.3f}'):>21} "
            f"{wall / floor_wall:9.1f}x {cpu / floor_cpu:9.1f}x"
        )
    for name in judged:
        cpu = statistics.median(cpus[name])
        print(f"{name}: {cpu:.3f} s of CPU ({verdict(cpu, TARGET, unit=' s')})")
    help_ratio = statistics.median(cpus["council --help"]) / statistics.median(cpus[LIBRARIES])
    print(
        f"council --help / {LIBRARIES}, CPU: {help_ratio:.2f}x "
        f"({verdict(help_ratio, HELP_RATIO_TARGET, unit='x')})"
    )
    if tasks != 1024:
        print(f"(the target is judged at 1,024 tasks; this run had {tasks})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--tasks", type=int, default=1024, help="tasks of the big run")
    parser.add_argument("--compare", type=Path, help="also run council from the code in DIR")
    parser.add_argument("--quick", action="store_true", help="16 tasks, 2 runs (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    runs, tasks = (2, 16) if args.quick else (args.runs, args.tasks)
    main(runs, tasks, args.compare.resolve() if args.compare else None, args.json)
