"""Secrets out of YAML: `${NAME}` in an adapter's `env`, `pass_env`, and the errors that name
the file and line before a run starts; the values reach the CLI (a real process) and are
masked in what is stored."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from adapters.command import CommandAdapter
from orchestrator.adapter import (
    Adapter,
    AdapterConfig,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    Stream,
)
from orchestrator.config.env_refs import UnsetVariable, expand, references
from orchestrator.config.load import load_config, parse_config, run_config_json_schema
from orchestrator.errors import ConfigError
from orchestrator.plugins import host as plugins
from orchestrator.plugins.registry import AdapterRegistry
from orchestrator.runner.cli_run import run_cli
from orchestrator.runner.phase import expand_env
from orchestrator.safety import secret_mask
from tests.support.json_schemas import checked_validator

MODELS = plugins.default_plugins().registry.options_models()


def test_references_and_escapes() -> None:
    assert references("Bearer ${TOKEN} for ${USER_NAME}") == ["TOKEN", "USER_NAME"]
    assert references("$${LITERAL} and $NOT_A_REF") == []
    assert expand("k=${A}/$${A}", {"A": "v"}) == ("k=v/${A}", ["v"])
    with pytest.raises(UnsetVariable) as unset:
        expand("${MISSING_ONE}", {})
    assert unset.value.name == "MISSING_ONE"


CONFIG = """\
repo: {repo}
adapters:
  codex:
    options:
      base_url: http://127.0.0.1:8080/v1
      env_key: TEAM_KEY
    env:
      OPENAI_API_KEY: ${{TEAM_GATEWAY_KEY}}
      LITERAL: $${{NOT_EXPANDED}}
    pass_env: [TEAM_KEY]
