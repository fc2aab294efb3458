"""`council adapters check` says where each CLI would find its login: the user's credential
files and key variables by name, never their contents; `credentials: isolated` says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.plugins import host as plugins

SECRET = "sk-ant-oat01-never-printed-0123456789"


@pytest.fixture(autouse=True)
def claude_and_codex(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    host = plugins.load_plugins(
        builtins=("adapters.claude_code", "adapters.codex"), entry_points=(), environ={}
    )
    monkeypatch.setattr(plugins, "default_plugins", lambda: host)
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / ".credentials.json").write_text(json.dumps({"token": SECRET}))
    monkeypatch.setenv("HOME", str(home))
    for name in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    return home


def _check(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["adapters", "check", *args, "--json"])
    assert SECRET not in result.output
    return {report["name"]: report for report in json.loads(result.stdout)}


def test_the_login_files_and_key_names_are_reported() -> None:
    reports = _check()
    assert "account login: ~/.claude/.credentials.json" in reports["claude_code"]["login"]
    assert reports["codex"]["login"] == "OPENAI_API_KEY set"


def test_isolated_credentials_are_said_and_the_files_not_offered(tmp_path: Path) -> None:
    config = tmp_path / "council.yaml"
    config.write_text(
        f"repo: {tmp_path}\n"
        "adapters:\n"
        "  claude_code: {credentials: isolated}\n"
        "default_adapter: claude_code\n"
        "tasks: [{id: t1, prompt: hi}]\n"
    )
    login = _check("--config", str(config))["claude_code"]["login"]
    assert "isolated" in login and ".credentials.json" not in login


def test_no_login_at_all_is_said(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "nobody"))
    monkeypatch.delenv("OPENAI_API_KEY")
    assert _check()["codex"]["login"].startswith("no login found")


def test_codex_with_a_base_url_reports_the_login_its_run_uses(
    claude_and_codex: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # With base_url, codex sends the endpoint's key when the run has it, else its login.
    (claude_and_codex / ".codex").mkdir()
    (claude_and_codex / ".codex" / "auth.json").write_text(json.dumps({"token": SECRET}))
    config = tmp_path / "council.yaml"
    config.write_text(
        f"repo: {tmp_path}\n"
        "adapters:\n"
        "  codex: {options: {base_url: 'http://127.0.0.1:9/v1'}}\n"
        "default_adapter: codex\n"
        "tasks: [{id: t1, prompt: hi}]\n"
    )
    assert _check("--config", str(config))["codex"]["login"] == "OPENAI_API_KEY set"
    monkeypatch.delenv("OPENAI_API_KEY")
    login = _check("--config", str(config))["codex"]["login"]
    assert login == (
        "`codex login` (ChatGPT account or key) (requires_openai_auth): ~/.codex/auth.json"
    )
    # Without base_url, both are there for codex to choose from, as before.
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    assert _check()["codex"]["login"] == (
        "`codex login` (ChatGPT account or key): ~/.codex/auth.json; OPENAI_API_KEY set"
    )
