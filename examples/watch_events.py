"""Watch a CLI Council run from Python with ``async for``: typed events, matched by class.

Offline, in a few seconds (the ``scripted`` stand-in CLI, no AI CLI, key or network)::

    python examples/watch_events.py                      # in a new temporary directory
    python examples/watch_events.py --workdir /tmp/demo  # keep the repository there
    python examples/watch_events.py --config configs/demo.yaml   # any run config file

The run goes on in a task group while this program reads ``council.events()``: one model per
event type (``TaskDispatched``, ``PhaseCompleted``, ``MergeCompleted``, ...), each about one
task a ``TaskEvent`` with ``task_id``. It prints one line per step of each task, then how many
events of each kind the run sent. The exit code is the report's: 0 when every task landed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import anyio

from orchestrator import (
    AdapterParked,
    Council,
    Event,
    EventsDropped,
    MergeCompleted,
    MergeConflict,
    PhaseCompleted,
    PhaseFailed,
    RunConfig,
    RunFinished,
    RunReport,
    TaskDispatched,
    TaskEvent,
    TaskFailed,
    TaskRetry,
)


def build_config(workdir: Path) -> RunConfig:
    """Two tasks on a sample repository, one scripted CLI each, build and review."""

    def task(name: str, adapter: str) -> dict[str, object]:
        return {
            "id": f"add-{name}",
            "prompt": f"Add {name}(text) to textkit/{name}.py.",
            "files": [f"textkit/{name}.py"],
            "adapters": [adapter],
            "metadata": {
                "phase_instructions": {
                    "build": f"WRITE textkit/{name}.py <<EOF\ndef {name}(text: str) -> str:\n"
                    "    return text\nEOF",
                    "review": "SAY VERDICT: approve",
                }
            },
        }

    return RunConfig.model_validate(
        {
            "repo": str(workdir / "repo"),
            "sample_repo": True,
            "adapters": {"ada": {"type": "scripted"}, "bo": {"type": "scripted"}},
            "default_adapter": "ada",
            "workflow": {"phases": [{"name": "build"}, {"name": "review"}]},
            "scheduler": {"tick": 0.2, "heartbeat_interval": 5, "stale_threshold": 30},
            "tasks": [task("shout", "ada"), task("whisper", "bo")],
        }
    )


async def watch(council: Council) -> RunReport:
    kinds: Counter[str] = Counter()
    reports: list[RunReport] = []

    async def run() -> None:
        reports.append(await council.run())

    async with council:
        stream = council.events()  # before the run starts, so it hears all of it
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            async for event in stream:  # ends by itself when the run ends
                kinds[event.type] += 1
                line = describe(event)
                if line:
                    print(f"  [{event.ts:%H:%M:%S}] {line}", flush=True)
    print("events by kind:", ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    return reports[0]


def describe(event: Event) -> str | None:
    """A line for the events worth one; the class says which fields there are."""
    match event:
        case TaskDispatched(task_id=task, adapter=adapter, attempt=attempt):
            return f"{task}: attempt {attempt} on {adapter}"
        case PhaseCompleted(task_id=task, phase=phase):
            return f"{task}: {phase} done"
        case PhaseFailed(task_id=task, phase=phase, error=error):
            return f"{task}: {phase} failed: {error}"
        case TaskRetry(task_id=task, delay=delay):
            return f"{task}: trying again in {delay:.1f}s"
        case AdapterParked(task_id=task, adapter=adapter, until=until):
            return f"{task}: {adapter} is rate limited until {until}"
        case MergeCompleted(task_id=task, merge_commit=commit, base_branch=base):
            return f"{task}: landed on {base} in {(commit or '')[:10]}"
        case MergeConflict(task_id=task, conflicts=paths):
            return f"{task}: conflicts in {', '.join(paths)}"
        case TaskFailed(task_id=task, error=error):
            return f"{task}: failed: {error}"
        case RunFinished(status=status):
            return f"run finished: {status}"
        case EventsDropped(count=count):  # this loop fell behind the run
            return f"({count} events dropped)"
        case TaskEvent():
            return None  # claims, worktrees, CLI output...: counted, not shown
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, help="a run config file instead of the built-in run")
    parser.add_argument("--workdir", type=Path, help="where the built-in run keeps its repository")
    args = parser.parse_args(argv)
    if args.config is not None:
        council = Council.from_config(args.config)
    else:
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix="council-events-"))
        council = Council(build_config(workdir.resolve()))
    print(f"running on {council.config.repo}")
    report = anyio.run(watch, council)
    print(f"{report.totals.done} of {report.totals.tasks} done")
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
