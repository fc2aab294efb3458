"""Drive a CLI Council run from Python: build the run in code, watch its events, read its report.

Offline, in a few seconds: the run uses the ``scripted`` adapter (the stand-in CLI that ships
with CLI Council), so it needs no AI CLI, no key and no network::

    python examples/run_with_python.py                      # in a new temporary directory
    python examples/run_with_python.py --workdir /tmp/demo  # keep the repository there
    python examples/run_with_python.py --config configs/demo.yaml   # any run config file

Without ``--config`` it creates a small sample repository under the work directory and runs
three tasks there: two in parallel, then one that depends on both, plus a fourth added with
``Council.submit`` as a program would add work it discovers. Every event is printed as it
happens (a selection: dispatches, phases, merges, failures), then the report: one line per
task and the totals. The exit code is the report's: 0 when every task is done, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from orchestrator import Council, Event, RunConfig, RunReport

# The events worth a line here; the store also reports every state write, claim and lock.
SHOWN = {
    "run.started": "run {session_id} started",
    "task.dispatched": "{task_id}: dispatched to {adapter} (attempt {attempt}, {branch})",
    "phase.completed": "{task_id}: {phase} done ({adapter})",
    "phase.failed": "{task_id}: {phase} failed: {error}",
    "phase.sent_back": "{task_id}: review sent it back to build",
    "task.retry": "{task_id}: will retry",
    "task.failed": "{task_id}: failed",
    "merge.completed": "{task_id}: merged into {base_branch}",
    "merge.conflict": "{task_id}: merge conflict",
    "run.finished": "run {session_id} finished: {status}",
}


def build_config(workdir: Path) -> RunConfig:
    """A run built in code: the same fields a YAML run config has."""

    def scripted(build: str, plan_files: str) -> dict[str, Any]:
        # The scripted CLI follows these per-phase instructions; a real CLI would get the same
        # prompt without them and work out the change itself.
        return {
            "phase_instructions": {
                "plan": f"SAY FILES: {plan_files}",
                "build": build,
                "review": "SAY VERDICT: approve",
            }
        }

    return RunConfig.model_validate(
        {
            "repo": str(workdir / "repo"),
            "sample_repo": True,  # create the sample project there on the first run
            "adapters": {
                "ada": {"type": "scripted", "options": {"persona": "careful", "delay": 0.05}},
                "bo": {"type": "scripted", "options": {"persona": "quick"}},
            },
            "default_adapter": "ada",
            "capacity": {"sessions": 2},
            "workflow": {"phases": [{"name": "plan"}, {"name": "build"}, {"name": "review"}]},
            "verify": [["python3", "-m", "unittest", "discover", "-s", "tests"]],
            "scheduler": {"tick": 0.2, "heartbeat_interval": 5, "stale_threshold": 30},
            "retry": {"max_retries": 1, "backoff_initial": 0.5, "backoff_max": 2},
            "tasks": [
                {
                    "id": "add-first-word",
                    "prompt": "Add first_word(text) to textkit/first.py.",
                    "files": ["textkit/first.py"],
                    "metadata": scripted(
                        "WRITE textkit/first.py <<EOF\n"
                        "def first_word(text: str) -> str:\n"
                        '    return (text.split() or [""])[0]\n'
                        "EOF",
                        "textkit/first.py",
                    ),
                },
                {
                    "id": "add-last-word",
                    "prompt": "Add last_word(text) to textkit/last.py.",
                    "files": ["textkit/last.py"],
                    "adapters": ["bo"],
                    "metadata": scripted(
                        "WRITE textkit/last.py <<EOF\n"
                        "def last_word(text: str) -> str:\n"
                        '    return (text.split() or [""])[-1]\n'
                        "EOF",
                        "textkit/last.py",
                    ),
                },
                {
                    "id": "test-ends",
                    "prompt": "Test first_word and last_word in tests/test_ends.py.",
                    "depends_on": ["add-first-word", "add-last-word"],
                    "files": ["tests/test_ends.py"],
                    "metadata": scripted(
                        "WRITE tests/test_ends.py <<EOF\n"
                        "import unittest\n\n"
                        "from textkit.first import first_word\n"
                        "from textkit.last import last_word\n\n\n"
                        "class EndsTest(unittest.TestCase):\n"
                        "    def test_ends(self) -> None:\n"
                        '        self.assertEqual(first_word("a b c"), "a")\n'
                        '        self.assertEqual(last_word("a b c"), "c")\n'
                        "EOF",
                        "tests/test_ends.py",
                    ),
                },
            ],
        }
    )


def extra_task() -> dict[str, Any]:
    """A task handed to ``Council.submit`` instead of being in the config."""
    return {
        "id": "note-in-readme",
        "prompt": "Mention first_word and last_word in README.md.",
        "adapters": ["bo"],
        "depends_on": ["test-ends"],
        "phases": ["build"],
        "metadata": {
            "phase_instructions": {"build": "APPEND README.md See textkit.first and textkit.last."}
        },
    }


def show(event: Event) -> None:
    """A subscriber: called in the event loop for every event, so it must not block."""
    template = SHOWN.get(event.type)
    if template is None:
        return
    fields = {key: value for key, value in event.data.items() if value is not None}
    try:
        line = template.format(**fields)
    except KeyError:  # an event without the usual fields: show what it has
        line = f"{event.type} {fields}"
    print(f"  [{event.ts:%H:%M:%S}] {line}", flush=True)


def print_report(report: RunReport) -> None:
    print(f"\nsession {report.session_id}: {report.status}")
    for task in report.tasks:
        phases = ", ".join(f"{name} {status}" for name, status in task.phases.items())
        merged = (task.merged_commit or "-")[:10]
        took = f"{task.duration_seconds:.1f}s" if task.duration_seconds is not None else "-"
        print(
            f"  {task.task_id:16} {task.status:9} {task.adapter or '-':6} "
            f"attempts {task.attempts}  merged {merged:10}  {took:>6}  [{phases}]"
        )
        if task.error:
            print(f"  {'':16} error: {task.error}")
    totals = report.totals
    print(
        f"{totals.done} of {totals.tasks} done, {totals.failed} failed, "
        f"{totals.conflict} in conflict; tokens in/out {totals.input_tokens}/"
        f"{totals.output_tokens}, cost ${totals.cost_usd or 0:.4f}"
    )


async def run(council: Council, submit: bool) -> RunReport:
    council.subscribe(show)  # before or inside the context: either way it sees every event
    async with council:
        if submit:
            council.submit(extra_task())
        return await council.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, help="a run config file instead of the built-in run")
    parser.add_argument("--workdir", type=Path, help="where the built-in run keeps its repository")
    args = parser.parse_args(argv)
    if args.config is not None:
        council = Council.from_config(args.config)
        print(f"running {args.config} on {council.config.repo}")
        report = anyio.run(run, council, False)
    else:
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix="council-example-"))
        council = Council(build_config(workdir.resolve()))
        print(f"running 4 tasks on {council.config.repo}")
        report = anyio.run(run, council, True)
    print_report(report)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
