"""Issue 29: the typed options users set most (reasoning effort, system prompt additions,
extra directories) and the run's ``mcp_servers:``, each reaching every CLI in its own form:
a flag, or a key of the config file the run writes over the user's."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.aider import AiderAdapter
from adapters.claude_code import ClaudeCodeAdapter
from adapters.codex import CodexAdapter
from adapters.gemini import GeminiAdapter
from adapters.opencode import OpencodeAdapter
from adapters.qwen import QwenAdapter
from orchestrator.adapter import Adapter, AdapterRequest, CommandSpec, McpServer
from orchestrator.config.load import parse_config
from orchestrator.errors import AdapterError, ConfigError
from orchestrator.plugins import host as plugins
from orchestrator.run.preflight import warn_mcp_servers
from orchestrator.runner.config_merge import render

HOME = Path("/home/s1")
SERVERS = (
    McpServer(name="docs", command="docs-mcp", args=("--root", "/srv"), env={"TOKEN": "t-1"}),
    McpServer(name="tracker", url="https://mcp.example.com/mcp", headers={"X-Key": "k-1"}),
)


def _spec(adapter: Adapter, **request: Any) -> CommandSpec:
    return adapter.build_command(
        AdapterRequest(prompt="fix it", workdir=Path("/w"), home=HOME, **request)
    )


def _written(spec: CommandSpec, path: str) -> dict[str, Any]:
    config = spec.config_files[path]
    text = render(config)
    if config.format == "toml":
        return tomllib.loads(text)
    if config.format == "yaml":
        loaded: dict[str, Any] = yaml.safe_load(text)
        return loaded
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def test_claude_takes_each_as_a_flag_and_the_servers_as_an_mcp_config_file() -> None:
    adapter = ClaudeCodeAdapter(
        {"reasoning_effort": "high", "system_prompt": "Be brief.", "add_dirs": ["~/docs"]}
    )
    spec = _spec(adapter, mcp_servers=SERVERS)
    argv = spec.argv
    assert argv[argv.index("--effort") + 1] == "high"
    assert "--append-system-prompt=Be brief." in argv
    assert f"--add-dir={Path('~/docs').expanduser()}" in argv
    path = argv[argv.index("--mcp-config") + 1]
    assert path == str(HOME / ".claude/council-mcp.json")
    assert _written(spec, ".claude/council-mcp.json") == {
        "mcpServers": {
            "docs": {
                "type": "stdio",
                "command": "docs-mcp",
                "args": ["--root", "/srv"],
                "env": {"TOKEN": "t-1"},
            },
            "tracker": {
                "type": "http",
                "url": "https://mcp.example.com/mcp",
                "headers": {"X-Key": "k-1"},
            },
        }
    }
    assert adapter.readable_dirs() == (str(Path("~/docs").expanduser()),)


def test_codex_takes_them_in_its_config_toml_on_a_first_run_and_a_resumed_one() -> None:
    adapter = CodexAdapter(
        {"reasoning_effort": "high", "system_prompt": "Be brief.", "add_dirs": ["/srv/docs"]}
    )
    for spec in (
        _spec(adapter, mcp_servers=SERVERS),
        _spec(adapter, mcp_servers=SERVERS, resume_session_id="t-1"),
    ):
        config = _written(spec, ".codex/config.toml")
        assert config["model_reasoning_effort"] == "high"
        assert config["developer_instructions"] == "Be brief."
        assert config["sandbox_workspace_write"] == {"writable_roots": ["/srv/docs"]}
        wait = {"required": True, "startup_timeout_sec": 60}  # there on the first request
        assert config["mcp_servers"] == {
            "docs": {
                "command": "docs-mcp",
                "args": ["--root", "/srv"],
                "env": {"TOKEN": "t-1"},
                **wait,
            },
            "tracker": {
                "url": "https://mcp.example.com/mcp",
                "http_headers": {"X-Key": "k-1"},
                **wait,
            },
        }
        assert not any(arg.startswith("--add-dir") for arg in spec.argv)  # resume has none


@pytest.mark.parametrize("adapter_class", [GeminiAdapter, QwenAdapter])
def test_gemini_and_qwen_take_servers_as_mcp_servers_and_dirs_as_include_directories(
    adapter_class: type[Adapter],
) -> None:
    spec = _spec(adapter_class({"add_dirs": ["/srv/docs"]}), mcp_servers=SERVERS)
    assert "--include-directories=/srv/docs" in spec.argv
    settings = _written(spec, f".{adapter_class.executable}/settings.json")
    assert settings["mcpServers"] == {
        "docs": {"command": "docs-mcp", "args": ["--root", "/srv"], "env": {"TOKEN": "t-1"}},
        "tracker": {"httpUrl": "https://mcp.example.com/mcp", "headers": {"X-Key": "k-1"}},
    }


def test_gemini_adds_the_system_prompt_as_a_global_context_file() -> None:
    spec = _spec(GeminiAdapter({"system_prompt": "Be brief."}))
    assert spec.home_files[".gemini/COUNCIL.md"] == "Be brief."
    settings = _written(spec, ".gemini/settings.json")
    assert settings["context"] == {"fileName": ["GEMINI.md", "COUNCIL.md"]}


def test_qwen_takes_effort_in_its_settings_and_the_prompt_as_a_flag() -> None:
    spec = _spec(QwenAdapter({"reasoning_effort": "max", "system_prompt": "Be brief."}))
    assert _written(spec, ".qwen/settings.json")["model"]["reasoningEffort"] == "max"
    assert "--append-system-prompt=Be brief." in spec.argv


def test_opencode_takes_effort_as_variant_prompt_as_instructions_and_servers_as_mcp() -> None:
    spec = _spec(
        OpencodeAdapter({"reasoning_effort": "high", "system_prompt": "Be brief."}),
        mcp_servers=SERVERS,
    )
    assert spec.argv[spec.argv.index("--variant") + 1] == "high"
    config = _written(spec, ".config/opencode/council.json")
    instructions = ".config/opencode/council-instructions.md"
    assert config["instructions"] == [str(HOME / instructions)]
    assert spec.home_files[instructions] == "Be brief."
    assert config["mcp"] == {
        "docs": {
            "type": "local",
            "command": ["docs-mcp", "--root", "/srv"],
            "enabled": True,
            "timeout": 60_000,
            "environment": {"TOKEN": "t-1"},
        },
        "tracker": {
            "type": "remote",
            "url": "https://mcp.example.com/mcp",
            "enabled": True,
            "timeout": 60_000,
            "headers": {"X-Key": "k-1"},
        },
    }


def test_aider_takes_effort_as_a_flag_and_the_prompt_as_a_read_only_file() -> None:
    spec = _spec(AiderAdapter({"reasoning_effort": "high", "system_prompt": "Be brief."}))
    argv = spec.argv
    assert argv[argv.index("--reasoning-effort") + 1] == "high"
    assert argv[argv.index("--read") + 1] == str(HOME / ".aider.council-instructions.md")
    assert spec.home_files[".aider.council-instructions.md"] == "Be brief."
    assert not AiderAdapter.takes_mcp_servers


@pytest.mark.parametrize(
    ("adapter_class", "options", "words"),
    [
        (ClaudeCodeAdapter, {"add_dirs": ["docs"]}, "is not an absolute path"),
        (CodexAdapter, {"reasoning_effort": "extreme"}, "reasoning_effort"),
        (OpencodeAdapter, {"add_dirs": ["/srv"]}, "add_dirs"),  # opencode has no such knob
        (AiderAdapter, {"add_dirs": ["/srv"]}, "add_dirs"),
    ],
)
def test_a_bad_or_unknown_option_is_refused_naming_it(
    adapter_class: type[Adapter], options: dict[str, Any], words: str
) -> None:
    with pytest.raises(AdapterError, match=words):
        adapter_class(options)


def _config(tmp_path: Path, servers: str) -> str:
    return f"""
