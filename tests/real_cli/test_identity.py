"""aider with a user who has no git identity anywhere (issue 11, defect 1): before, aider wrote
`user.name=Your Name` into the shared `.git/config` and the tamper guard blocked the merge; now
it sees CLI Council's identity through its environment, writes none, and its change lands."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.testing.live_scenarios import WRITE, run_scenario


@pytest.mark.real_cli("aider")
def test_aider_lands_for_a_user_without_a_git_identity(
    tmp_path: Path, real_cli_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "user-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")

    outcome = run_scenario("aider", WRITE, tmp_path, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    assert "[user]" not in (tmp_path / "repo" / ".git" / "config").read_text()
