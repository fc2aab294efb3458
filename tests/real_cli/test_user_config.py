"""Issue 29: each CLI as its user configured it. A setting in the user's own files (a fake user
HOME) reaches the real CLI's request to the fake model through the real ``council run`` with the
sandbox on, and the CLI's log names the file merged; ``user_config: ignore`` keeps it out; a
project-level file in the repository is honoured too.

The MCP server each CLI is configured to start is ``orchestrator.testing.mcp_probe`` (the
official ``mcp`` SDK, one tool named ``council_probe_tool``): its tool in the tools list the CLI
sent proves the CLI read the setting and started the server inside the sandbox.

The merge and the carrying themselves, without a real CLI:
``tests/runner/test_user_config_carry.py``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.testing.live_scenarios import WRITE, ScenarioOutcome, run_scenario
from orchestrator.testing.live_targets import BUILTIN_TARGETS
from orchestrator.testing.mcp_probe import TOOL

PROBE = [sys.executable, "-m", "orchestrator.testing.mcp_probe"]
PROJECT_TOOL = "council_project_probe_tool"  # the project-level server's tool: told apart
PROJECT_PROBE = [*PROBE, PROJECT_TOOL]
MAX_TOKENS = 777  # aider's model settings: a value no default has
CODEX_UNLISTED_MODEL = "council-fake-model"  # not in codex's model catalog
CONVENTIONS = "CONVENTIONS.md"  # in the repository, named by the user's ~/.aider.conf.yml
READ_MARK = "council-aider-read-mark-2b9c"
MARK = "council-project-instructions-mark-5d1e"  # codex's AGENTS.md, in the system text


def _json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _stdio(command: list[str]) -> dict[str, Any]:
    return {"command": command[0], "args": command[1:]}


# cli -> (the user's file below HOME, what it holds), each defining the probe MCP server
def _claude(home: Path) -> str:
    _json(home / ".claude.json", {"mcpServers": {"probe": {"type": "stdio", **_stdio(PROBE)}}})
    return ".claude.json"


def _codex(home: Path) -> str:
    path = home / ".codex" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    args = ", ".join(json.dumps(arg) for arg in PROBE[1:])
    path.write_text(
        'model_reasoning_effort = "high"\n\n'
        "[mcp_servers.probe]\n"
        f"command = {json.dumps(PROBE[0])}\n"
        f"args = [{args}]\n"
        "required = true\n"  # codex waits for it before its first request only so
        "startup_timeout_sec = 60\n"
    )
    return ".codex/config.toml"


def _gemini(home: Path) -> str:
    _json(home / ".gemini" / "settings.json", {"mcpServers": {"probe": _stdio(PROBE)}})
    return ".gemini/settings.json"


def _qwen(home: Path) -> str:
    _json(home / ".qwen" / "settings.json", {"mcpServers": {"probe": _stdio(PROBE)}})
    return ".qwen/settings.json"


def _opencode(home: Path) -> str:
    path = home / ".config" / "opencode" / "opencode.json"
    _json(path, {"mcp": {"probe": {"type": "local", "command": PROBE, "timeout": 60_000}}})
    return ".config/opencode/opencode.json"


def _aider(home: Path) -> str:
    # Model settings (linked in) with a max_tokens no default has; and the settings file
    # (merged) naming a read-only file whose text reaches the request.
    (home / ".aider.model.settings.yml").write_text(
        f"- name: {BUILTIN_TARGETS['aider'].model}\n  extra_params:\n    max_tokens: {MAX_TOKENS}\n"
    )
    (home / ".aider.conf.yml").write_text(f"read:\n  - {CONVENTIONS}\n")
    return ".aider.conf.yml"


USER_FILES: dict[str, Callable[[Path], str]] = {
    "claude": _claude,
    "codex": _codex,
    "gemini": _gemini,
    "qwen": _qwen,
    "opencode": _opencode,
    "aider": _aider,
}

# cli -> the project-level files seeded into the repository, each defining the other probe
PROJECT_FILES: dict[str, dict[str, str]] = {
    "claude": {".mcp.json": json.dumps({"mcpServers": {"project": _stdio(PROJECT_PROBE)}})},
    "gemini": {
        ".gemini/settings.json": json.dumps({"mcpServers": {"project": _stdio(PROJECT_PROBE)}})
    },
    "qwen": {".qwen/settings.json": json.dumps({"mcpServers": {"project": _stdio(PROJECT_PROBE)}})},
    "opencode": {
        "opencode.json": json.dumps(
            {"mcp": {"project": {"type": "local", "command": PROJECT_PROBE, "timeout": 60_000}}}
        )
    },
    "aider": {
        ".aider.model.settings.yml": f"- name: {BUILTIN_TARGETS['aider'].model}\n"
        f"  extra_params:\n    max_tokens: {MAX_TOKENS}\n"
    },
    "codex": {"AGENTS.md": f"# Project instructions\n\nAlways mention {MARK}.\n"},
}


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "user-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME", "QWEN_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


def _cli(name: str) -> Any:
    return pytest.param(name, marks=[pytest.mark.real_cli(name)], id=name)


def _bodies(outcome: ScenarioOutcome) -> list[str]:
    return [json.dumps(r.body) for r in outcome.requests if r.body is not None]


def _said(outcome: ScenarioOutcome) -> str:
    return f"{outcome.reason}\n--- council output ---\n{outcome.output}"


def _carried(repo: Path) -> list[str]:
    """The header lines of the CLI logs saying what was carried of the user's configuration."""
    logs = sorted((repo / ".council" / "logs").glob("*.log"))
    lines = [line for log in logs for line in log.read_text(errors="replace").splitlines()]
    return [line for line in lines if line.startswith("# user config:")]


