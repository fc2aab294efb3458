"""Each real CLI writes a new file and edits an existing one through ``council run``, and the
change lands on the base branch: the adapter's command line, the CLI's own tool calls against
the fake model, the orchestrator's commit, verify-free merge, all real; and, where the machine
has one, inside the sandbox (bubblewrap), as every run there is by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.sandbox import network
from orchestrator.testing.live_scenarios import EDIT, WRITE, Scenario, run_scenario
from tests.support import real_clis, sandbox_tier


def _cli(name: str) -> object:
    return pytest.param(name, marks=[pytest.mark.real_cli(name)], id=name)


@pytest.mark.parametrize("scenario", [WRITE, EDIT], ids=lambda s: s.name)
@pytest.mark.parametrize("cli", [_cli(name) for name in real_clis.CLIS])
def test_the_change_lands_on_the_base_branch(
    cli: str, scenario: Scenario, tmp_path: Path, real_cli_binary: Path
) -> None:
    outcome = run_scenario(cli, scenario, tmp_path, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    assert outcome.exit_code == 0
    # The CLI really talked to the model: the script's tool calls, then its final text.
    conversation = [r.answer for r in outcome.requests if not r.side]
    assert conversation[-1] == "text", conversation
    if cli != "aider":  # aider has no tools: its edits are blocks in the reply text
        assert any(answer.startswith("tool ") for answer in conversation), conversation
    # Issue 11, defect 1: with the user's identity in its environment no CLI writes one of
    # its own into the shared config (aider wrote `user.name=Your Name`, blocking the merge).
    assert "[user]" not in (tmp_path / "repo" / ".git" / "config").read_text()
    # Issue 27: where the machine has a sandbox (CI requires one) every CLI ran inside it.
    if sandbox_tier.required() or sandbox_tier.available():
        logs = list((tmp_path / "repo" / ".council" / "logs").glob("*.log"))
        headers = [log.read_text(errors="replace")[:2000] for log in logs]
        cli_logs = [h for h in headers if "# argv:" in h and "setup-" not in h]
        assert cli_logs and all(" sandbox: bubblewrap" in h.split("\n")[0] for h in cli_logs), (
            headers
        )
        # Issue 44: on a network of its own, the fake model's loopback port relayed in alone.
        if network.problem() is None:
            firsts = [h.split("\n")[0] for h in cli_logs]
            assert all("network: its own" in h and "that port alone" in h for h in firsts), firsts
