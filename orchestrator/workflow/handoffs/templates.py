"""The default prompt template of each phase, and of the council comparison.

Placeholders and what the CLI is asked to end its answer with are described in ``prompts``;
a run config's ``prompt_template`` replaces a phase's default.
"""

from __future__ import annotations

__all__ = [
    "BUILD_TEMPLATE",
    "COUNCIL_TEMPLATE",
    "DEFAULT_TEMPLATES",
    "GENERIC_TEMPLATE",
    "PLAN_TEMPLATE",
    "REVIEW_TEMPLATE",
    "SCOUT_TEMPLATE",
]

SCOUT_TEMPLATE = """\
# Scout for task {task_id}

You are the scout of a team of coding agents working on this repository. Explore the code
and report what the planner needs to know. Do not change any file.

## Task
{task}

## Constraints
{constraints}

## Your report
Briefly: the files, functions and conventions involved, the tests that cover them, and the
risks you see.
{handoff}
{instructions}
"""

PLAN_TEMPLATE = """\
# Plan for task {task_id}

You are the planner. Write a short, concrete plan the builder can follow. Do not change any
file.

## Task
{task}

## Constraints
{constraints}
{handoff}
## Your plan
A numbered list of steps. Then one line naming every file the build will create or change,
relative to the repository root, separated by commas, for example:

FILES: src/app.py, tests/test_app.py

(or a fenced JSON block with {"files": ["src/app.py", "tests/test_app.py"]}). These files
are reserved for the builder before it starts.
{instructions}
"""

BUILD_TEMPLATE = """\
# Build for task {task_id} (round {round})

You are the builder. Implement the task in this working tree by editing files. Do not commit:
the orchestrator commits your changes and runs the checks. Keep to the planned files unless
the task needs more.

## Task
{task}

## Constraints
{constraints}
{handoff}
{instructions}
"""

REVIEW_TEMPLATE = """\
# Review for task {task_id} (round {round} of at most {max_rounds})

You are the reviewer. Judge the change below against the task: is it correct, complete,
tested and limited to what the task asks? Do not change any file.

## Task
{task}
{handoff}
## Your verdict
Explain briefly, then end with exactly one of these lines:

VERDICT: approve
VERDICT: request-changes

With request-changes, list the concrete changes the builder must make.
{instructions}
"""

GENERIC_TEMPLATE = """\
# {phase} for task {task_id}

## Task
{task}

## Constraints
{constraints}
{handoff}
{instructions}
"""

COUNCIL_TEMPLATE = """\
# Choosing the best implementation of task {task_id}

Several agents implemented the same task independently; each candidate below passed the
orchestrator's checks. Compare them: correctness, completeness, tests, clarity and how little
they change beyond the task. Do not change any file.

## Task
{task}
{handoff}
## Your choice
Explain briefly, then end with exactly one line naming the best candidate by its id:

WINNER: <candidate id>
{instructions}
"""

DEFAULT_TEMPLATES: dict[str, str] = {
    "scout": SCOUT_TEMPLATE,
    "plan": PLAN_TEMPLATE,
    "build": BUILD_TEMPLATE,
    "review": REVIEW_TEMPLATE,
}
