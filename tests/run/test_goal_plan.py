"""Goal mode below the command line (``orchestrator.run.goal``): what the planner is asked and
sent back, how its answer is read, and the config's own tasks set aside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from adapters.scripted import SCRIPT
from orchestrator.config.yaml_source import parse_yaml_mapping, without_top_level_key
from orchestrator.errors import ConfigError, PlanRefused
from orchestrator.plugins.host import PluginHost, default_plugins
from orchestrator.run import goal as goal_module
from orchestrator.run.goal import (
    BEGIN,
    END,
    extract_task_list,
    plan_from_goal,
    planner_prompt,
)
from tests.support.scheduler_helpers import new_repo

CONFIG = """\
repo: repo
adapters:
  planner: {type: scripted, options: {delay: 0}}
  builder: {type: scripted, options: {delay: 0}}
default_adapter: builder
workflow: {phases: [{name: plan, adapter: planner}, {name: build}]}
"""


def test_the_task_list_is_read_between_the_last_markers_fence_and_all() -> None:
    said = [
        f"an early draft\n{BEGIN}\ntasks: [draft]\n{END}",
        f"Here it is:\n{BEGIN}\n```yaml\ntasks:\n  - id: a\n```\n{END}\nthat is all",
    ]
    assert extract_task_list(said) == "tasks:\n  - id: a\n"
    assert extract_task_list(["no list here", f"{END} before {BEGIN}"]) is None
    # The final message has none: the latest message holding one counts.
    assert extract_task_list([f"{BEGIN}\ntasks: []\n{END}", "done"]) == "tasks: []\n"


def test_a_plan_holds_tasks_alone_and_no_commands() -> None:
    text, issues = goal_module._normalised(
        "tasks:\n  - id: a\n    prompt: x\n    verify: [[rm, -rf, /]]\nadapters: {x: {}}\n"
    )
    assert text == ""
    assert sorted(str(issue) for issue in issues) == [
        "plan:4: tasks[0].verify: a plan may not set verify (commands the run executes)",
        "plan:5: adapters: unknown key 'adapters': a plan holds tasks: alone",
    ]
    _, empty = goal_module._normalised("tasks: []\n")
    assert [str(issue) for issue in empty] == ["plan:1: tasks: must be a list of at least one task"]
    _, broken = goal_module._normalised("tasks: [a\n")
    assert broken and broken[0].file == "plan"
    # JSON is read the same way, and written back as YAML of our own.
    text, issues = goal_module._normalised('{"tasks": [{"id": "a", "prompt": "Do it\\nwell"}]}')
    assert issues == []
    assert text == "tasks:\n- id: a\n  prompt: |-\n    Do it\n    well\n"


def test_the_configs_own_tasks_are_cut_out_by_lines_comments_kept() -> None:
    text = "repo: r  # the repo\ntasks:\n  - id: a\n    prompt: x\n\n# after\nverify: []\n"
    kept = "repo: r  # the repo\n\n# after\nverify: []\n"
    assert without_top_level_key(text, "f", "tasks") == kept
    flow = "repo: r\ntasks: [{id: a, prompt: x}]\nverify: []\n"
    assert without_top_level_key(flow, "f", "tasks") == "repo: r\nverify: []\n"
    assert without_top_level_key("repo: r\n", "f", "tasks") == "repo: r\n"
    with pytest.raises(ConfigError, match="block style"):
        without_top_level_key("{repo: r, tasks: []}\n", "f", "tasks")
    parse_yaml_mapping(without_top_level_key(text, "f", "tasks"), "f")


def test_the_prompt_names_the_goal_the_markers_and_the_round() -> None:
    prompt = planner_prompt("Make it fast", "main", 2, 3)
    assert "--- goal ---\nMake it fast\n--- end of goal ---" in prompt
    assert f"\n{BEGIN}\ntasks:\n" in prompt and f"\n{END}\n" in prompt
    assert "Planning round: 2 of 3" in prompt
    assert "never verify or commands" in prompt


def _recording(prompts: list[str], adapters: list[str]) -> Any:
    real = goal_module.call_phase_cli

    async def call(config: Any, plugins: PluginHost, call: Any, **kwargs: Any) -> Any:
        prompts.append(call.prompt)
        adapters.append(call.adapter)
        return await real(config, plugins, call, **kwargs)

    return call


def test_an_invalid_plan_goes_back_with_its_problems_at_their_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    prompts: list[str] = []
    adapters: list[str] = []
    monkeypatch.setattr(goal_module, "call_phase_cli", _recording(prompts, adapters))
    said: list[str] = []

    plan = anyio.run(
        lambda: plan_from_goal(
            config,
            "Add a greeting\nPLAN invalid=1",
            default_plugins(),
            os.environ,
            progress=said.append,
        )
    )

    assert plan.rounds == 2 and plan.planner == "planner"
    assert adapters == ["planner", "planner"]  # the plan phase's adapter, not the default
    assert [task.id for task in plan.tasks] == ["add-a-greeting", "add-a-greeting-checklist"]
    assert "--- refused ---" not in prompts[0]
    back = prompts[1]
    assert "Planning round: 2 of 2" in back
    assert "   2  - id: First Step" in back  # the refused list, its lines numbered
    assert "- plan:2: tasks[0].id: id 'First Step' is not a safe id" in back
    assert said == [
        "planner is planning the goal (round 1 of 2)",
        "plan sent back to planner with 2 problem(s); round 2 of 2",
    ]
    # The run config of the plan: the file's settings, the plan's tasks.
    assert plan.config_text.startswith(CONFIG)
    assert plan.config.adapters.keys() == {"planner", "builder"}


def test_refused_after_the_last_round_with_the_last_plans_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    prompts: list[str] = []
    monkeypatch.setattr(goal_module, "call_phase_cli", _recording(prompts, []))

    with pytest.raises(PlanRefused) as refused:
        anyio.run(
            lambda: plan_from_goal(
                config,
                "Anything\nPLAN invalid=9",
                default_plugins(),
                os.environ,
                planner="builder",
                rounds=3,
            )
        )
    assert len(prompts) == 3
    assert str(refused.value).startswith("no valid task list from builder in 3 round(s)")
    assert [issue.file for issue in refused.value.issues] == ["plan", "plan"]  # both, one pass


def test_a_planner_that_fails_is_refused_at_once(tmp_path: Path) -> None:
    new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    with pytest.raises(PlanRefused, match="the planner planner did not finish"):
        anyio.run(
            lambda: plan_from_goal(config, "Anything\nAUTH_ERROR", default_plugins(), os.environ)
        )


def _scripted(prompt: str, home: Path) -> str:
    """The scripted CLI's final result text for ``prompt`` (a real process)."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", SCRIPT, "--delay", "0", "-p", prompt],
        capture_output=True,
        text=True,
        cwd=home,
        env={"HOME": str(home), "PATH": os.environ.get("PATH", "")},
        timeout=30,
        check=True,
    )
    results = [json.loads(line) for line in done.stdout.splitlines() if '"result"' in line]
    return str(results[-1]["result"])


