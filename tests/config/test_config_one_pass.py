"""One pass over a run config (issue 48): a refused value (a wrong type, an unknown key, a bad
list item) hides none of the problems between fields, adapter options or references; every
place a phase is named must name a workflow phase, with "did you mean"; a value outside a
closed set says which was meant; a phase one edit from a built-in one it lacks is a warning."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from adapters.scripted import Scripted
from orchestrator.config.checks.phase_names import COUNCIL_PHASE, _one_edit
from orchestrator.config.load import CheckedConfig, check_config
from orchestrator.workflow import best_of

MODELS: dict[str, type[BaseModel]] = {"scripted": Scripted.Config}  # the real options
EXTRA = "; or a built-in one, scout, plan, build, review; or 'council', a council task's comparison"


def checked(tmp_path: Path, text: str, **kwargs: object) -> CheckedConfig:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return check_config(path, **kwargs)  # type: ignore[arg-type]


def lines(found: CheckedConfig, tmp_path: Path) -> list[str]:
    return [str(issue).removeprefix(f"{tmp_path}/") for issue in found.issues]


def test_refused_values_hide_no_reference(tmp_path: Path) -> None:
    found = checked(
        tmp_path,
        "default_adapter: claud\n"  # 1
        "adapters:\n"  # 2
        "  claude: {type: scripted}\n"  # 3
        "workflow:\n"  # 4
        "  phases:\n"  # 5
        "    - {name: plan, adapter: codx}\n"  # 6
        "    - {name: build}\n"  # 7
        "capacity: {max_sessions: 3}\n"  # 8
        "tasks:\n"  # 9
        "  - {id: a, prompt: x, depends_on: [3, ghost, c]}\n"  # 10
        "  - not a task\n"  # 11
        "  - {id: c, prompt: y, priority: high, depends_on: [zz]}\n",  # 12
    )
    assert found.config is None
    assert lines(found, tmp_path) == [
        "run.yaml:1: default_adapter: unknown adapter 'claud' (did you mean 'claude'?) "
        "(defined: claude)",
        "run.yaml:6: workflow.phases[0].adapter: unknown adapter 'codx' (defined: claude)",
        "run.yaml:8: capacity.max_sessions: unknown key (did you mean 'sessions'? allowed: "
        "sessions, per_adapter, per_phase)",
        "run.yaml:10: tasks[0].depends_on[0]: must be a string (got 3)",
        # The item set aside moves no other: ghost is still [1], the task after [1] is [2].
        "run.yaml:10: tasks[0].depends_on[1]: unknown task 'ghost'",
        "run.yaml:11: tasks[1]: must be a mapping (got 'not a task')",
        "run.yaml:12: tasks[2].priority: must be a whole number (got 'high')",
        "run.yaml:12: tasks[2].depends_on[0]: unknown task 'zz'",
    ]


def test_options_and_references_in_the_same_pass(tmp_path: Path) -> None:
    found = checked(
        tmp_path,
        "adapters:\n"  # 1
        "  s:\n"  # 2
        "    type: scripted\n"  # 3
        "    env: {TOKEN: '${NO_SUCH_VARIABLE}'}\n"  # 4
        "    options: {persona: carefull, delay: -1}\n"  # 5
        "tasks:\n"  # 6
        "  - {id: a, prompt: x, priority: high}\n",  # 7
        options_models=MODELS,
        environ={},
    )
    assert [(issue.line, issue.field) for issue in found.issues] == [
        (4, "adapters.s.env.TOKEN"),
        (5, "adapters.s.options.persona"),
        (5, "adapters.s.options.delay"),
        (7, "tasks[0].priority"),
    ]
    persona = found.issues[1].message
    assert persona == (
        "must be one of 'default', 'careful', 'quick' or 'reviewer' (got 'carefull') "
        "(did you mean 'careful'?) (adapter type 'scripted')"
    )


def test_a_closed_set_of_the_config_says_which_was_meant(tmp_path: Path) -> None:
    found = checked(
        tmp_path,
        "adapters:\n  s: {type: scripted, credentials: isolatd}\ntasks: [{id: a, prompt: x}]\n",
    )
    assert lines(found, tmp_path) == [
        "run.yaml:2: adapters.s.credentials: must be one of 'shared' or 'isolated' "
        "(got 'isolatd') (did you mean 'isolated'?)"
    ]


def test_every_place_a_phase_is_named(tmp_path: Path) -> None:
    found = checked(
        tmp_path,
        "workflow:\n"  # 1
        "  phases: [{name: plan}, {name: build}]\n"  # 2
        "capacity:\n"  # 3
        "  per_phase: {buld: 1}\n"  # 4
        "tasks:\n"  # 5
        "  - id: a\n"  # 6
        "    prompt: x\n"  # 7
        "    phases: [plan, biuld]\n"  # 8
        "    metadata:\n"  # 9
        "      phase_instructions:\n"  # 10
        "        build: WRITE a\n"  # 11
        "        deploy: SAY no\n"  # 12
        "        council: SAY the first\n"  # 13: a council task's comparison
        "        review: SAY fine\n"  # 14: a built-in phase, not this workflow's: allowed
        "      candidates:\n"  # 15
        "        alpha:\n"  # 16
        "          phase_instructions: {plna: SAY hi}\n",  # 17
    )
    assert found.config is not None  # the file is typed right: only names are wrong
    known = "(phases: build, plan)"
    instructions = f"(phases: build, plan{EXTRA})"
    assert lines(found, tmp_path) == [
        "run.yaml:4: capacity.per_phase.buld: unknown phase 'buld' (did you mean 'build'?) "
        + known,
        f"run.yaml:8: tasks[0].phases[1]: unknown phase 'biuld' (did you mean 'build'?) {known}",
        "run.yaml:12: tasks[0].metadata.phase_instructions.deploy: unknown phase 'deploy' "
        + instructions,
        "run.yaml:17: tasks[0].metadata.candidates.alpha.phase_instructions.plna: unknown phase "
        f"'plna' (did you mean 'plan'?) {instructions}",
    ]
    assert found.warnings == []


def test_unknown_phase_alongside_a_refused_value(tmp_path: Path) -> None:
    found = checked(
        tmp_path,
        "capacity: {sessions: none}\ntasks:\n  - {id: a, prompt: x, phases: [biuld]}\n",
    )
    assert [(issue.line, issue.field) for issue in found.issues] == [
        (1, "capacity.sessions"),
        (3, "tasks[0].phases[0]"),
    ]
    assert "(did you mean 'build'?)" in found.issues[1].message


def test_a_misspelt_built_in_phase_is_a_warning(tmp_path: Path) -> None:
    found = checked(
        tmp_path,
        "workflow:\n  phases:\n    - name: plan\n    - name: biuld\n    - name: lint\n"
        "tasks: [{id: a, prompt: x}]\n",
    )
    assert found.issues == []
    assert [(w.line, w.field) for w in found.warnings] == [(4, "workflow.phases[1].name")]
    assert found.warnings[0].message.startswith(
        "phase 'biuld' is not a built-in phase (did you mean 'build'?): only a phase named "
        "'build' gets the build prompt, runs the verify commands and is sent back by review"
    )


@pytest.mark.parametrize(
    "phases",
    [
        ["build", "biuld"],  # the built-in one is there: biuld is meant as its own phase
        ["plan", "test", "deploy"],  # custom names, none one edit from a built-in one
        ["scout", "plan", "build", "review"],
    ],
)
def test_no_warning_for_free_phase_names(tmp_path: Path, phases: list[str]) -> None:
    listed = ", ".join(f"{{name: {name}}}" for name in phases)
    found = checked(tmp_path, f"workflow:\n  phases: [{listed}]\ntasks: [{{id: a, prompt: x}}]\n")
    assert (found.issues, found.warnings) == ([], [])


@pytest.mark.parametrize(
    ("word", "target", "near"),
    [
        ("biuld", "build", True),  # two neighbours swapped
        ("buid", "build", True),  # one removed
        ("builds", "build", True),  # one added
        ("bujld", "build", True),  # one changed
        ("build", "build", False),
        ("bilud", "build", False),
        ("test", "scout", False),
        ("plant", "plan", True),
        ("pln", "plan", True),
        ("lpna", "plan", False),
    ],
)
def test_one_edit(word: str, target: str, near: bool) -> None:
    assert _one_edit(word, target) is near


def test_the_warning_comes_with_the_errors(tmp_path: Path) -> None:
    found = checked(
        tmp_path,
        "capacity: {sessions: none}\n"
        "workflow: {phases: [{name: plan}, {name: reveiw, timeout: never}]}\n"
        "tasks: [{id: a, prompt: x}]\n",
    )
    assert [(issue.line, issue.field) for issue in found.issues] == [
        (1, "capacity.sessions"),
        (2, "workflow.phases[1].timeout"),
    ]
    assert [(w.line, w.field) for w in found.warnings] == [(2, "workflow.phases[1].name")]
    assert "(did you mean 'review'?)" in found.warnings[0].message


def test_the_council_comparison_is_named_as_the_workflow_names_it() -> None:
    assert COUNCIL_PHASE == best_of.COUNCIL_PHASE


def test_stacked_pull_requests_need_landing_by_pull_request(tmp_path: Path) -> None:
    found = checked(
        tmp_path,
        "adapters: {cli: {type: scripted}}\n"  # 1
        "landing: {pulls: stacked}\n"  # 2
        "tasks:\n"  # 3
        "  - {id: a, prompt: x}\n"  # 4
        "  - {id: b, prompt: y, depends_on: [a], landing: {pulls: stacked}}\n"  # 5
        "  - {id: c, prompt: z, landing: {pulls: tower}}\n",  # 6
        options_models=MODELS,
    )
    assert found.config is None
    said = lines(found, tmp_path)
    why = "stacked needs landing.via: pull_request (a stack is made of pull requests)"
    assert f"run.yaml:2: landing.pulls: {why}" in said
    assert f"run.yaml:5: tasks[1].landing.pulls: {why}" in said
    assert any(line.startswith("run.yaml:6: tasks[2].landing.pulls:") for line in said), said


def test_a_stacked_run_by_pull_request_is_valid_and_says_which_task_is_stacked(
    tmp_path: Path,
) -> None:
    found = checked(
        tmp_path,
        "adapters: {cli: {type: scripted}}\n"
        "landing: {via: pull_request}\n"
        "tasks:\n"
        "  - {id: a, prompt: x}\n"
        "  - {id: b, prompt: y, depends_on: [a], landing: {pulls: stacked}}\n",
        options_models=MODELS,
    )
    assert found.config is not None, lines(found, tmp_path)
    stacked = {t.id: found.config.stacked(t) for t in found.config.tasks}
    assert stacked == {"a": False, "b": True}
