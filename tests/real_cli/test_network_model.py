"""Each real CLI under ``sandbox.network: model`` (no route out but the orchestrator's
allow-list proxy, its model's loopback port relayed in) still writes its file through
``council run``: its model's endpoint, on the machine's loopback, is reached through the relay
(or through the proxy, for a CLI that sends it there despite ``NO_PROXY``), and the log says
the network it had."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from orchestrator.testing.live_scenarios import WRITE, run_scenario
from tests.support import real_clis

pytestmark = pytest.mark.sandbox


def _cli(name: str) -> object:
    return pytest.param(name, marks=[pytest.mark.real_cli(name)], id=name)


@pytest.mark.parametrize("cli", [_cli(name) for name in real_clis.CLIS])
def test_a_cli_on_network_model_reaches_its_model(
    cli: str, tmp_path: Path, real_cli_binary: Path
) -> None:
    scenario = dataclasses.replace(
        WRITE, config={**WRITE.config, "sandbox": {"mode": "bubblewrap", "network": "model"}}
    )
    outcome = run_scenario(cli, scenario, tmp_path, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    conversation = [r.answer for r in outcome.requests if not r.side]
    assert conversation and conversation[-1] == "text", conversation
    logs = list((tmp_path / "repo" / ".council" / "logs").glob("*.log"))
    firsts = [log.read_text(errors="replace").split("\n")[0] for log in logs]
    cli_logs = [first for first in firsts if " sandbox: " in first]
    assert cli_logs and all("network: model (through a proxy to" in h for h in cli_logs), firsts
    assert all("that port alone" in h for h in cli_logs), cli_logs
