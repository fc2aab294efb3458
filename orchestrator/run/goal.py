"""Goal mode: a planning CLI turns a goal into the run's task list (``council run -g GOAL``,
``council plan GOAL``).

1. The run config is read as written, its own ``tasks:`` (if any) set aside, and checked with a
   stand-in task: a problem of the config itself is refused at once, before any CLI runs.
2. The planner is the adapter ``--planner`` names, else the ``plan`` phase's (else the first
   phase's) adapter by the run's usual rule (the phase's ``adapter``, ``default_adapter``, the
   only adapter). It runs once per round through the phase runner (``call_phase_cli``), in a
   copy of the base branch's files (``git archive`` into a temporary directory, with its
   private HOME and logs beside it, all removed afterwards): it reads the repository, and
   nothing it does reaches the repository.
3. Its final message carries the task list as YAML (or JSON) between the lines
   ``BEGIN COUNCIL TASKS`` and ``END COUNCIL TASKS``. It is parsed strictly (the config's own
   YAML reader: no tags, no aliases past their bound, no duplicate keys), must be a mapping
   with ``tasks:`` alone, may hold at most ``MAX_TASKS`` tasks and no ``verify`` (commands a
   run executes: a plan is text, and nothing of it is executed by the orchestrator), and is
   then put in the config's place of ``tasks:`` and validated exactly as ``council config
   validate`` validates a hand-written file (``validate_config_text``).
4. An invalid plan goes back to the planner with its problems, each at its line of the plan
   as shown, for at most ``rounds`` rounds in all; then ``PlanRefused`` names the last plan's
   problems. Nothing is written by any of this: the caller saves the planned config
   (``save_planned_config``) and runs it.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio.to_thread

from orchestrator.adapter import OutcomeKind
from orchestrator.config.load import RunConfig, check_config_text
from orchestrator.config.task import TaskConfig
from orchestrator.config.workflow import PhaseConfig
from orchestrator.config.yaml_source import (
    dump_yaml_readable,
    parse_yaml_mapping,
    read_config_text,
    without_top_level_key,
)
from orchestrator.errors import ConfigError, ConfigIssue, GitError, PlanRefused, UsageError
from orchestrator.git.repo import Git
from orchestrator.plugins.host import PluginHost
from orchestrator.run.config_check import validate_config_text
from orchestrator.run.goal_rounds import DEFAULT_ROUNDS
from orchestrator.runner.phase import call_phase_cli
from orchestrator.runner.phase_call import PhaseCall
from orchestrator.safety.safe_write import write_atomic
from orchestrator.worktrees.confine import outside_look

__all__ = [
    "BEGIN",
    "DEFAULT_ROUNDS",
    "END",
    "GOAL_RULES",
    "MAX_TASKS",
    "PLAN_SOURCE",
    "GoalPlan",
    "extract_task_list",
    "plan_from_goal",
    "planner_prompt",
    "save_planned_config",
]

BEGIN = "BEGIN COUNCIL TASKS"
END = "END COUNCIL TASKS"
PLAN_SOURCE = "plan"  # how the plan's own lines are named in its problems
MAX_TASKS = 50
_REFUSED_KEYS = {"verify": "a plan may not set verify (commands the run executes)"}
_ROUND_LINE = "Planning round: {number} of {rounds}"

GOAL_RULES = f"""\
Rules for the list:
- each id is unique and matches ^[a-z0-9][a-z0-9._-]{{0,63}}$;
- each prompt says completely what to do: the CLI that builds it has not seen the goal;
- files lists the repository paths the task will change (relative to the repository root);
  two tasks that change the same file may not run at the same time, so give each file to one
  task where you can;
- depends_on names tasks of this list that must be merged first; no cycles;
- allowed keys: id, prompt, files, depends_on, priority (higher runs first), phases, adapters,
  timeout, metadata; never verify or commands;
- at most {MAX_TASKS} tasks; small, independent tasks run in parallel."""


@dataclass(frozen=True)
class GoalPlan:
    """A goal's task list, valid: what to show, save and run."""

    goal: str
    planner: str  # the adapter that planned
    rounds: int  # how many rounds it took (1: the first plan was valid)
    tasks_yaml: str  # ``tasks:`` as YAML, the lines its problems were reported at
    config_text: str  # the run config with these tasks in place of its own
    config: RunConfig
    replaced: int  # how many tasks the config file had of its own (set aside)
    warnings: list[ConfigIssue]  # what this machine lacks for the run (``config validate``)

    @property
    def tasks(self) -> list[TaskConfig]:
        return self.config.tasks

    def as_data(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "planner": self.planner,
            "rounds": self.rounds,
            "tasks": [
                task.model_dump(mode="json", exclude_defaults=True) for task in self.config.tasks
            ],
            "warnings": [str(issue) for issue in self.warnings],
        }