def _left_behind(repo: Path, text: str) -> list[Path]:
    """Regular files under ``.council/`` (the CLI logs aside) holding ``text``."""
    council = repo / ".council"
    return [
        path
        for path in council.rglob("*")
        if path.is_file()
        and not path.is_symlink()
        and not path.is_relative_to(council / "logs")
        and text.encode() in path.read_bytes()
    ]


def _max_tokens(outcome: ScenarioOutcome) -> list[Any]:
    return [
        r.body.get("max_tokens")
        for r in outcome.requests
        if r.protocol == "chat" and isinstance(r.body, dict)
    ]


def _efforts(outcome: ScenarioOutcome) -> list[Any]:
    return [
        (r.body.get("reasoning") or {}).get("effort")
        for r in outcome.requests
        if r.protocol == "responses" and isinstance(r.body, dict) and not r.side
    ]


@pytest.mark.parametrize("cli", [_cli(name) for name in USER_FILES])
def test_a_user_level_setting_reaches_the_cli(
    cli: str, tmp_path: Path, real_cli_binary: Path, user_home: Path
) -> None:
    where = USER_FILES[cli](user_home)
    target = BUILTIN_TARGETS[cli]
    scenario = WRITE
    if cli == "aider":
        seed = {CONVENTIONS: f"# Conventions\n\nSay {READ_MARK}.\n"}
        scenario = dataclasses.replace(WRITE, seed_files=seed)
    if cli == "codex":
        # Codex 0.169 offers a catalog model (gpt-5.5, `supports_search_tool`) the user's MCP
        # tools only through its `tool_search` tool (deferred: not in the tools list); a model
        # outside the catalog gets them in the list, as the `mcp__probe` namespace.
        target = dataclasses.replace(target, model=CODEX_UNLISTED_MODEL)

    outcome = run_scenario(cli, scenario, tmp_path, target=target, executable=real_cli_binary)

    assert outcome.passed, _said(outcome)
    if cli == "aider":
        assert MAX_TOKENS in _max_tokens(outcome), _max_tokens(outcome)
        assert any(READ_MARK in body for body in _bodies(outcome))
    else:
        assert any(TOOL in body for body in _bodies(outcome)), [r.tools for r in outcome.requests]
    if cli == "codex":
        assert _efforts(outcome) and set(_efforts(outcome)) == {"high"}, _efforts(outcome)
    said = _carried(tmp_path / "repo")
    assert any(f" ~/{where} merged into ~/" in line for line in said), said
    if cli == "aider":  # and the model settings linked in
        assert any(" ~/.aider.model.settings.yml linked" in line for line in said), said
    else:  # nothing of the user's file stays once the CLI ended (claude's backups included)
        assert _left_behind(tmp_path / "repo", PROBE[-1]) == []