default_adapter: codex
tasks: [{{id: t1, prompt: hi}}]
"""


def test_an_unset_reference_is_named_with_its_line(tmp_path: Path) -> None:
    text = CONFIG.format(repo=tmp_path)
    with pytest.raises(ConfigError) as error:
        parse_config(text, source="team.yaml", environ={})
    (issue,) = error.value.issues
    assert (issue.file, issue.line, issue.field) == (
        "team.yaml",
        8,
        "adapters.codex.env.OPENAI_API_KEY",
    )
    assert "${TEAM_GATEWAY_KEY} is not set" in issue.message
    # Set, it passes; the config keeps the reference, never the value.
    config = parse_config(text, environ={"TEAM_GATEWAY_KEY": "sk-team-0123456789"})
    assert config.adapters["codex"].env["OPENAI_API_KEY"] == "${TEAM_GATEWAY_KEY}"
    assert config.adapters["codex"].pass_env == ["TEAM_KEY"]


def test_an_unknown_option_is_named_with_its_line_and_a_suggestion(tmp_path: Path) -> None:
    text = CONFIG.format(repo=tmp_path).replace("base_url:", "bse_url:")
    with pytest.raises(ConfigError) as error:
        parse_config(text, source="team.yaml", options_models=MODELS)
    (issue,) = error.value.issues
    assert (issue.line, issue.field) == (5, "adapters.codex.options.bse_url")
    assert "did you mean 'base_url'?" in issue.message and "env_key" in issue.message


def test_a_wrong_option_value_is_named(tmp_path: Path) -> None:
    text = CONFIG.format(repo=tmp_path).replace(
        "env_key: TEAM_KEY", "env_key: TEAM_KEY\n      sandbox: nowhere"
    )
    with pytest.raises(ConfigError) as error:
        parse_config(text, source="team.yaml", options_models=MODELS)
    assert [i.field for i in error.value.issues] == ["adapters.codex.options.sandbox"]


def test_the_schema_spells_out_each_adapter_types_options(tmp_path: Path) -> None:
    validator = checked_validator(run_config_json_schema(MODELS))
    good = {
        "repo": str(tmp_path),
        "adapters": {
            "codex": {"options": {"base_url": "http://x/v1", "env_key": "K"}},
            "mine": {"type": "claude_code", "options": {"permission_mode": "plan"}},
        },
        "tasks": [{"id": "t1", "prompt": "hi"}],
    }
    validator.validate(good)
    for bad in (
        {"codex": {"options": {"bse_url": "http://x/v1"}}},  # by its key
        {"mine": {"type": "claude_code", "options": {"sandbox": "read-only"}}},  # by its type
        {"gemini": {"options": {"approval_mode": "sometimes"}}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate({**good, "adapters": bad})


def test_the_example_configs_pass_the_schema() -> None:
    validator = checked_validator(run_config_json_schema(MODELS))
    for path in sorted(Path("configs").glob("*.yaml")):
        config = load_config(path, options_models=MODELS)  # the loader agrees
        validator.validate(yaml.safe_load(path.read_text()))
        assert config.tasks, path


async def test_referenced_and_passed_values_reach_the_cli_and_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_GATEWAY_URL", "https://gateway.example/v1")
    monkeypatch.setenv("TEAM_EXTRA", "passed-as-it-is-7f3a")
    env, brought = expand_env({"MY_ENDPOINT": "${TEAM_GATEWAY_URL}"})
    secret_mask.remember(brought)
    show = (
        "import os; a, b = os.environ['MY_ENDPOINT'], os.environ['TEAM_EXTRA']; "
        "print(a, b, len(a), len(b))"
    )
    adapter = CommandAdapter({"binary": sys.executable, "args": ["-c", show, "{prompt}"]})
    (tmp_path / "work").mkdir()
    request = AdapterRequest(
        prompt="go",
        workdir=tmp_path / "work",
        home=tmp_path / "home",
        env=env,
        pass_env=("TEAM_EXTRA",),
    )

    run = await run_cli(adapter, request, log_dir=tmp_path / "logs")

    # The CLI got both (their lengths say so); what is stored hides both: each came from the
    # environment, one by a reference, the other named in pass_env (names that do not look
    # secret: the origin is what makes them secrets).
    assert run.result.exit_code == 0
    log = run.log_path.read_text()
    assert "stdout| *** *** 26 20\n" in log


# What each built-in adapter type reads from its options, endpoint and key variable included.
BUILTIN_OPTIONS = {
    "claude_code": {"base_url", "permission_mode", "max_retries", "fallback_model"},
    "codex": {"base_url", "env_key", "provider_name", "sandbox"},
    "gemini": {"base_url", "auth_type", "approval_mode", "max_attempts"},
    "qwen": {"base_url", "auth_type", "approval_mode", "max_retries"},
    "opencode": {"base_url", "api_key_env", "provider", "model", "agent"},
    "aider": {"base_url", "edit_format", "map_tokens"},
    "ollama": {"host", "model", "think"},
    "command": {"binary", "args", "passthrough_env", "env", "output"},
    "scripted": {"persona", "delay"},
}


def test_council_config_schema_spells_out_every_builtin_adapters_options() -> None:
    from typer.testing import CliRunner

    from orchestrator.cli.app import app

    printed = CliRunner().invoke(app, ["config", "schema"])
    assert printed.exit_code == 0, printed.output
    schema = json.loads(printed.stdout)
    by_type = schema["$defs"]["AdapterConfig"]["allOf"]
    for kind, keys in BUILTIN_OPTIONS.items():
        options = schema["$defs"][f"AdapterOptions_{kind}"]
        assert keys <= set(options["properties"]), kind
        assert options["additionalProperties"] is False, kind  # unknown keys refused
        # Chosen by its `type`, or by its key under `adapters:` when it has no `type`.
        assert any(rule["if"]["properties"]["type"]["const"] == kind for rule in by_type)
        assert kind in schema["properties"]["adapters"]["properties"]
    adapter = schema["$defs"]["AdapterConfig"]["properties"]
    assert adapter["pass_env"]["type"] == "array" and "${NAME}" in adapter["env"]["description"]


class _Gateway(Adapter):
    """A third-party adapter with an options model of its own."""

    name = "gateway-cli"
    executable = "gateway-cli"

    class Config(AdapterConfig):
        endpoint: str = "https://gateway.invalid/v1"
        key_variable: str = "GATEWAY_CLI_KEY"

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        return CommandSpec(argv=[self.binary, request.prompt])

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        return []


class _Bare(_Gateway):
    """A third-party adapter that declares no options."""

    name = "bare-cli"
    Config = Adapter.Config


def test_a_plugin_adapters_own_options_model_is_checked_and_in_the_schema(tmp_path: Path) -> None:
    registry = AdapterRegistry()
    registry.add(_Gateway, "tests")
    registry.add(_Bare, "tests")
    models = registry.options_models()
    text = (
        f"repo: {tmp_path}\n"
        "adapters:\n"
        "  gw:\n"
        "    type: gateway-cli\n"
        "    options: {endpoint: 'https://x/v1', key_varible: K}\n"
        "  bare:\n"
        "    type: bare-cli\n"
        "    options: {anything: 1}\n"
        "default_adapter: gw\n"
        "tasks: [{id: t1, prompt: hi}]\n"
    )
    with pytest.raises(ConfigError) as error:
        parse_config(text, source="plugin.yaml", options_models=models)
    found = {(issue.line, issue.field): issue.message for issue in error.value.issues}
    assert "did you mean 'key_variable'?" in found[(5, "adapters.gw.options.key_varible")]
    assert "'bare-cli' takes no options" in found[(8, "adapters.bare.options.anything")]
    schema = run_config_json_schema(models)
    assert set(schema["$defs"]["AdapterOptions_gateway_cli"]["properties"]) == {
        "endpoint",
        "key_variable",
    }


def test_escapes_and_several_references_in_one_value() -> None:
    environ = {"HOST": "gw.internal", "PORT": "8443"}
    assert expand("https://${HOST}:${PORT}/v1", environ) == (
        "https://gw.internal:8443/v1",
        ["gw.internal", "8443"],
    )
    assert expand("$${HOST} stays, $$ and $HOST too", environ) == (
        "${HOST} stays, $$ and $HOST too",
        [],
    )
    assert references("${1BAD} ${} ${A-B}") == []  # not variable names: left as they are
