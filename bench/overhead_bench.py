"""The orchestrator's own cost: a whole run through CLI Council against a bare script, same run.

Both sides run the same tasks on copies of the same small repository (``--files`` files, the
base branch checked out in the main worktree, as in a user's clone), at the same concurrency
(an anyio task group and a semaphore of ``--capacity``). Task ``n`` runs the offline
scripted CLI (``adapters/scripted_cli.py``, started as the ``scripted`` adapter starts it:
``python -I -S``, no delay) with the prompt ``WRITE f<n>.txt ...``: one process that writes
one file.

- **bare**: only the unavoidable work per task: ``git worktree add -b`` (under one
  repository lock, since concurrent adds and removes race in git), run the CLI with a private
  HOME, ``git add -A`` + ``git commit``, land it with ``git merge-tree --write-tree`` +
  ``git commit-tree`` + ``git merge --ff-only`` in the base's checkout (under a merge lock: the
  same checkout update Council does, the tip kept in memory), then ``git worktree remove`` +
  ``git branch -D`` (under the repository lock): 8 git processes per task.
- **council**: ``Council(config).run()`` with one ``build`` phase, no verify commands and the
  default scheduler settings: state store, claims and heartbeats, the ADW workflow (prompt,
  handoff, phase records), the process runner (private HOME, logs, output parsing), the merge
  queue (which also fast-forwards the base's clean checkout) and the report.

Rounds alternate bare and council so disk noise hits both alike, and every ratio is taken
from medians of rounds of one size, run in one time window. Targets: council <= 1.25x bare at
64 tasks (issue 5); per task (issue 16) <= 10 git processes and <= 30 ms of the orchestrator's
own CPU, and council's wall and CPU per task flat from 16 to 1,024 tasks.

    python bench/overhead_bench.py [--tasks 64] [--capacity 8] [--rounds 3] [--quick]
    python bench/overhead_bench.py --sizes 16 64 256 1024 --rounds 1  # the growth table
    python bench/overhead_bench.py --counts 16 256      # council only: counts, CPU per task
    python bench/overhead_bench.py --profile out.txt    # council only, under pyinstrument
    python bench/overhead_bench.py --postgres ...       # council on a PostgreSQL store

``--quick`` takes one round per size and stops the growth table at 64 tasks. ``--postgres``
starts a throwaway local server (``initdb``/``pg_ctl``) and gives each council run a fresh
database, with team mode off (the store's cost on one machine: ``team_overhead.py`` measures
team mode); the bare side has no store either way.

Wall times depend on what else the machine runs; the load-independent measures are printed
too (``overhead_counts``): per task and per step of the run, the git processes started, the
worker-thread hops, the durable state writes and fsyncs, and this process's own CPU time
against its children's (``getrusage``).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
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

from adapters.scripted import SCRIPT
from orchestrator.config.run import RunConfig
from orchestrator.council import Council
from orchestrator.plugins.host import DISABLE_ENV

sys.path.insert(0, str(Path(__file__).parent))
from overhead_counts import Counts, counting, install, table

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}
BASE = "main"
Runner = Callable[[Path, int, int], Awaitable[float]]


@dataclass(frozen=True)
class Sample:
    """One run: wall seconds, CPU seconds of this process (all its threads) and of the
    processes it started (git, the CLI), both over the whole run."""

    wall: float
    own_cpu: float
    child_cpu: float
    counts: Counts
    footprint: Footprint


@dataclass(frozen=True)
class Footprint:
    """What a run left in ``.council/`` (worktrees and the pool excluded: they are checkouts)."""

    files: int = 0
    bytes: int = 0
    event_bytes: int = 0  # the event log, archives included

    @staticmethod
    def of(repo: Path) -> Footprint:
        files = size = events = 0
        council = repo / ".council"
        for directory, subdirectories, names in os.walk(council):
            if Path(directory) == council:
                subdirectories[:] = [d for d in subdirectories if d not in ("worktrees", "pool")]
            for name in names:
                try:
                    length = os.lstat(os.path.join(directory, name)).st_size
                except FileNotFoundError:
                    continue
                files += 1
                size += length
                if name.startswith("events"):
                    events += length
        return Footprint(files, size, events)


def cpu_times() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def cli_argv(prompt: str) -> list[str]:
    """The scripted CLI's command line, as the ``scripted`` adapter builds it (delay 0)."""
    return [
        sys.executable,
        "-I",
        "-S",
        SCRIPT,
        "--output-format",
        "stream-json",
        "--persona",
        "default",
        "--delay",
        "0.0",
        "-p",
        prompt,
    ]