def test_the_scripted_persona_answers_a_planning_request(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x\n")
    first = planner_prompt("Tidy the notes\nPLAN invalid=1", "main", 1, 2)
    block = extract_task_list([_scripted(first, tmp_path)])
    assert block is not None
    assert [task["id"] for task in json.loads(block)["tasks"]] == ["First Step"]

    second = planner_prompt("Tidy the notes\nPLAN invalid=1", "main", 2, 2)
    block = extract_task_list([_scripted(second, tmp_path)])
    assert block is not None
    tasks = json.loads(block)["tasks"]
    assert [task["id"] for task in tasks] == ["tidy-the-notes", "tidy-the-notes-checklist"]
    assert tasks[1]["depends_on"] == ["tidy-the-notes"]
    # No PLAN line at all: a prompt asking for a task list is a planning request.
    plain = extract_task_list([_scripted(planner_prompt("Tidy", "main", 1, 2), tmp_path)])
    assert plain is not None and '"id": "tidy"' in plain


# The planning CLI as a Python program (no braces: the command adapter reads them as
# placeholders): it tries to write into the repository and to
# see a file beside it, says what happened in its one task's prompt, and answers the plan.
_PROBING_PLANNER = """\
import json, pathlib, sys
repo, beside = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
try:
    (repo / "escaped.txt").write_text("x")
    wrote = "wrote"
except OSError:
    wrote = "refused"
seen = "seen" if beside.exists() else "hidden"
task = "tasks:\\n  - id: t1\\n    prompt: " + json.dumps(wrote + " " + seen)
print(json.dumps(dict(result="BEGIN COUNCIL TASKS\\n" + task + "\\nEND COUNCIL TASKS")))
"""


@pytest.mark.sandbox
def test_the_planner_runs_in_the_sandbox_like_every_cli(tmp_path: Path) -> None:
    """Confined as a session's CLI is: its copy of the base and its HOME writable, the
    repository read-only, what lies beside it (here under /tmp) out of sight."""
    repo = new_repo(tmp_path)
    beside = tmp_path / "beside.txt"
    beside.write_text("not the planner's\n")
    entry = {
        "type": "command",
        "options": {
            "binary": sys.executable,
            "args": ["-c", _PROBING_PLANNER, str(repo), str(beside), "{prompt}"],
            "output": "jsonl",
            "result_key": "result",
        },
    }
    config = tmp_path / "run.yaml"
    config.write_text(
        "repo: repo\nsandbox: bubblewrap\n"
        f"adapters:\n  planner: {json.dumps(entry)}\n  builder: {{type: scripted}}\n"
        "default_adapter: builder\n"
        "workflow: {phases: [{name: plan, adapter: planner}, {name: build}]}\n"
    )

    plan = anyio.run(lambda: plan_from_goal(config, "Probe", default_plugins(), os.environ))

    assert [task.prompt for task in plan.config.tasks] == ["refused hidden"]
    assert not (repo / "escaped.txt").exists()