def planner_prompt(goal: str, base_branch: str, number: int, rounds: int) -> str:
    """What the planner is asked in round ``number`` (the problems of a refused plan follow)."""
    return f"""\
You are planning work for several AI coding CLIs that will work on this repository in
parallel, each task in its own git worktree, each landing through a merge queue.

Read the repository first: your working directory holds the files of its branch
{base_branch}. Do not change any file; your only output is the task list.

The goal:
--- goal ---
{goal.strip()}
--- end of goal ---

End your final message with the tasks that reach the goal, as YAML, between two lines that
say exactly {BEGIN} and {END}, like this:

{BEGIN}
tasks:
  - id: add-parser
    prompt: Add a parser for the config format to src/parser.py, with its unit tests.
    files: [src/parser.py, tests/test_parser.py]
  - id: use-parser
    prompt: Make src/main.py read its config through the parser in src/parser.py.
    files: [src/main.py]
    depends_on: [add-parser]
{END}

{GOAL_RULES}

{_ROUND_LINE.format(number=number, rounds=rounds)}
"""


def _sent_back(prompt: str, plan_text: str, issues: list[ConfigIssue]) -> str:
    numbered = "\n".join(
        f"{number:>4}  {line}" for number, line in enumerate(plan_text.splitlines(), 1)
    )
    problems = "\n".join(f"- {issue}" for issue in issues)
    shown = f"Your task list, as read (lines numbered):\n{numbered}\n\n" if plan_text else ""
    return (
        f"{prompt}\n--- refused ---\nYour previous task list was refused.\n{shown}"
        f"Its problems, each at its line:\n{problems}\n\n"
        f"Write the whole corrected list again, between the two lines {BEGIN} and {END}.\n"
    )


def extract_task_list(texts: list[str]) -> str | None:
    """The text between the last ``BEGIN``/``END`` pair of the planner's final message (else
    of its latest message holding one), a fence around it (```yaml) taken off; None when no
    message has one."""
    for text in reversed(texts):
        lines = text.splitlines()
        ends = [i for i, line in enumerate(lines) if line.strip() == END]
        for end in reversed(ends):
            begins = [i for i, line in enumerate(lines[:end]) if line.strip() == BEGIN]
            if begins:
                body = lines[begins[-1] + 1 : end]
                if body and body[0].strip().startswith("```"):
                    body = body[1:]
                if body and body[-1].strip() == "```":
                    body = body[:-1]
                return "\n".join(body) + "\n"
    return None


def _plan_issue(message: str, field: str = "", line: int | None = None) -> ConfigIssue:
    return ConfigIssue(PLAN_SOURCE, line, field, message)


def _normalised(block: str) -> tuple[str, list[ConfigIssue]]:
    """The plan as ``tasks:`` YAML of our own writing, or its problems (``plan:LINE``)."""
    try:
        document = parse_yaml_mapping(block, PLAN_SOURCE)
    except ConfigError as exc:
        return "", exc.issues
    data = document.data
    issues = [
        _plan_issue(
            f"unknown key {key!r}: a plan holds tasks: alone", str(key), document.line_of((key,))
        )
        for key in data
        if key != "tasks"
    ]
    tasks = data.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        issues.append(
            _plan_issue(
                "must be a list of at least one task", "tasks", document.line_of(("tasks",))
            )
        )
        return "", issues
    if len(tasks) > MAX_TASKS:
        issues.append(_plan_issue(f"{len(tasks)} tasks: at most {MAX_TASKS}", "tasks"))
    for index, task in enumerate(tasks):
        if not isinstance(task, dict):
            continue  # the config's own check names it
        for key, why in _REFUSED_KEYS.items():
            if key in task:
                where = document.line_of(("tasks", index, key))
                issues.append(_plan_issue(why, f"tasks[{index}].{key}", where))
    if issues:
        return "", issues
    return dump_yaml_readable({"tasks": tasks}), []


@dataclass(frozen=True)
class _Base:
    """The run config as written, its own tasks set aside."""

    source: str
    base_dir: Path
    text: str  # without tasks:, ending in a newline
    config: RunConfig
    replaced: int


_STAND_IN = "tasks:\n  - {id: goal-stand-in, prompt: the goal}\n"


async def _base(
    path: Path, registry_models: Mapping[str, Any], environ: Mapping[str, str]
) -> _Base:
    source = str(path)
    text = await anyio.to_thread.run_sync(read_config_text, path, source)
    own = parse_yaml_mapping(text, source).data.get("tasks")
    rest = without_top_level_key(text, source, "tasks")
    if not rest.endswith("\n"):
        rest += "\n"
    base_dir = await anyio.to_thread.run_sync(lambda: path.absolute().parent)
    checked = check_config_text(
        rest + _STAND_IN,
        source=source,
        base_dir=base_dir,
        options_models=registry_models,
        environ=environ,
    )
    # The stand-in task's own problems are not the config's (a task with no adapter: the
    # planner may name one); everything else is, and no plan can mend it.
    offset = rest.count("\n")
    own_issues = [i for i in checked.issues if i.line is None or i.line <= offset]
    if own_issues or checked.config is None:
        raise ConfigError(own_issues or checked.issues)
    return _Base(source, base_dir, rest, checked.config, len(own) if isinstance(own, list) else 0)