def prompt_for(n: int) -> str:
    return f"WRITE f{n}.txt written by task {n}"


def git_sync(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=ENV, check=True
    )
    return done.stdout


def make_template(path: Path, files: int) -> Path:
    """A small repository with ``files`` files on ``main``, checked out."""
    path.mkdir(parents=True)
    git_sync(path, "init", "-q", "-b", BASE)
    for n in range(files):
        target = path / f"d{n % 10}" / f"src{n}.txt"
        target.parent.mkdir(exist_ok=True)
        target.write_text(f"file {n}\n" * 20)
    git_sync(path, "add", "-A")
    git_sync(path, "commit", "-q", "-m", "initial")
    git_sync(path, "config", "user.name", "bench")
    git_sync(path, "config", "user.email", "bench@localhost")
    return path


def fresh_copy(template: Path, root: Path, label: str) -> Path:
    repo = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=root)) / "repo"
    shutil.copytree(template, repo, symlinks=True)
    return repo


async def git(repo: Path, *args: str) -> str:
    done = await anyio.run_process(["git", "-C", str(repo), *args], env=ENV, check=True)
    return done.stdout.decode()


async def bare_run(repo: Path, tasks: int, capacity: int) -> float:
    """The floor: wall seconds for ``tasks`` tasks done by hand at ``capacity`` at once."""
    slots = anyio.Semaphore(capacity)
    repo_lock = anyio.Lock()  # git worktree add/remove race when run concurrently
    merge_lock = anyio.Lock()
    worktrees = repo / ".bare" / "worktrees"
    homes = repo / ".bare" / "homes"
    worktrees.mkdir(parents=True)
    (repo / ".git" / "info" / "exclude").write_text(".bare/\n")

    tip = [git_sync(repo, "rev-parse", BASE).strip()]  # the base tip, kept as it lands

    async def one(n: int) -> None:
        async with slots:
            branch, path, home = f"bare/t{n}", worktrees / f"t{n}", homes / f"t{n}"
            async with repo_lock:
                await git(repo, "worktree", "add", "-q", "-b", branch, str(path), BASE)
            home.mkdir(parents=True)
            await anyio.run_process(
                cli_argv(prompt_for(n)), cwd=path, env={**ENV, "HOME": str(home)}, check=True
            )
            await git(path, "add", "-A")
            await git(path, "commit", "-q", "-m", f"t{n}: build")
            async with merge_lock:
                old = tip[0]
                tree = (await git(repo, "merge-tree", "--write-tree", old, branch)).split()[0]
                message = f"Merge {branch}\n\nCouncil-Task: t{n}\n"
                new = await git(repo, "commit-tree", tree, "-p", old, "-p", branch, "-m", message)
                # What Council does too: the base's clean checkout follows the new tip (a
                # fast-forward moves the branch and the files in one process).
                await git(repo, "merge", "-q", "--ff-only", new.strip())
                tip[0] = new.strip()
            async with repo_lock:
                await git(repo, "worktree", "remove", "--force", str(path))
                await git(repo, "branch", "-q", "-D", branch)

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for n in range(tasks):
            group.start_soon(one, n)
    return time.perf_counter() - started


