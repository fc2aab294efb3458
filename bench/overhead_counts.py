"""Load-independent counts of what the orchestrator does per task, for ``overhead_bench``.

Wall time on a shared machine is noise; these counts are not. While a ``Counting`` is active
it records, each tagged with the *step* of the run that caused it:

- every process started (``subprocess.Popen._execute_child``, which asyncio goes through,
  and ``os.posix_spawn``, which git's commands do), git ones by subcommand;
- every worker-thread hop (``anyio.to_thread.run_sync``);
- every durable state write (``FileOps.replace``, the last step of ``durable_write``) by
  record kind, and every fsync (``FileOps.fsync`` and ``fsync_dir``);
- every state record loaded (``RecordKind.parse``: its checksum checked, its JSON parsed and
  validated into its model) by record kind;
- the CPU each hop's function took in its worker thread (``time.thread_time``: user and
  system time of that thread alone, the kernel's work for its syscalls included), which is
  where most of the orchestrator's own CPU per task goes (the event loop's thread does the
  rest and is not split by step).

The step is a context variable that wrappers around a few orchestrator methods set for the
duration of the call (``STEPS``); asyncio tasks and anyio worker threads inherit it, so a git
process started from a worker thread is charged to the step that awaited it. A step nested in
another (``commit`` inside ``build.check``) is charged to the inner one. Everything the bench
itself starts runs outside a ``Counting`` and is not counted.

The wrappers are installed once and stay; they only look at the variable, which costs well
under a microsecond per call, so the bare side is not slowed measurably.
"""

from __future__ import annotations

import contextvars
import functools
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread

STEP: contextvars.ContextVar[str] = contextvars.ContextVar("council_bench_step", default="other")


@dataclass
class Counts:
    git: Counter[tuple[str, str]] = field(default_factory=Counter)  # (step, subcommand)
    processes: Counter[str] = field(default_factory=Counter)  # step -> non-git processes
    hops: Counter[str] = field(default_factory=Counter)  # step -> to_thread calls
    writes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (step, record kind)
    fsyncs: Counter[str] = field(default_factory=Counter)  # step -> fsync + directory fsync
    loads: Counter[tuple[str, str]] = field(default_factory=Counter)  # (step, record kind)
    worker_cpu: Counter[str] = field(default_factory=Counter)  # step -> seconds in workers

    def by_step(self, counter: Counter[Any]) -> Counter[str]:
        totals: Counter[str] = Counter()
        for key, value in counter.items():
            totals[key[0] if isinstance(key, tuple) else key] += value
        return totals


_active: Counts | None = None
_lock = threading.Lock()


@contextmanager
def counting() -> Iterator[Counts]:
    """Count everything started inside the block."""
    global _active
    counts = Counts()
    _active = counts
    try:
        yield counts
    finally:
        _active = None


def _record(counter_name: str, key: object) -> None:
    counts = _active
    if counts is None:
        return
    with _lock:
        getattr(counts, counter_name)[key] += 1


def _add_cpu(step: str, seconds: float) -> None:
    counts = _active
    if counts is None:
        return
    with _lock:
        counts.worker_cpu[step] += seconds


def _git_subcommand(argv: list[str]) -> str:
    index = 1
    while index < len(argv):
        arg = argv[index]
        if arg in ("-C", "-c"):
            index += 2
            continue
        if arg.startswith("-"):
            index += 1
            continue
        return arg
    return "?"


def _record_process(args: object) -> None:
    argv = [os.fsdecode(a) for a in args] if isinstance(args, (list, tuple)) else [str(args)]
    if argv and os.path.basename(argv[0]) == "git":
        _record("git", (STEP.get(), _git_subcommand(argv)))
    else:
        _record("processes", STEP.get())


def _record_write(path: Path) -> None:
    parts = Path(path).parts
    kind = "other"
    for name in ("tasks", "sessions", "counters", "records", "checkpoints", "context"):
        if name in parts:
            at = parts.index(name)
            kind = f"records/{parts[at + 1]}" if name == "records" else name
            break
    _record("writes", (STEP.get(), kind))


def _wrap_async(owner: Any, name: str, step: str) -> None:
    original = getattr(owner, name)
    if getattr(original, "_bench_step", None):
        return

    @functools.wraps(original)
    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        token = STEP.set(step)
        try:
            return await original(*args, **kwargs)
        finally:
            STEP.reset(token)

    wrapped._bench_step = step  # type: ignore[attr-defined]
    setattr(owner, name, wrapped)