def _planner(config: RunConfig, chosen: str | None) -> tuple[str, PhaseConfig | None]:
    phases = config.workflow.phases
    phase = next((p for p in phases if p.name == "plan"), phases[0] if phases else None)
    if chosen is not None:
        if chosen not in config.adapters:
            known = ", ".join(sorted(config.adapters)) or "none"
            raise UsageError(
                f"--planner {chosen}: no such adapter in the run config (it has: {known})"
            )
        return chosen, phase
    chain = config.adapter_chain(
        TaskConfig(id="goal", prompt="goal"), phase or PhaseConfig(name="plan")
    )
    if not chain:
        known = ", ".join(sorted(config.adapters)) or "none"
        raise UsageError(
            f"no adapter to plan with: name one with --planner (the run config's adapters: {known})"
        )
    return chain[0], phase


def _copy_of_base(repo: Path, base_branch: str, into: Path) -> None:
    """The files of ``base_branch`` written into ``into`` (nothing of the repository changes)."""
    try:
        archive = Git(repo, None).feed_sync("archive", "--format=tar", f"refs/heads/{base_branch}")
    except GitError as exc:
        raise UsageError(f"cannot read the branch {base_branch} of {repo}: {exc}") from None
    into.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        _extract(tar, into)


def _extract(tar: tarfile.TarFile, into: Path) -> None:
    """``tar`` written into ``into``, nothing outside it: the branch is anyone's who could
    commit to it, and a member that would land or point outside (a link to ``../../x``, as
    real repositories have) is left out, the rest written. Python's ``data`` filter where it
    has one (3.11.4 on; Debian 12's 3.11.2 has not): else regular files, directories and links
    whose target stays inside, each checked where it lands (a link written before is
    followed, as extraction would)."""
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is not None:

        def inside(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
            try:
                kept: tarfile.TarInfo | None = data_filter(member, path)
            except tarfile.FilterError:
                return None  # left out, the rest written
            return kept

        tar.extractall(into, filter=inside)  # noqa: S202 (each member through the filter)
        return
    root = into.resolve()
    for member in tar.getmembers():
        member.name = member.name.lstrip("/")  # as the data filter does: made relative
        where = (root / member.name).resolve()
        if not where.is_relative_to(root) or where == root:
            continue
        if member.issym():
            if os.path.isabs(member.linkname):
                continue
            if not (where.parent / member.linkname).resolve().is_relative_to(root):
                continue
        elif not (member.isfile() or member.isdir()):
            continue
        tar.extract(member, root, set_attrs=False)


Progress = Callable[[str], None]


@dataclass(frozen=True)
class _Planner:
    """One planning CLI, asked once per round in the same scratch directory."""

    config: RunConfig
    plugins: PluginHost
    adapter: str
    phase: PhaseConfig | None
    scratch: Path
    session: str

    async def ask(self, prompt: str, number: int) -> list[str]:
        """What the CLI said, its final message last; ``PlanRefused`` when it did not finish."""
        phase = self.phase
        call = PhaseCall(
            task_id="goal",
            phase="plan",
            adapter=self.adapter,
            prompt=prompt,
            workdir=self.scratch / "repo",
            home_root=self.scratch / "home" / str(number),
            session_id=self.session,
            model=phase.model if phase else None,
            options=phase.options if phase else {},
        )
        # Confined like every CLI of a run (``sandbox:``): its scratch copy and private HOME
        # writable, the repository read-only, the user's HOME and the run's state hidden.
        call = replace(call, reach=lambda: outside_look(self.config.repo))
        if phase is not None and phase.timeout is not None:
            call = replace(call, timeout=phase.timeout)
        if phase is not None and phase.idle_timeout is not None:
            call = replace(call, idle_timeout=phase.idle_timeout)
        run = await call_phase_cli(self.config, self.plugins, call, log_dir=self.scratch / "logs")
        outcome = run.cli.outcome
        if outcome.kind != OutcomeKind.SUCCEEDED:
            said = f": {outcome.message}" if outcome.message else ""
            raise PlanRefused(
                f"the planner {self.adapter} did not finish ({outcome.kind}{said}); "
                "nothing was changed",
                [],
            )
        return run.texts


async def plan_from_goal(
    path: Path,
    goal: str,
    plugins: PluginHost,
    environ: Mapping[str, str],
    *,
    planner: str | None = None,
    rounds: int = DEFAULT_ROUNDS,
    progress: Progress | None = None,
) -> GoalPlan:
    """Ask the planner for the task list of ``goal`` in the run config at ``path``, checked
    like a hand-written config, sent back with its problems for at most ``rounds`` rounds;
    ``PlanRefused`` when none was valid. Writes nothing but its own temporary directory."""
    if not goal.strip():
        raise UsageError("the goal is empty: say what the run should achieve")
    say = progress or (lambda _: None)
    base = await _base(path, plugins.registry.options_models(), environ)
    adapter, phase = _planner(base.config, planner)
    scratch = Path(await anyio.to_thread.run_sync(tempfile.mkdtemp, "", "council-goal-"))
    try:
        await anyio.to_thread.run_sync(
            _copy_of_base, base.config.repo, base.config.base_branch, scratch / "repo"
        )
        asking = _Planner(
            base.config, plugins, adapter, phase, scratch, f"goal-{uuid.uuid4().hex[:12]}"
        )
        issues: list[ConfigIssue] = []
        plan_text = ""
        for number in range(1, rounds + 1):
            prompt = planner_prompt(goal, base.config.base_branch, number, rounds)
            if number > 1:
                prompt = _sent_back(prompt, plan_text, issues)
                say(
                    f"plan sent back to {adapter} with {len(issues)} problem(s); "
                    f"round {number} of {rounds}"
                )
            else:
                say(f"{adapter} is planning the goal (round 1 of {rounds})")
            plan_text, issues, found = await _checked_plan(
                base, await asking.ask(prompt, number), plugins, environ
            )
            if found is not None:
                return GoalPlan(
                    goal=goal.strip(),
                    planner=adapter,
                    rounds=number,
                    tasks_yaml=plan_text,
                    config_text=base.text + plan_text,
                    config=found.config,
                    replaced=base.replaced,
                    warnings=found.warnings,
                )
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, scratch, True)
    raise PlanRefused(
        f"no valid task list from {adapter} in {rounds} round(s); nothing was changed. "
        "The last plan's problems:",
        issues,
    )