class Stores:
    """Where council runs keep their state: the file backend in the repository, or a fresh
    database of a local PostgreSQL cluster for each run (``--postgres``)."""

    cluster: Any = None  # team_common.Cluster while --postgres is on
    _made = 0

    @classmethod
    def section(cls) -> dict[str, Any]:
        if cls.cluster is None:
            return {"backend": "file"}
        cls._made += 1
        return {"backend": "postgresql", "dsn": cls.cluster.fresh_database(f"run{cls._made}")}


def council_config(repo: Path, tasks: int, capacity: int) -> RunConfig:
    return RunConfig.model_validate(
        {
            "repo": str(repo),
            "base_branch": BASE,
            "adapters": {"cli": {"type": "scripted", "options": {"delay": 0}}},
            "default_adapter": "cli",
            "capacity": {"sessions": capacity},
            "workflow": {"phases": [{"name": "build"}]},
            "verify": [],
            "state": Stores.section(),
            "tasks": [{"id": f"t{n}", "prompt": prompt_for(n)} for n in range(tasks)],
        }
    )


async def council_run(repo: Path, tasks: int, capacity: int) -> float:
    """Wall seconds for the same tasks through ``Council.run`` (context entry included)."""
    config = council_config(repo, tasks, capacity)
    started = time.perf_counter()
    async with Council(config) as council:
        report = await council.run()
    elapsed = time.perf_counter() - started
    if report.totals.done != tasks:
        raise RuntimeError(f"council finished {report.totals.done} of {tasks} tasks: {report}")
    return elapsed


def check_landed(repo: Path, tasks: int) -> None:
    """Every task's file is on the base, each task merged once, and the base's checkout
    follows it: both sides did the work. Called outside the counting (its git is the
    bench's own)."""
    names = set(git_sync(repo, "ls-tree", "--name-only", BASE).split())
    missing = [n for n in range(tasks) if f"f{n}.txt" not in names]
    trailers = git_sync(
        repo, "log", "--first-parent", "--format=%(trailers:key=Council-Task,valueonly)", BASE
    ).split()
    if missing or len(trailers) != tasks or len(set(trailers)) != tasks:
        raise RuntimeError(f"{repo}: missing {missing[:5]}, {len(trailers)} merges for {tasks}")
    dirty = git_sync(repo, "status", "--porcelain", "--untracked-files=no")
    if dirty:
        raise RuntimeError(f"{repo}: the base's checkout does not follow its tip:\n{dirty}")


async def measure(
    template: Path, root: Path, tasks: int, capacity: int, rounds: int
) -> dict[str, list[Sample]]:
    runners: dict[str, Runner] = {"bare": bare_run, "council": council_run}
    results: dict[str, list[Sample]] = {name: [] for name in runners}
    for round_number in range(rounds):
        order = list(runners) if round_number % 2 == 0 else list(reversed(runners))
        for name in order:
            repo = fresh_copy(template, root, f"{name}-{tasks}")
            own, children = cpu_times()
            with counting() as counts:
                wall = await runners[name](repo, tasks, capacity)
            own_after, children_after = cpu_times()
            check_landed(repo, tasks)
            footprint = Footprint.of(repo) if name == "council" else Footprint()
            sample = Sample(wall, own_after - own, children_after - children, counts, footprint)
            results[name].append(sample)
            shutil.rmtree(repo.parent)
    return results


def per_task_ms(samples: list[Sample], tasks: int, field: str = "wall") -> float:
    values = [float(getattr(sample, field)) for sample in samples]
    return statistics.median(values) / tasks * 1000


