"""Issue 29: the typed options reach each real CLI's request to the model. ``system_prompt``
on every CLI (a flag, a settings key, a context or instructions file, aider's --read: the
text must be in what the CLI sends); ``reasoning_effort`` on codex (the request's
``reasoning.effort``; before, the user's setting never reached it and codex sent "medium")."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import real_clis

from orchestrator.testing.live_scenarios import WRITE, run_scenario
from orchestrator.testing.live_targets import BUILTIN_TARGETS

MARK = "council-system-prompt-mark-5c1e"


def _cli(name: str) -> object:
    return pytest.param(name, marks=[pytest.mark.real_cli(name)], id=name)


def _with(cli: str, **options: Any) -> Any:
    base = BUILTIN_TARGETS[cli]
    return dataclasses.replace(base, options=lambda model: {**base.options(model), **options})


@pytest.mark.parametrize("cli", [_cli(name) for name in real_clis.CLIS])
def test_system_prompt_reaches_the_model(cli: str, tmp_path: Path, real_cli_binary: Path) -> None:
    target = _with(cli, system_prompt=f"Always keep this in mind: {MARK}.")

    outcome = run_scenario(cli, WRITE, tmp_path, target=target, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    bodies = [json.dumps(r.body) for r in outcome.requests if not r.side]
    assert any(MARK in body for body in bodies), bodies[:1]


@pytest.mark.real_cli("codex")
def test_codex_reasoning_effort_reaches_the_request(tmp_path: Path, real_cli_binary: Path) -> None:
    target = _with("codex", reasoning_effort="high")

    outcome = run_scenario("codex", WRITE, tmp_path, target=target, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    efforts = [
        (r.body or {}).get("reasoning", {}).get("effort")
        for r in outcome.requests
        if r.protocol == "responses" and not r.side
    ]
    assert efforts and set(efforts) == {"high"}, efforts