@pytest.mark.real_cli("codex")
def test_user_config_ignore_keeps_the_users_settings_out(
    tmp_path: Path, real_cli_binary: Path, user_home: Path
) -> None:
    _codex(user_home)
    target = dataclasses.replace(
        BUILTIN_TARGETS["codex"],
        model=CODEX_UNLISTED_MODEL,  # would list the user's MCP tools (see above)
        settings={"user_config": "ignore"},
    )

    outcome = run_scenario("codex", WRITE, tmp_path, target=target, executable=real_cli_binary)

    assert outcome.passed, _said(outcome)
    efforts = _efforts(outcome)
    assert efforts and "high" not in efforts, efforts
    assert not any(TOOL in body for body in _bodies(outcome))
    said = _carried(tmp_path / "repo")
    assert said == ["# user config: ignored (user_config: ignore)"], said


@pytest.mark.parametrize("cli", [_cli(name) for name in PROJECT_FILES])
def test_a_project_level_file_in_the_repository_is_honoured(
    cli: str, tmp_path: Path, real_cli_binary: Path, user_home: Path
) -> None:
    scenario = dataclasses.replace(WRITE, seed_files=PROJECT_FILES[cli])

    outcome = run_scenario(cli, scenario, tmp_path, executable=real_cli_binary)

    assert outcome.passed, _said(outcome)
    if cli == "aider":
        assert MAX_TOKENS in _max_tokens(outcome), _max_tokens(outcome)
    elif cli == "codex":
        assert any(MARK in body for body in _bodies(outcome))
    else:
        assert any(PROJECT_TOOL in body for body in _bodies(outcome)), [
            r.tools for r in outcome.requests
        ]


def _codex_project_config() -> str:
    args = ", ".join(json.dumps(arg) for arg in PROJECT_PROBE[1:])
    return (
        'model_reasoning_effort = "minimal"\n\n'
        "[mcp_servers.project]\n"
        f"command = {json.dumps(PROJECT_PROBE[0])}\n"
        f"args = [{args}]\n"
        "required = true\n"  # codex waits for it before its first request only so
        "startup_timeout_sec = 60\n"
    )


@pytest.mark.real_cli("codex")
@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
def test_codex_reads_the_projects_config_toml_only_where_the_user_trusts_the_checkout(
    trusted: bool, tmp_path: Path, real_cli_binary: Path, user_home: Path
) -> None:
    # Codex reads a project's .codex/config.toml only for a trusted project. The session's
    # worktree counts as the user's checkout (codex resolves a worktree to its repository), so
    # the trust the user gave their checkout in ~/.codex/config.toml, carried in, holds.
    if trusted:
        config = user_home / ".codex" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(
            f'[projects.{json.dumps(str(tmp_path / "repo"))}]\ntrust_level = "trusted"\n'
        )
    scenario = dataclasses.replace(
        WRITE, seed_files={".codex/config.toml": _codex_project_config()}
    )
    target = dataclasses.replace(BUILTIN_TARGETS["codex"], model=CODEX_UNLISTED_MODEL)

    outcome = run_scenario("codex", scenario, tmp_path, target=target, executable=real_cli_binary)

    assert outcome.passed, _said(outcome)
    listed = any(PROJECT_TOOL in body for body in _bodies(outcome))
    efforts = _efforts(outcome)
    assert efforts, outcome.requests
    if trusted:
        assert listed and set(efforts) == {"minimal"}, efforts
    else:
        assert not listed and "minimal" not in efforts, efforts


@pytest.mark.real_cli("claude")
@pytest.mark.parametrize("level", ["user", "project"])
def test_claude_settings_json_can_turn_off_a_project_mcp_server(
    level: str, tmp_path: Path, real_cli_binary: Path, user_home: Path
) -> None:
    # Headless claude starts the servers of a project's .mcp.json with no approval (the test
    # above); a settings.json, the user's own (merged) or the project's, can refuse one.
    refuse = json.dumps({"disabledMcpjsonServers": ["project"]})
    seed = dict(PROJECT_FILES["claude"])
    if level == "user":
        _json(user_home / ".claude" / "settings.json", json.loads(refuse))
    else:
        seed[".claude/settings.json"] = refuse
    scenario = dataclasses.replace(WRITE, seed_files=seed)

    outcome = run_scenario("claude", scenario, tmp_path, executable=real_cli_binary)

    assert outcome.passed, _said(outcome)
    asked = [r for r in outcome.requests if r.protocol == "anthropic" and not r.side]
    assert asked and not any(PROJECT_TOOL in json.dumps(r.body) for r in asked)
    if level == "user":
        said = _carried(tmp_path / "repo")
        assert any(" ~/.claude/settings.json merged into ~/" in line for line in said), said


