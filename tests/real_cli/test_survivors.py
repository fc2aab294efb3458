"""Issue 29: no CLI leaves processes running after it exits, so no run says "left processes
running ... survivors stopped". Measured before: every opencode run did (its undo snapshots
ran git after it exited), visible without the sandbox, whose pid namespace ends with the CLI.
Run without the sandbox, where a survivor would outlive the CLI."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from orchestrator.testing.live_scenarios import WRITE, run_scenario
from tests.support import real_clis


def _cli(name: str) -> object:
    return pytest.param(name, marks=[pytest.mark.real_cli(name)], id=name)


@pytest.mark.parametrize("cli", [_cli(name) for name in real_clis.CLIS])
def test_the_cli_leaves_nothing_running(cli: str, tmp_path: Path, real_cli_binary: Path) -> None:
    scenario = dataclasses.replace(WRITE, config={"sandbox": "none"})

    outcome = run_scenario(cli, scenario, tmp_path, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    said = [line for line in outcome.output.splitlines() if "left processes" in line]
    assert not said, said
    assert not list((tmp_path / "repo" / ".council" / "homes").rglob("snapshot"))