repo: {tmp_path}
adapters:
  claude_code: {{}}
  aider: {{}}
mcp_servers:
{servers}
tasks:
  - id: t1
    prompt: hi
    adapters: [aider]
  - id: t2
    prompt: hi
    adapters: [claude_code]
"""


@pytest.mark.parametrize(
    ("servers", "words"),
    [
        ("  docs: {}", "one of them"),
        ("  docs: {command: x, url: 'https://x'}", "one of them"),
        ("  docs: {url: 'ftp://x'}", "not an http"),
        ("  docs: {command: x, headers: {A: b}}", "go with a `url`"),
        ("  docs: {command: x, env: {'1BAD': x}}", "not a valid environment variable"),
    ],
)
def test_a_bad_mcp_server_is_refused_at_its_place(tmp_path: Path, servers: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(_config(tmp_path, servers), source="run.yaml")
    assert words in str(error.value) and "mcp_servers.docs" in str(error.value)


def test_an_adapter_that_takes_no_mcp_servers_is_warned_about(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path, "  docs: {command: docs-mcp}"), source="run.yaml")
    registry = plugins.default_plugins().registry
    said = warn_mcp_servers(config, registry)
    assert len(said) == 1 and "'aider'" in said[0] and "docs" in said[0], said


def test_a_phase_lays_its_own_options_over_the_adapters(tmp_path: Path) -> None:
    from orchestrator.config.adapter_entry import AdapterConfig
    from orchestrator.runner.phase import with_phase_options

    entry = AdapterConfig(type="codex", options={"sandbox": "read-only", "extra_args": ["-x"]})
    review = with_phase_options(entry, {"reasoning_effort": "high", "extra_args": ["-y"]})
    assert review is not None and review.options == {
        "sandbox": "read-only",
        "reasoning_effort": "high",
        "extra_args": ["-y"],  # key by key: the phase's list replaces the adapter's
    }
    assert with_phase_options(entry, {}) is entry
    registry = plugins.default_plugins().registry
    adapter = registry.create("codex", review)
    spec = _spec(adapter)
    assert _written(spec, ".codex/config.toml")["model_reasoning_effort"] == "high"
    assert "-y" in spec.argv and "-x" not in spec.argv


def test_a_phases_options_are_checked_against_each_adapter_it_may_run(tmp_path: Path) -> None:
    models = plugins.default_plugins().registry.options_models()
    text = f"""
repo: {tmp_path}
adapters:
  claude_code: {{}}
  aider: {{}}
workflow:
  phases:
    - name: build
    - name: review
      options: {{reasoning_effort: xhigh, add_dirs: [/srv/docs]}}
tasks:
  - id: t1
    prompt: hi
    adapters: [claude_code]
  - id: t2
    prompt: hi
    adapters: [aider]
"""
    with pytest.raises(ConfigError) as error:
        parse_config(text, source="run.yaml", options_models=models)
    fields = [issue.field for issue in error.value.issues]
    # claude takes both; aider has no add_dirs and no xhigh check: one problem, at its place.
    assert fields == ["workflow.phases[1].options.add_dirs"], error.value.issues
    assert "for adapter 'aider'" in str(error.value)
