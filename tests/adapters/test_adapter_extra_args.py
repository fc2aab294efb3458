"""``extra_args`` of the built-in CLI adapters (issue 29): appended as they are, before the
prompt and on a resumed session too; a flag the adapter sets itself, one named like a key, and
``--`` refused at validation with one line naming the flag and what to use instead; each
adapter's declared ``owned_flags`` kept in step with the flags its commands really emit."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from adapters.aider import AiderAdapter
from adapters.claude_code import ClaudeCodeAdapter
from adapters.codex import CodexAdapter
from adapters.gemini import GeminiAdapter
from adapters.ollama import OllamaAdapter
from adapters.opencode import OpencodeAdapter
from adapters.qwen import QwenAdapter
from orchestrator.adapter import Adapter, AdapterRequest, ExtraArgsConfig
from orchestrator.config import adapter_entry
from orchestrator.config.load import parse_config, run_config_json_schema
from orchestrator.errors import AdapterError, ConfigError
from orchestrator.plugins import host as plugins

MODELS = plugins.default_plugins().registry.options_models()
CLI_ADAPTERS: list[type[Adapter]] = [
    AiderAdapter,
    ClaudeCodeAdapter,
    CodexAdapter,
    GeminiAdapter,
    OllamaAdapter,
    OpencodeAdapter,
    QwenAdapter,
]
# Options that make each adapter emit every flag it can (each is tried alone and all together).
EVERY_OPTION: dict[type[Adapter], list[dict[str, Any]]] = {
    AiderAdapter: [
        {"edit_format": "whole", "map_tokens": 0, "base_url": "http://x/v1"},
        {"restore_chat_history": True, "dry_run": True},
        {"files": ["a.py"], "read_files": ["b.md"]},
        {"reasoning_effort": "high", "system_prompt": "be brief"},
    ],
    ClaudeCodeAdapter: [
        {"max_turns": 3, "max_budget_usd": 1.5, "fallback_model": "m2"},
        {"allowed_tools": ["Edit"], "disallowed_tools": ["Bash"], "permission_mode": "plan"},
        {"reasoning_effort": "high", "system_prompt": "be brief", "add_dirs": ["/srv/docs"]},
    ],
    CodexAdapter: [
        {"sandbox": "read-only"},
        {"sandbox": "bypass"},
        {"reasoning_effort": "high", "system_prompt": "be brief", "add_dirs": ["/srv/docs"]},
    ],
    GeminiAdapter: [
        {"approval_mode": "auto_edit"},
        {"approval_mode": "default"},
        {"system_prompt": "be brief", "add_dirs": ["/srv/docs"]},
    ],
    OllamaAdapter: [
        {"model": "m", "format_json": True, "keepalive": "5m", "think": "low"},
        {"model": "m", "hide_thinking": True, "verbose": False},
    ],
    OpencodeAdapter: [
        {"agent": "build", "model": "p/m", "auto_approve": False},
        {"reasoning_effort": "high", "system_prompt": "be brief"},
    ],
    QwenAdapter: [
        {"max_session_turns": 4, "auth_type": None},
        {"approval_mode": "plan"},
        {"reasoning_effort": "high", "system_prompt": "be brief", "add_dirs": ["/srv/docs"]},
    ],
}
# codex's `-c key=value` is its own escape hatch: the adapter sets sandbox_mode with it on a
# resumed session, and a user's other keys stay theirs.
SHARED: dict[type[Adapter], set[str]] = {CodexAdapter: {"-c"}}
PROMPTS = ["fix the bug", "-starts like a flag", "x" * 200_000]


def _request(
    tmp_path: Path, prompt: str = "fix the bug", model: str | None = None
) -> AdapterRequest:
    return AdapterRequest(prompt=prompt, workdir=tmp_path, home=tmp_path / "home", model=model)


def _commands(adapter: Adapter, request: AdapterRequest) -> list[list[str]]:
    argvs = [adapter.build_command(request).argv]
    if adapter.can_resume:
        argvs.append(adapter.resume_command(request, "0d4e9a2c-1111-2222-3333-444455556666").argv)
    return argvs


def _flags(argv: list[str], prompt: str) -> set[str]:
    flags = set()
    for arg in argv[1:]:
        if arg == "--":
            break  # the prompt follows
        if arg.startswith("-") and arg not in ("-", prompt):
            flags.add(arg.split("=", 1)[0])
    return flags


@pytest.mark.parametrize("adapter_class", CLI_ADAPTERS, ids=lambda c: c.name)
def test_every_flag_an_adapter_emits_is_one_it_declares(
    adapter_class: type[Adapter], tmp_path: Path
) -> None:
    options_model: type[Any] = adapter_class.Config
    assert issubclass(options_model, ExtraArgsConfig)
    owned = set(options_model.owned_flags) | SHARED.get(adapter_class, set())
    owned |= set(options_model.option_flags)  # set only from their option, refused beside it
    choices = EVERY_OPTION[adapter_class]
    merged = {k: v for options in choices for k, v in options.items()}
    emitted: set[str] = set()
    for options, prompt, model in itertools.product([{}, *choices, merged], PROMPTS, [None, "m"]):
        if adapter_class is OllamaAdapter and "model" not in options:
            options = {**options, "model": "m"}
        adapter = adapter_class(options)
        for argv in _commands(adapter, _request(tmp_path, prompt, model)):
            emitted |= _flags(argv, prompt)
    assert emitted, adapter_class.name
    assert emitted <= owned, f"{adapter_class.name} sets undeclared flags {emitted - owned}"


CASES = {
    # adapter: (extra args, what must follow them in a first run's argv: the prompt or nothing)
    AiderAdapter: ["--cache-prompts"],
    ClaudeCodeAdapter: ["--agent", "reviewer"],
    CodexAdapter: ["-c", "model_reasoning_effort=low"],
    GeminiAdapter: ["--include-directories", "docs"],
    OllamaAdapter: ["--insecure"],
    OpencodeAdapter: ["--title", "council"],
    QwenAdapter: ["--include-directories", "docs"],
}


@pytest.mark.parametrize("adapter_class", CLI_ADAPTERS, ids=lambda c: c.name)
def test_extra_args_are_appended_as_they_are_before_the_prompt(
    adapter_class: type[Adapter], tmp_path: Path
) -> None:
    extra = CASES[adapter_class]
    options: dict[str, Any] = {"extra_args": extra}
    if adapter_class is OllamaAdapter:
        options["model"] = "m"
    adapter = adapter_class(options)
    prompt = "fix the bug"
    for argv in _commands(adapter, _request(tmp_path, prompt)):
        at = next(i for i in range(len(argv)) if argv[i : i + len(extra)] == extra)
        if argv[-1] == prompt and argv[-2] not in ("-p", "--message"):
            assert at + len(extra) <= len(argv) - 1  # a positional prompt comes after them
    # The variadic tool lists of claude come after them, so they cannot take a value of theirs.
    if adapter_class is ClaudeCodeAdapter:
        argv = (
            ClaudeCodeAdapter({"extra_args": extra, "allowed_tools": ["Edit"]})
            .build_command(_request(tmp_path))
            .argv
        )
        assert argv.index("--agent") < argv.index("--allowedTools")


def test_codex_puts_them_after_the_subcommand_and_before_the_session_and_prompt(
    tmp_path: Path,
) -> None:
    adapter = CodexAdapter({"extra_args": ["-c", "model_reasoning_effort=low"]})
    first, resumed = _commands(adapter, _request(tmp_path))
    assert first[1] == "exec" and first[-3:] == ["-c", "model_reasoning_effort=low", "fix the bug"]
    assert resumed[1:3] == ["exec", "resume"]
    assert resumed[-4:-2] == ["-c", "model_reasoning_effort=low"]


@pytest.mark.parametrize(
    ("adapter_class", "extra", "flag", "instead"),
    [
        (ClaudeCodeAdapter, ["--output-format", "json"], "--output-format", "output format"),
        (ClaudeCodeAdapter, ["--model=opus"], "--model", "`model:`"),
        (ClaudeCodeAdapter, ["--max-turns", "3"], "--max-turns", "`max_turns`"),
        (CodexAdapter, ["--json"], "--json", "output format"),
        (CodexAdapter, ["-m", "o3"], "-m", "`model:`"),
        (GeminiAdapter, ["-y"], "-y", "`approval_mode`"),
        (QwenAdapter, ["--resume", "x"], "--resume", "continues sessions"),
        (OpencodeAdapter, ["--format", "default"], "--format", "output format"),
        (AiderAdapter, ["--auto-commits"], "--auto-commits", "headless"),
        (AiderAdapter, ["--read", "notes.md"], "--read", "`read_files`"),
        (OllamaAdapter, ["--format", "json"], "--format", "`format_json`"),
    ],
)
def test_a_flag_the_adapter_sets_is_refused_with_what_to_use_instead(
    adapter_class: type[Adapter], extra: list[str], flag: str, instead: str
) -> None:
    with pytest.raises(AdapterError) as error:
        adapter_class({"extra_args": extra})
    message = str(error.value)
    assert f"adapter {adapter_class.name!r}" in message
    assert f"extra_args: {flag} is set by the adapter itself" in message
    assert instead in message


@pytest.mark.parametrize(
    "extra", [["--api-key", "openai=sk-1"], ["--openai-api-key=sk-1"], ["--password", "x"]]
)
def test_a_flag_named_like_a_key_is_refused_with_a_pointer_to_env(extra: list[str]) -> None:
    with pytest.raises(AdapterError, match=r"would put a secret .* env \(`\$\{NAME\}`\)"):
        AiderAdapter({"extra_args": extra})


def test_a_double_dash_is_refused() -> None:
    with pytest.raises(AdapterError, match="'--' would turn the adapter's own flags"):
        OpencodeAdapter({"extra_args": ["--", "x"]})


def test_a_value_that_only_looks_like_a_flag_name_passes() -> None:
    # `--agent` is claude's; "reviewer" is a value; `--flag=-x` keeps a dash value a value.
    adapter = ClaudeCodeAdapter(
        {"extra_args": ["--agent", "reviewer", "--append-system-prompt=-x"]}
    )
    assert adapter.extra_args() == ["--agent", "reviewer", "--append-system-prompt=-x"]


def test_config_validate_names_the_adapter_and_the_flag(tmp_path: Path) -> None:
    text = f"""
