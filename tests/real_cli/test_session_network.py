"""A real CLI in its session's network (issue 50): with a service declared and the sandbox's
open network, the CLI runs in its session's namespace, not one of its own, and still reaches its
model on the machine's loopback (relayed in there, that port alone); its change lands."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from orchestrator.sandbox import network
from orchestrator.testing.live_scenarios import WRITE, run_scenario
from tests.support import sandbox_tier

pytestmark = pytest.mark.sandbox

SERVED = dataclasses.replace(
    WRITE,
    name="write-beside-a-service",
    config={
        "sandbox": "bubblewrap",
        "services": {
            "web": {
                "command": [sys.executable, "-I", "-m", "http.server", "3000"],
                "port": 3000,
            }
        },
    },
)


@pytest.mark.parametrize(
    "cli",
    [pytest.param(n, marks=[pytest.mark.real_cli(n)], id=n) for n in ("claude", "codex")],
)
def test_a_real_cli_in_its_session_s_network_reaches_its_model(
    cli: str, tmp_path: Path, real_cli_binary: Path
) -> None:
    if not sandbox_tier.required() and not sandbox_tier.available():
        pytest.fail("the sandbox tier needs bubblewrap")
    if network.problem() is not None:
        pytest.fail(f"the machine gives no network namespace: {network.problem()}")
    outcome = run_scenario(cli, SERVED, tmp_path, executable=real_cli_binary)
    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    logs = list((tmp_path / "repo" / ".council" / "logs").glob("*.log"))
    firsts = [log.read_text(errors="replace").split("\n")[0] for log in logs]
    cli_logs = [h for h in firsts if " sandbox: bubblewrap" in h]
    assert cli_logs and all("in its session's network" in h for h in cli_logs), firsts
    assert all("that port alone" in h for h in cli_logs), firsts