def median_counts(samples: list[Sample]) -> Counts:
    """The counts of the run with the median wall time (counts barely vary between runs)."""
    ranked = sorted(samples, key=lambda sample: sample.wall)
    return ranked[len(ranked) // 2].counts


def totals_per_task(counts: Counts, tasks: int) -> str:
    git = sum(counts.git.values()) / tasks
    hops = sum(counts.hops.values()) / tasks
    writes = sum(counts.writes.values()) / tasks
    fsyncs = sum(counts.fsyncs.values()) / tasks
    return f"{git:5.1f} {hops:6.1f} {writes:6.1f} {fsyncs:6.1f}"


async def profile_council(template: Path, root: Path, tasks: int, capacity: int, out: Path) -> None:
    """One council run under pyinstrument (the event loop's thread: where its CPU goes)."""
    from pyinstrument import Profiler

    repo = fresh_copy(template, root, f"profile-{tasks}")
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    await council_run(repo, tasks, capacity)
    profiler.stop()
    out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    print(f"\n== profile of one council run of {tasks} tasks written to {out}")
    shutil.rmtree(repo.parent)


async def counts_only(template: Path, root: Path, sizes: list[int], capacity: int) -> None:
    """One council run per size: its counts and CPU per task, no bare side, no rounds."""
    for size in sizes:
        repo = fresh_copy(template, root, f"counts-{size}")
        own, children = cpu_times()
        with counting() as counts:
            wall = await council_run(repo, size, capacity)
        own_after, children_after = cpu_times()
        check_landed(repo, size)
        footprint = Footprint.of(repo)
        shutil.rmtree(repo.parent)
        print(
            f"\n== council, {size} tasks: {wall:.2f} s; CPU per task: this process "
            f"{(own_after - own) / size * 1000:.1f} ms, git and CLI processes "
            f"{(children_after - children) / size * 1000:.1f} ms"
        )
        for line in table(counts, size):
            print(line)
        print(f"  .council/ per task: {footprint_text(footprint, size)}")


def footprint_text(footprint: Footprint, tasks: int) -> str:
    return (
        f"{footprint.bytes / tasks / 1024:.1f} KiB in {footprint.files / tasks:.2f} files, "
        f"events {footprint.event_bytes / tasks / 1024:.1f} KiB"
    )


def goals(results: dict[str, list[Sample]], tasks: int) -> list[str]:
    """The issue's table for this size: council against the bare script and the goals."""
    bare, council = (median_counts(results[name]) for name in ("bare", "council"))
    git = [sum(counts.git.values()) / tasks for counts in (bare, council)]
    own = [per_task_ms(results[name], tasks, "own_cpu") for name in ("bare", "council")]
    hops = sum(council.hops.values()) / tasks
    footprint = sorted(results["council"], key=lambda sample: sample.wall)
    middle = footprint[len(footprint) // 2].footprint
    return [
        f"  {'per task':34} {'bare':>8} {'council':>8}  goal",
        f"  {'git processes':34} {git[0]:8.1f} {git[1]:8.1f}  <= 10",
        f"  {'orchestrator CPU (ms)':34} {own[0]:8.1f} {own[1]:8.1f}  <= 30",
        f"  {'worker-thread hops':34} {'':8} {hops:8.1f}",
        f"  {'.council/ (files, events)':34} {'':8} {footprint_text(middle, tasks)}",
    ]


async def main(
    tasks: int,
    capacity: int,
    rounds: int,
    files: int,
    sizes: list[int],
    profile: Path | None,
    counts_sizes: list[int] | None,
) -> None:
    os.environ[DISABLE_ENV] = "1"  # built-in adapters only: the run must not depend on plugins
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    install()
    store = "a PostgreSQL store" if Stores.cluster is not None else "the file store"
    print(
        f"overhead: {tasks} tasks, capacity {capacity}, {files}-file repository, "
        f"{rounds} round(s), council on {store}; one scripted-cli process per task writes one "
        f"file; {os.cpu_count()} CPUs, load average before the run {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(prefix="council-overhead-") as tmp:
        root = Path(tmp)
        template = make_template(root / "template", files)
        await measure(template, root, 8, capacity, 1)  # warm the page cache and imports
        if profile is not None:
            await profile_council(template, root, tasks, capacity, profile)
            return
        if counts_sizes:
            await counts_only(template, root, counts_sizes, capacity)
            return

        results = await measure(template, root, tasks, capacity, rounds)
        floor, cost = (per_task_ms(results[name], tasks) for name in ("bare", "council"))
        print(f"\n== the same run of {tasks} tasks (median wall time)")
        print(f"  bare script   {floor * tasks / 1000:6.2f} s  {floor:6.1f} ms/task  1.00x")
        print(
            f"  CLI Council   {cost * tasks / 1000:6.2f} s  {cost:6.1f} ms/task  "
            f"{cost / floor:4.2f}x  (target <= 1.25x)"
        )
        for name in ("bare", "council"):
            walls = "/".join(f"{sample.wall:.2f}" for sample in results[name])
            own = per_task_ms(results[name], tasks, "own_cpu")
            children = per_task_ms(results[name], tasks, "child_cpu")
            print(
                f"  {name:8} rounds {walls} s; CPU per task: this process {own:6.1f} ms, "
                f"git and CLI processes {children:6.1f} ms"
            )
        for name in ("bare", "council"):
            print(f"\n== {name}: per task, by step (load-independent counts)")
            for line in table(median_counts(results[name]), tasks):
                print(line)
        print(f"\n== the issue's goals at {tasks} tasks")
        for line in goals(results, tasks):
            print(line)

        print("\n== per task as the run grows (wall: median / tasks; counts: council's)")
        print(
            f"  {'tasks':>5}  {'bare':>9}  {'council':>9}  {'ratio':>5}  {'own CPU':>9}  "
            f"{'git':>5} {'hops':>6} {'writes':>6} {'fsyncs':>6}"
        )
        growth: list[float] = []
        cpu_growth: list[float] = []
        for size in sizes:
            if size == tasks:
                by_size = results
            else:
                by_size = await measure(template, root, size, capacity, rounds)
            floor, cost = (per_task_ms(by_size[name], size) for name in ("bare", "council"))
            own = per_task_ms(by_size["council"], size, "own_cpu")
            growth.append(cost)
            cpu_growth.append(own)
            counts = totals_per_task(median_counts(by_size["council"]), size)
            print(
                f"  {size:5d}  {floor:6.1f} ms  {cost:6.1f} ms  {cost / floor:4.2f}x  "
                f"{own:6.1f} ms  {counts}"
            )
        print(
            f"  council per task at {sizes[-1]} tasks / at {sizes[0]} tasks: wall "
            f"{growth[-1] / growth[0]:4.2f}x, own CPU {cpu_growth[-1] / cpu_growth[0]:4.2f}x  "
            "(target: flat, about 1.00x)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=64, help="tasks in the compared run")
    parser.add_argument("--capacity", type=int, default=8, help="tasks running at once")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side per size")
    parser.add_argument("--files", type=int, default=100, help="files in the small repository")
    parser.add_argument("--quick", action="store_true", help="one round per size, up to 64 tasks")
    parser.add_argument(
        "--sizes", type=int, nargs="+", metavar="TASKS", help="sizes of the growth table"
    )
    parser.add_argument(
        "--profile", type=Path, help="only profile one council run (pyinstrument) into this file"
    )
    parser.add_argument(
        "--counts",
        type=int,
        nargs="+",
        metavar="TASKS",
        help="only one council run per size given: counts and CPU per task (no wall ratio)",
    )
    parser.add_argument(
        "--postgres", action="store_true", help="council on a local PostgreSQL server's store"
    )
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    sizes = args.sizes or ([16, 64] if args.quick else [16, 64, 256])

    def run() -> None:
        anyio.run(
            main, args.tasks, args.capacity, rounds, args.files, sizes, args.profile, args.counts
        )

    if args.postgres:
        from team_common import local_cluster
        from team_overhead import team_mode

        # The store's cost on one machine: team mode (a shared remote, presence) stays off,
        # as team_overhead's ``pg-store`` variant has it.
        with local_cluster() as cluster, team_mode(False):
            Stores.cluster = cluster
            run()
    else:
        run()