# (module, attribute path, step): the parts of one run, outermost first. A method is named
# ``Class.method``; a function imported by name into another module is wrapped where it is used.
STEPS = [
    ("orchestrator.scheduler.scheduler", "Scheduler.start", "run.start"),
    ("orchestrator.scheduler.session.finish", "finish", "run.finish"),
    ("orchestrator.scheduler.reconciler", "Reconciler.reconcile", "tick"),
    ("orchestrator.scheduler.session.reading", "RunReads.states", "tick"),
    ("orchestrator.scheduler.dispatcher", "Dispatcher.dispatch", "tick"),
    ("orchestrator.scheduler.scheduler", "Scheduler._run_and_wake", "attempt"),
    ("orchestrator.scheduler.attempts.runner", "AttemptRunner._setup", "setup"),
    ("orchestrator.worktrees.manager", "WorktreeManager.create_session_worktree", "setup.worktree"),
    ("orchestrator.workflow.workflow", "_Workflow.execute", "workflow"),
    ("orchestrator.workflow.phase_book", "PhaseBook.start", "phase.start"),
    ("orchestrator.workflow.phases", "call_phase_cli", "cli"),
    ("orchestrator.workflow.phases", "PhaseSteps._complete", "phase.complete"),
    ("orchestrator.workflow.checks.build", "BuildChecks.build", "build.check"),
    ("orchestrator.workflow.checks.build", "BuildChecks.final", "final.check"),
    ("orchestrator.worktrees.manager", "WorktreeManager.commit_in_worktree", "commit"),
    ("orchestrator.worktrees.manager", "WorktreeManager.commit_then", "commit"),  # + facts
    ("orchestrator.workflow.checks.build", "collect_facts", "facts"),
    ("orchestrator.scheduler.attempts.settler", "Settler.settle", "settle"),
    ("orchestrator.merge.queue", "MergeQueue.merge", "merge"),
    ("orchestrator.worktrees.manager", "WorktreeManager.remove_session_worktree", "cleanup"),
    ("orchestrator.scheduler.attempts.writes", "AttemptWrites.release_locks", "release"),
    # The time-driven work: what a run pays per second of its wall time, not per task.
    ("orchestrator.scheduler.radar_watch", "RadarWatch.watch", "radar.timer"),
    ("orchestrator.scheduler.reconciler", "Reconciler._renew", "heartbeat"),
    ("orchestrator.scheduler.sweeper", "Sweeper.sweep", "claim.sweep"),
    ("orchestrator.state.monitor", "StateMonitor.clean_up", "monitor"),
    ("orchestrator.state.monitor", "StateMonitor.verify", "monitor"),
    ("orchestrator.state.monitor", "StateMonitor.checkpoint", "monitor"),
]
ORDER = [
    "run.start",
    "tick",
    "attempt",
    "setup",
    "setup.worktree",
    "workflow",
    "phase.start",
    "cli",
    "build.check",
    "commit",
    "facts",
    "phase.complete",
    "final.check",
    "settle",
    "merge",
    "cleanup",
    "release",
    "run.finish",
    "radar.timer",
    "heartbeat",
    "claim.sweep",
    "monitor",
    "other",
]

# What one task of the overhead bench cannot do without, whatever the code (per task):
# - writes: the task claimed (its record names the attempt and its worktree, for a resume to
#   find), the CLI call's ledger record opened before the CLI starts (its forecast, for the
#   budget), closed with its cost, and the task's end (landed: done) - four durable writes;
# - fsyncs: two for each (the file before its rename, the directory after it).
FLOORS = {"writes": 4, "fsyncs": 8}

_installed = False


