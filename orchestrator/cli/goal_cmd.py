"""``council plan GOAL [FILE]`` and the goal of ``council run -g GOAL [FILE]``: a planning CLI
turns a goal into the run's task list (``orchestrator.run.goal``).

- ``plan GOAL [FILE]``: prints the planned ``tasks:`` as YAML on stdout (put it in a run config
  in place of its ``tasks:``; ``council config validate`` accepts it), its rounds and what this
  machine lacks on stderr; ``--json`` prints the plan as one JSON object instead. Nothing is
  written.
- ``run -g GOAL [FILE]``: plans the same way, shows the plan (on stderr with ``--json``, whose
  stdout stays the run's report), saves the run config with the plan's tasks beside FILE
  (``<stem>.goal-<words>.yaml``: what ``council status`` and ``council resume`` are given
  afterwards) and runs it; with ``--dry-run`` it shows the plan and the run's, and saves nothing.

FILE defaults to ``council.yaml`` here (what ``council init`` writes); its own ``tasks:``, if
any, are replaced by the plan's. ``--planner NAME`` picks the run config's adapter that plans
(default: the ``plan`` phase's). An invalid plan goes back to the planner with its problems, at
most ``--rounds`` rounds in all, then is refused (exit 2) with the last plan's problems, each at
its line, and nothing changed.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli import console, event_loop
from orchestrator.cli.goal_options import DEFAULT_ROUNDS, PlannerOption, RoundsOption
from orchestrator.errors import UsageError
from orchestrator.plugins.host import default_plugins
from orchestrator.run.goal import GoalPlan, plan_from_goal

__all__ = [
    "DEFAULT_CONFIG",
    "config_file",
    "make_plan",
    "plan",
    "show_plan",
]

DEFAULT_CONFIG = Path("council.yaml")


def config_file(file: Path | None) -> Path:
    """FILE as given, else ``council.yaml`` here."""
    if file is not None:
        return file
    if DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG
    raise UsageError(
        "no run config: name FILE, or write council.yaml here with `council init` (its "
        "adapters plan and build; the goal replaces its tasks)"
    )


def make_plan(file: Path, goal: str, planner: str | None, rounds: int) -> GoalPlan:
    """The goal's valid plan (``PlanRefused`` when none came), progress said on stderr."""
    plugins = default_plugins()
    return event_loop.run(
        lambda: plan_from_goal(
            file,
            goal,
            plugins,
            os.environ,
            planner=planner,
            rounds=rounds,
            progress=console.print_progress,
        )
    )


def show_plan(plan: GoalPlan, file: Path, *, to_stderr: bool) -> None:
    """The plan in words: one line per task, its prompt's first line under it."""
    rounds = "1 round" if plan.rounds == 1 else f"{plan.rounds} rounds"
    replaced = f"; in place of the {plan.replaced} of {file}" if plan.replaced else ""
    lines = [
        f"plan for the goal, by {plan.planner} in {rounds}: {len(plan.tasks)} task(s){replaced}"
    ]
    for number, task in enumerate(plan.tasks, 1):
        after = f" after {', '.join(task.depends_on)}" if task.depends_on else ""
        files = f" files {', '.join(task.files)}" if task.files else ""
        lines.append(f"{number:>3}. {task.id}{after}{';' if after and files else ''}{files}")
        lines.append(f"     {task.prompt.strip().splitlines()[0]}")
    for line in lines:
        console.print_plain(line, to_stderr=to_stderr)
    for issue in plan.warnings:
        console.print_warning(f"warning: {issue}")


def plan(
    goal: Annotated[str, typer.Argument(help="What the run should achieve, in words.")],
    file: Annotated[
        Path | None,
        typer.Argument(help="Run config whose adapters plan and run (default: council.yaml)."),
    ] = None,
    planner: PlannerOption = None,
    rounds: RoundsOption = DEFAULT_ROUNDS,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Plan GOAL into a task list with the run config's planning CLI; print it, run nothing."""
    config = config_file(file)
    found = make_plan(config, goal, planner, rounds)
    if as_json:
        console.print_lines(json.dumps(found.as_data(), indent=2))
        return
    show_plan(found, config, to_stderr=True)
    header = (
        f"# Planned by {found.planner} for the goal below; `council config validate` checks it\n"
    )
    goal_lines = "".join(f"#   {line}\n" for line in found.goal.splitlines())
    console.print_lines(header + goal_lines + found.tasks_yaml)
    console.print_progress(
        f"put these tasks: in {shlex.quote(str(config))} (in place of its own) and run it, "
        f"or run the goal at once: council run -g {shlex.quote(found.goal)} "
        f"{shlex.quote(str(config))}"
    )