repo: {tmp_path}
adapters:
  claude_code:
    options:
      extra_args: ["--agent", "reviewer"]
  reviewer:
    type: codex
    options:
      extra_args: ["--json"]
tasks:
  - id: t1
    prompt: hi
"""
    with pytest.raises(ConfigError) as error:
        parse_config(text, source="team.yaml", options_models=MODELS)
    issues = [i for i in error.value.issues if "extra_args" in i.field]
    assert [i.field for i in issues] == ["adapters.reviewer.options.extra_args"]
    assert "--json is set by the adapter itself" in str(error.value)
    assert "'codex'" in str(error.value)


def test_the_registry_builds_an_adapter_with_them() -> None:
    registry = plugins.default_plugins().registry
    entry = adapter_entry.AdapterConfig(options={"extra_args": ["--agent", "reviewer"]})
    adapter = registry.create("claude_code", entry)
    assert adapter.extra_args() == ["--agent", "reviewer"]


@pytest.mark.parametrize("adapter_class", CLI_ADAPTERS, ids=lambda c: c.name)
def test_the_schema_describes_extra_args_for_each_adapter(adapter_class: type[Adapter]) -> None:
    field = adapter_class.Config.model_json_schema()["properties"]["extra_args"]
    assert field["type"] == "array" and field["items"] == {"type": "string"}
    assert "appended to its command line" in field["description"]
    assert run_config_json_schema(MODELS)  # and the whole schema still builds


def test_adapters_without_a_place_for_them_refuse_them() -> None:
    # The command preset has `args` (its whole command line); scripted is the test stand-in.
    for name in ("command", "scripted"):
        assert "extra_args" not in MODELS[name].model_fields


@pytest.mark.parametrize(
    ("adapter_class", "options", "flag"),
    [
        (ClaudeCodeAdapter, {"system_prompt": "be brief"}, "--append-system-prompt"),
        (ClaudeCodeAdapter, {"add_dirs": ["/srv"]}, "--add-dir"),
        (QwenAdapter, {"system_prompt": "be brief"}, "--append-system-prompt"),
        (QwenAdapter, {"add_dirs": ["/srv"]}, "--include-directories"),
        (GeminiAdapter, {"add_dirs": ["/srv"]}, "--include-directories"),
    ],
)
def test_a_flag_an_option_sets_is_refused_beside_that_option(
    adapter_class: type[Adapter], options: dict[str, Any], flag: str
) -> None:
    # Alone, the flag is the user's; beside the option that sets it, one of the two is lost.
    adapter_class({"extra_args": [f"{flag}=x"]})
    with pytest.raises(AdapterError, match=f"{flag} is set by the adapter from its option"):
        adapter_class({**options, "extra_args": [f"{flag}=x"]})
