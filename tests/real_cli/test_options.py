"""Issue 29: the typed options reach each real CLI's request to the model. ``system_prompt``
on every CLI (a flag, a settings key, a context or instructions file, aider's --read: the
text must be in what the CLI sends); ``reasoning_effort`` on codex (the request's
``reasoning.effort``; before, the user's setting never reached it and codex sent "medium")."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.testing.live_scenarios import WRITE, run_scenario
from orchestrator.testing.live_targets import BUILTIN_TARGETS
from tests.support import real_clis

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


RUN_TOOL = "council_run_probe_tool"  # the run's own server: told apart from a user's
UNLISTED = {"codex": "council-fake-model"}  # codex lists MCP tools only for a model outside
# its catalog (a catalog model reaches them through its tool_search tool)


@pytest.mark.parametrize("cli", [_cli(name) for name in real_clis.CLIS if name != "aider"])
def test_the_runs_mcp_servers_reach_every_cli_that_takes_them(
    cli: str, tmp_path: Path, real_cli_binary: Path
) -> None:
    probe = [sys.executable, "-m", "orchestrator.testing.mcp_probe", RUN_TOOL]
    servers = {"probe": {"command": probe[0], "args": probe[1:]}}
    scenario = dataclasses.replace(WRITE, config={"mcp_servers": servers})
    target = BUILTIN_TARGETS[cli]
    if cli in UNLISTED:
        target = dataclasses.replace(target, model=UNLISTED[cli])

    outcome = run_scenario(cli, scenario, tmp_path, target=target, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    bodies = [json.dumps(r.body) for r in outcome.requests if not r.side]
    assert any(RUN_TOOL in body for body in bodies), [r.tools for r in outcome.requests]


@pytest.mark.real_cli("aider")
def test_aider_runs_without_the_runs_mcp_servers_and_says_so(
    tmp_path: Path, real_cli_binary: Path
) -> None:
    servers = {"probe": {"command": sys.executable, "args": ["-m", "nothing"]}}
    scenario = dataclasses.replace(WRITE, config={"mcp_servers": servers})

    outcome = run_scenario("aider", scenario, tmp_path, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    assert "takes no MCP servers: the run's mcp_servers (probe) are not given to it" in (
        outcome.output
    )