@pytest.mark.real_cli("claude")
@pytest.mark.parametrize("readable", [False, True], ids=["hidden", "sandbox-read"])
def test_an_mcp_server_installed_under_the_users_home_needs_sandbox_read(
    readable: bool, tmp_path: Path, real_cli_binary: Path, user_home: Path
) -> None:
    # The sandbox hides the user's HOME: a server whose program lives there (~/.local/bin,
    # pipx, uv tools) cannot start, and the CLI goes on without it. `sandbox: {read: [...]}`
    # shows that directory to the CLI, read-only.
    program = user_home / ".local" / "bin" / "council-probe"
    program.parent.mkdir(parents=True)
    program.write_text(f'#!/bin/sh\nexec {" ".join(PROBE)} "$@"\n')
    program.chmod(0o755)
    _json(user_home / ".claude.json", {"mcpServers": {"probe": {"command": str(program)}}})
    settings = {"sandbox": {"read": [str(program.parent)]}} if readable else {}
    target = dataclasses.replace(BUILTIN_TARGETS["claude"], settings=settings)

    outcome = run_scenario("claude", WRITE, tmp_path, target=target, executable=real_cli_binary)

    assert outcome.passed, _said(outcome)
    asked = [r for r in outcome.requests if r.protocol == "anthropic" and not r.side]
    assert asked and any(TOOL in json.dumps(r.body) for r in asked) is readable


# cli -> the user's instructions file below HOME: linked in, read-only under the sandbox
INSTRUCTIONS = {
    "claude": ".claude/CLAUDE.md",
    "codex": ".codex/AGENTS.md",
    "gemini": ".gemini/GEMINI.md",
    "qwen": ".qwen/QWEN.md",
    "opencode": ".config/opencode/AGENTS.md",
}
USER_MARK = "council-user-instructions-mark-8c4f"


@pytest.mark.parametrize("cli", [_cli(name) for name in INSTRUCTIONS])
def test_the_users_instructions_file_is_linked_in_and_read(
    cli: str, tmp_path: Path, real_cli_binary: Path, user_home: Path
) -> None:
    path = user_home / INSTRUCTIONS[cli]
    path.parent.mkdir(parents=True)
    path.write_text(f"# My instructions\n\nAlways mention {USER_MARK}.\n")

    outcome = run_scenario(cli, WRITE, tmp_path, executable=real_cli_binary)

    assert outcome.passed, _said(outcome)
    assert any(USER_MARK in body for body in _bodies(outcome)), _bodies(outcome)[:1]
    said = _carried(tmp_path / "repo")
    assert any(f" ~/{INSTRUCTIONS[cli]} linked" in line for line in said), said


@pytest.mark.real_cli("opencode")
def test_a_projects_opencode_json_cannot_loosen_the_runs_permissions(
    tmp_path: Path, real_cli_binary: Path, user_home: Path
) -> None:
    # opencode lays a repository's opencode.json over the OPENCODE_CONFIG file: its "allow"
    # let the write of a run with auto_approve: false through (before the fix).
    base = BUILTIN_TARGETS["opencode"]
    target = dataclasses.replace(
        base, options=lambda model: {**base.options(model), "auto_approve": False}
    )
    loosen = {"permission": {"edit": "allow", "bash": "allow"}}
    scenario = dataclasses.replace(
        WRITE,
        seed_files={"opencode.json": json.dumps(loosen)},
        expected_status="failed",
        expected_failure="permission_denied",
        expected_files={"hello.txt": None},
    )

    outcome = run_scenario(
        "opencode", scenario, tmp_path, target=target, executable=real_cli_binary
    )

    assert outcome.passed, _said(outcome)
    assert outcome.requests  # it asked the model, and the edit it was told to make was refused