def install() -> None:
    """Put the counting wrappers in place (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    import importlib

    from orchestrator.state.file import fsops
    from orchestrator.state.file.record_files.records import RecordKind

    for module_name, path, step in STEPS:
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        _wrap_async(owner, name, step)

    execute_child: Callable[..., Any] = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    @functools.wraps(execute_child)
    def counted_child(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> Any:
        _record_process(args)
        return execute_child(self, args, *rest, **kw)

    subprocess.Popen._execute_child = counted_child  # type: ignore[attr-defined]

    # git's commands are started by ``posix_spawn`` (``process.command.run_captured``).
    posix_spawn = os.posix_spawn

    @functools.wraps(posix_spawn)
    def counted_spawn(path: Any, argv: Any, *rest: Any, **kw: Any) -> int:
        _record_process(argv)
        return posix_spawn(path, argv, *rest, **kw)

    os.posix_spawn = counted_spawn

    run_sync = anyio.to_thread.run_sync

    @functools.wraps(run_sync)
    async def counted_run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        step = STEP.get()
        _record("hops", step)

        def timed(*call_args: Any) -> Any:
            started = time.thread_time()
            try:
                return func(*call_args)
            finally:
                _add_cpu(step, time.thread_time() - started)

        return await run_sync(timed, *args, **kwargs)

    anyio.to_thread.run_sync = counted_run_sync  # type: ignore[assignment]

    replace, fsync, fsync_dir = fsops.FileOps.replace, fsops.FileOps.fsync, fsops.FileOps.fsync_dir

    def counted_replace(self: fsops.FileOps, src: Path, dst: Path) -> None:
        _record_write(dst)
        replace(self, src, dst)

    def counted_fsync(self: fsops.FileOps, fd: int) -> None:
        _record("fsyncs", STEP.get())
        fsync(self, fd)

    def counted_fsync_dir(self: fsops.FileOps, directory: Path) -> None:
        _record("fsyncs", STEP.get())
        fsync_dir(self, directory)

    fsops.FileOps.replace = counted_replace  # type: ignore[method-assign]
    parse = RecordKind.parse

    def counted_parse(self: RecordKind[Any], key: str, raw: bytes) -> Any:
        _record("loads", (STEP.get(), self.name))
        return parse(self, key, raw)

    RecordKind.parse = counted_parse  # type: ignore[method-assign]
    fsops.FileOps.fsync = counted_fsync  # type: ignore[method-assign]
    fsops.FileOps.fsync_dir = counted_fsync_dir  # type: ignore[method-assign]


def per_task(counts: Counts, tasks: int) -> dict[str, float]:
    """Git processes, other processes, worker-thread hops, state writes, fsyncs and record
    loads per task, over every step."""
    return {
        "git": sum(counts.git.values()) / tasks,
        "processes": sum(counts.processes.values()) / tasks,
        "hops": sum(counts.hops.values()) / tasks,
        "writes": sum(counts.writes.values()) / tasks,
        "fsyncs": sum(counts.fsyncs.values()) / tasks,
        "loads": sum(counts.loads.values()) / tasks,
        "worker_cpu_ms": 1000 * sum(counts.worker_cpu.values()) / tasks,
    }


def table(counts: Counts, tasks: int) -> list[str]:
    """Per-task counts by step, then git processes by subcommand."""
    git, hops, fsyncs = counts.by_step(counts.git), counts.hops, counts.fsyncs
    writes, procs = counts.by_step(counts.writes), counts.processes
    loads, cpu = counts.by_step(counts.loads), counts.worker_cpu
    steps = [
        s
        for s in ORDER
        if git[s] or hops[s] or writes[s] or fsyncs[s] or procs[s] or loads[s] or cpu[s]
    ]
    steps += sorted({*git, *hops, *writes, *fsyncs, *procs, *loads, *cpu} - set(ORDER))
    lines = [
        f"  {'step':16} {'git':>6} {'procs':>6} {'hops':>7} {'writes':>7} {'fsyncs':>7} "
        f"{'loads':>7} {'worker CPU ms':>14}"
    ]
    for step in steps:
        lines.append(
            f"  {step:16} {git[step] / tasks:6.2f} {procs[step] / tasks:6.2f} "
            f"{hops[step] / tasks:7.2f} {writes[step] / tasks:7.2f} {fsyncs[step] / tasks:7.2f} "
            f"{loads[step] / tasks:7.2f} {1000 * cpu[step] / tasks:14.2f}"
        )
    lines.append(
        f"  {'total':16} {sum(git.values()) / tasks:6.2f} {sum(procs.values()) / tasks:6.2f} "
        f"{sum(hops.values()) / tasks:7.2f} {sum(writes.values()) / tasks:7.2f} "
        f"{sum(fsyncs.values()) / tasks:7.2f} {sum(loads.values()) / tasks:7.2f} "
        f"{1000 * sum(cpu.values()) / tasks:14.2f}"
    )
    by_command: Counter[str] = Counter()
    for (step, command), value in counts.git.items():
        by_command[f"{step}:{command}"] += value
    shown = ", ".join(f"{k} {v / tasks:.2f}" for k, v in by_command.most_common())
    lines.append(f"  git per task by step:subcommand: {shown}")
    kinds: Counter[str] = Counter()
    for (_, kind), value in counts.writes.items():
        kinds[kind] += value
    lines.append(
        "  state writes per task by record: "
        + ", ".join(f"{k} {v / tasks:.2f}" for k, v in kinds.most_common())
    )
    loaded: Counter[str] = Counter()
    for (step, kind), value in counts.loads.items():
        loaded[f"{step}:{kind}"] += value
    lines.append(
        "  record loads per task by step:record: "
        + ", ".join(f"{k} {v / tasks:.2f}" for k, v in loaded.most_common())
    )
    return lines
