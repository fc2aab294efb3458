"""Issue 34, ``council mcp`` end to end: each real CLI that takes MCP servers is given the
council's own server by ``council run`` (the session's relay, started by the CLI inside its
sandbox, to the socket the orchestrator serves for the session). The fake model calls the
council's ``request_lock`` tool, and the tool's answer, which only the orchestrator can make
(the fencing token of a lock it granted the session), must be in the CLI's next request to
the model. aider takes no MCP servers: it keeps what its prompt says of the other sessions.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.testing.fake_model import CallTool, FinalText, WriteFile
from orchestrator.testing.live_scenarios import TASK_ID, Scenario, run_scenario
from orchestrator.testing.live_targets import BUILTIN_TARGETS
from tests.support import real_clis

UNLISTED = {"codex": "council-fake-model"}  # codex lists MCP tools only for a model outside
# its catalog (as in test_options.py)
GRANTED = "mcp-lock.txt: lock granted to you, fencing token"

SCENARIO = Scenario(
    name="council-mcp",
    script=(
        CallTool("request_lock", {"path": "mcp-lock.txt"}),
        WriteFile("hello.txt", "hello from the fake model\n"),
        FinalText("Took the lock through the council and created hello.txt."),
    ),
    prompt="Ask the council for the lock of mcp-lock.txt, then create hello.txt.",
    expected_files={"hello.txt": "hello from the fake model\n"},
    timeout=90.0,
)


def _cli(name: str) -> object:
    return pytest.param(name, marks=[pytest.mark.real_cli(name)], id=name)


def _mcp_calls(repo: Path) -> list[dict[str, Any]]:
    lines = (repo / ".council" / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if '"mcp.call"' in line]


@pytest.mark.parametrize("cli", [_cli(name) for name in real_clis.CLIS if name != "aider"])
def test_the_council_tool_answer_reaches_the_model(
    cli: str, tmp_path: Path, real_cli_binary: Path
) -> None:
    target = BUILTIN_TARGETS[cli]
    if cli in UNLISTED:
        target = dataclasses.replace(target, model=UNLISTED[cli])

    outcome = run_scenario(cli, SCENARIO, tmp_path, target=target, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    conversation = [json.dumps(r.body) for r in outcome.requests if not r.side]
    offered = [r.tools for r in outcome.requests if not r.side]
    assert any(GRANTED in body for body in conversation), offered[:1]
    calls = _mcp_calls(tmp_path / "repo")
    assert len(calls) == 1, calls
    data = calls[0].get("data", calls[0])
    assert data["tool"] == "request_lock" and data["outcome"] == "ok"
    assert data["task_id"] == TASK_ID and data["session"] and data["subject"] == "mcp-lock.txt"


@pytest.mark.real_cli("aider")
def test_aider_is_not_given_the_council_server(tmp_path: Path, real_cli_binary: Path) -> None:
    scenario = Scenario(
        name="council-mcp-aider",
        script=(WriteFile("hello.txt", "hi\n"), FinalText("Created hello.txt.")),
        prompt="Create hello.txt.",
        expected_files={"hello.txt": "hi\n"},
    )

    outcome = run_scenario("aider", scenario, tmp_path, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    assert not (tmp_path / "repo" / ".council" / "events.jsonl").read_text().count('"mcp.call"')
    assert "takes no MCP servers" not in outcome.output  # only the run's own servers are said