@dataclass(frozen=True)
class _Valid:
    config: RunConfig
    warnings: list[ConfigIssue]


async def _checked_plan(
    base: _Base, texts: list[str], plugins: PluginHost, environ: Mapping[str, str]
) -> tuple[str, list[ConfigIssue], _Valid | None]:
    """The plan as read from what the planner said, its problems, and the run config it makes
    when it has none."""
    block = extract_task_list(texts)
    if block is None:
        return "", [_plan_issue(f"no task list between the lines {BEGIN} and {END}")], None
    plan_text, issues = _normalised(block)
    if issues:
        return plan_text, issues, None
    found = await validate_config_text(
        base.text + plan_text,
        source=base.source,
        base_dir=base.base_dir,
        registry=plugins.registry,
        environ=environ,
    )
    offset = base.text.count("\n")
    issues = [_in_plan(issue, offset) for issue in found.errors]
    if issues or found.config is None:
        return plan_text, issues, None
    return plan_text, [], _Valid(found.config, found.warnings)


def _in_plan(issue: ConfigIssue, offset: int) -> ConfigIssue:
    """An issue of the merged config at its line of the plan (the config's own stay)."""
    if issue.line is not None and issue.line > offset:
        return ConfigIssue(PLAN_SOURCE, issue.line - offset, issue.field, issue.message)
    return issue


_SLUG = re.compile(r"[^a-z0-9]+")


def save_planned_config(path: Path, plan: GoalPlan) -> Path:
    """The planned config written beside the run config ``path`` (so its relative paths mean
    the same), as ``<stem>.goal-<words of the goal>.yaml``, never over another file; the file
    ``council status`` and ``council resume`` are given afterwards."""
    words = _SLUG.sub("-", plan.goal.splitlines()[0].lower()).strip("-")[:40].strip("-") or "plan"
    header = "".join(
        f"# {line}\n"
        for line in (
            f"Planned by {plan.planner} from the goal below, as `council run -g` ran it",
            f"(from {path.name}: its tasks: replaced by the plan's).",
            *(f"  {line}" for line in plan.goal.splitlines()),
        )
    )
    data = (header + plan.config_text).encode()
    directory = path.absolute().parent
    for number in range(1, 1000):
        suffix = "" if number == 1 else f"-{number}"
        target = directory / f"{path.stem}.goal-{words}{suffix}.yaml"
        if target.is_symlink() or target.exists():
            if not target.is_symlink() and target.read_bytes() == data:
                return path.parent / target.name
            continue
        write_atomic(directory, target, data)
        return path.parent / target.name
    raise UsageError(f"too many planned configs for {path} in {directory}: remove old ones")
