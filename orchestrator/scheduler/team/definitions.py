"""One definition per team run: what each task asks of the workstations, compared when one joins.

A task's **definition** is what changes the work it does, resolved with the run config it is
run under (``definition``), kept as canonical JSON so that two workstations compare it field by
field and its ``digest`` (sha256) names it in one string:

- ``prompt``; ``phases``: for each phase it runs, in order, its ``name``, its ``adapters``
  (the chain, each ``[name, type]``: the task's ``adapters``, else the phase's, else the
  default one, with fallbacks), ``model`` and ``prompt_template``; ``review_rounds`` (the
  workflow's ``max_review_rounds``);
- ``verify`` (the task's commands, else the run's); ``files`` and ``depends_on`` (as sets);
  ``metadata`` (all of it reaches the prompts: phase instructions, a council's candidate
  overrides); ``council`` (best of N: the candidates are the adapters above; the judge is the
  workflow's own, a branch is always ``council/<task>/<n>``, so neither differs by config);
  ``pulls: stacked`` when it lands as a stacked pull request (its ``landing.pulls``, else the
  run's: where it starts and what its pull request lands on), absent otherwise.

Not part of it, and free to differ: ``priority`` (only the order: the team's queue keeps the
creator's), ``timeout`` and the phases' ``timeout``/``idle_timeout`` (limits each workstation
sets for its own machine), an adapter's options (a phase's too), executable and environment
(where a CLI is installed on this machine). ``TASK_FIELDS``, ``IGNORED_TASK_FIELDS``,
``PHASE_FIELDS`` and ``IGNORED_PHASE_FIELDS`` say the same in code, and a test pins them
against the config models.

The creator stores every task's definition in the session's options (``DEFINITIONS_OPTION``),
beside the task configs (``TASKS_OPTION``); a task added later (``Submissions``) stores its own
in the same transaction. ``plan_join`` decides, before the joining workstation writes anything:

- a task of this config whose definition differs from the team's refuses the join, one line
  per task naming the fields, unless ``adopt``: then this workstation runs the team's task as
  stored (never overwriting it), provided the team's definition resolves here to itself (a
  difference of this config's run-level sections, such as the workflow, cannot be adopted);
- a task of this config the team run lacks refuses the join naming it, unless ``add_tasks``
  (``council run --add-tasks``): then it is added to the team run, like a submitted task;
- a task the team run has and this config lacks is run here as the team defines it, or, when
  it cannot be (its phase or adapter is not this config's), waited for (``foreign``): it is the
  team's to finish, and this workstation's run ends when it has.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.config.run import RunConfig
from orchestrator.config.task import TaskConfig
from orchestrator.errors import RunError
from orchestrator.models import SessionRecord
from orchestrator.scheduler.rules.queue import TASKS_OPTION

__all__ = [
    "DEFINITIONS_OPTION",
    "IGNORED_PHASE_FIELDS",
    "IGNORED_TASK_FIELDS",
    "PHASE_FIELDS",
    "TASK_FIELDS",
    "DefinitionsDiffer",
    "JoinChoice",
    "JoinPlan",
    "definition",
    "definitions",
    "differences",
    "digest",
    "plan_join",
    "stored_tasks",
]

DEFINITIONS_OPTION = "definitions"  # session options: task id -> its definition

# The task config's fields a definition is made of (resolved), and those it leaves out.
TASK_FIELDS = frozenset(
    {
        "prompt", "phases", "adapters", "verify", "files", "depends_on", "metadata", "council",
        "landing",
    }
)  # fmt: skip
IGNORED_TASK_FIELDS = frozenset({"id", "priority", "timeout"})
PHASE_FIELDS = frozenset({"name", "adapter", "model", "prompt_template"})
IGNORED_PHASE_FIELDS = frozenset({"timeout", "idle_timeout", "options"})


@dataclass(frozen=True)
class JoinChoice:
    """What the user allowed a join to do (``council run --adopt``, ``--add-tasks``)."""

    adopt: bool = False  # work on the team's definitions where this config's differ
    add_tasks: bool = False  # add this config's tasks the team run lacks


@dataclass
class JoinPlan:
    """What a joining workstation works on: ``tasks`` (the team's, as stored, and the added
    ones), ``added`` (to write into the session), ``foreign`` (the team's tasks it cannot run
    as defined: waited for), ``adopted`` (its own tasks replaced by the team's)."""

    tasks: dict[str, TaskConfig] = field(default_factory=dict)
    added: list[TaskConfig] = field(default_factory=list)
    foreign: set[str] = field(default_factory=set)
    adopted: list[str] = field(default_factory=list)


class DefinitionsDiffer(RunError, ValueError):
    """This workstation's config disagrees with the team run it would join (exit code 2:
    refused before anything was written). One line per task, then the way out, naming the run
    config once a caller that knows it does (``for_config``)."""

    def __init__(
        self,
        run_key: str,
        lines: list[str],
        *,
        adopt: bool,
        add: bool,
        config: str = "<config>",
        command: str = "run",
    ) -> None:
        self.run_key, self.lines, self.adopt, self.add = run_key, lines, adopt, add
        ways = []
        if adopt:
            ways.append(f"`council {command} {config} --adopt` works on the team's definitions")
        if add:
            ways.append(
                f"`council {command} {config} --add-tasks` adds the new tasks to the team run"
            )
        way = "; ".join(ways) if ways else "make this config's sections the team's"
        super().__init__(
            "\n".join(
                [
                    f"not joining team run {run_key!r}: this config's tasks are not the team's",
                    *lines,
                    f"nothing was written; {way}",
                ]
            )
        )

    def for_config(self, config: str, command: str = "run") -> DefinitionsDiffer:
        """The same refusal naming the run config (already shell-quoted) and the command
        (``run``, ``resume``) in its ways out."""
        return DefinitionsDiffer(
            self.run_key, self.lines, adopt=self.adopt, add=self.add, config=config, command=command
        )


def definition(config: RunConfig, task: TaskConfig) -> dict[str, Any]:
    """``task``'s definition under ``config`` (module doc), as plain JSON values;
    ``KeyError`` when it names a phase ``config``'s workflow does not have."""
    phases = []
    for phase in config.phases_for(task):
        chain = config.adapter_chain(task, phase)
        adapters = [[name, _adapter_type(config, name)] for name in chain]
        phases.append(
            {
                "name": phase.name,
                "adapters": adapters,
                "model": phase.model,
                "prompt_template": phase.prompt_template,
            }
        )
    shape = {
        "prompt": task.prompt,
        "phases": phases,
        "review_rounds": config.workflow.max_review_rounds,
        "verify": config.verify_for(task),
        "files": sorted(task.files),
        "depends_on": sorted(task.depends_on),
        "metadata": task.metadata,
        "council": task.council,
    }
    if config.stacked(task):  # where it starts and what its pull request lands on
        shape["pulls"] = "stacked"
    loaded: dict[str, Any] = json.loads(_canonical(shape))
    return loaded


def definitions(config: RunConfig, tasks: Iterable[TaskConfig]) -> dict[str, dict[str, Any]]:
    """Each task's definition by id (what a session's options keep)."""
    return {task.id: definition(config, task) for task in tasks}


def digest(shape: Mapping[str, Any]) -> str:
    """sha256 of a definition's canonical JSON: equal exactly when the definitions are."""
    return hashlib.sha256(_canonical(shape).encode()).hexdigest()


def differences(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """The fields in which two definitions differ, one level deeper where that says more:
    ``metadata.phase_instructions``, ``phases.build.prompt_template``."""
    found: list[str] = []
    for key in sorted(set(mine) | set(theirs)):
        a, b = mine.get(key), theirs.get(key)
        if _canonical(a) == _canonical(b):
            continue
        if key == "phases" and isinstance(a, list) and isinstance(b, list):
            found += _phase_differences(a, b)
        elif isinstance(a, dict) and isinstance(b, dict):
            found += [
                f"{key}.{sub}"
                for sub in sorted(set(a) | set(b))
                if _canonical(a.get(sub)) != _canonical(b.get(sub))
            ]
        else:
            found.append(key)
    return found


def stored_tasks(session: SessionRecord) -> dict[str, TaskConfig]:
    """The team session's tasks as stored, by id, in the session's order."""
    saved = {}
    for raw in session.options.get(TASKS_OPTION, []):
        task = TaskConfig.model_validate(raw)
        saved[task.id] = task
    return {task_id: saved[task_id] for task_id in session.task_ids if task_id in saved}


def plan_join(
    config: RunConfig,
    mine: Mapping[str, TaskConfig],
    session: SessionRecord,
    run_key: str,
    choice: JoinChoice,
) -> JoinPlan:
    """What joining ``session`` means for this workstation (module doc); ``DefinitionsDiffer``
    (before anything is written) when this config's tasks are not the team's and ``choice``
    does not allow the difference."""
    team = stored_tasks(session)
    stored: Mapping[str, Any] = session.options.get(DEFINITIONS_OPTION) or {}
    plan = JoinPlan()
    differ: list[str] = []
    adoptable = False  # some difference --adopt would settle
    new: list[str] = []
    for task_id, theirs in team.items():
        team_shape = stored.get(task_id) or _resolved(config, theirs)
        own = mine.get(task_id)
        if own is not None:
            fields = differences(_resolved(config, own) or {}, team_shape or {})
            if not fields:
                plan.tasks[task_id] = own
                continue
            if not choice.adopt:
                differ.append(f"task {task_id!r} differs from the team's in {', '.join(fields)}")
                adoptable = True
                continue
            plan.adopted.append(task_id)
        here = _resolved(config, theirs)
        fields = differences(here or {}, team_shape or {})
        if not fields:
            plan.tasks[task_id] = theirs
        elif own is not None:
            differ.append(
                f"task {task_id!r} as the team defines it differs here in {', '.join(fields)}, "
                "which come from this config's own sections (workflow, adapters, verify): "
                "--adopt cannot take those"
            )
        else:
            plan.foreign.add(task_id)  # the team's to run; waited for here
    for task_id, own in mine.items():
        if task_id in team:
            continue
        if choice.add_tasks:
            plan.tasks[task_id] = own
            plan.added.append(own)
        else:
            new.append(f"task {task_id!r} is not part of the team run")
    if differ or new:
        raise DefinitionsDiffer(run_key, differ + new, adopt=adoptable, add=bool(new))
    return plan


def _resolved(config: RunConfig, task: TaskConfig) -> dict[str, Any] | None:
    """``task``'s definition under ``config``; None when ``config`` cannot run it (a phase
    its workflow lacks)."""
    try:
        return definition(config, task)
    except KeyError:
        return None


def _adapter_type(config: RunConfig, name: str) -> str | None:
    adapter = config.adapters.get(name)
    return None if adapter is None else (adapter.type or name)


def _phase_differences(mine: list[Any], theirs: list[Any]) -> list[str]:
    names = [p.get("name") for p in mine if isinstance(p, dict)]
    if names != [p.get("name") for p in theirs if isinstance(p, dict)]:
        return ["phases"]
    found = []
    for a, b in zip(mine, theirs, strict=True):
        for key in sorted(set(a) | set(b)):
            if _canonical(a.get(key)) != _canonical(b.get(key)):
                found.append(f"phases.{a.get('name')}.{key}")
    return found


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
