"""Secrets out of YAML: `${NAME}` in an adapter's `env`, `pass_env`, and the errors that name
the file and line before a run starts; the values reach the CLI (a real process) and are
masked in what is stored."""

from __future__ import annotations

import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from adapters.command import CommandAdapter
from orchestrator import plugins, secret_mask
from orchestrator.adapter import AdapterRequest
from orchestrator.config import load_config, parse_config, run_config_json_schema
from orchestrator.env_refs import UnsetVariable, expand, references
from orchestrator.errors import ConfigError
from orchestrator.phase_cli import expand_env
from orchestrator.process import run_cli

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
    schema = run_config_json_schema(MODELS)
    good = {
        "repo": str(tmp_path),
        "adapters": {
            "codex": {"options": {"base_url": "http://x/v1", "env_key": "K"}},
            "mine": {"type": "claude_code", "options": {"permission_mode": "plan"}},
        },
        "tasks": [{"id": "t1", "prompt": "hi"}],
    }
    jsonschema.validate(good, schema)
    for bad in (
        {"codex": {"options": {"bse_url": "http://x/v1"}}},  # by its key
        {"mine": {"type": "claude_code", "options": {"sandbox": "read-only"}}},  # by its type
        {"gemini": {"options": {"approval_mode": "sometimes"}}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**good, "adapters": bad}, schema)


def test_the_example_configs_pass_the_schema() -> None:
    schema = run_config_json_schema(MODELS)
    for path in sorted(Path("configs").glob("*.yaml")):
        config = load_config(path, options_models=MODELS)  # the loader agrees
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
        assert config.tasks, path


async def test_referenced_and_passed_values_reach_the_cli_and_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_GATEWAY_URL", "https://gateway.example/v1")
    monkeypatch.setenv("TEAM_EXTRA", "passed-as-it-is-7f3a")
    env, brought = expand_env({"MY_ENDPOINT": "${TEAM_GATEWAY_URL}"})
    secret_mask.remember(brought)
    show = "import os; print(os.environ.get('MY_ENDPOINT'), os.environ.get('TEAM_EXTRA'))"
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

    # The CLI got both; what is stored hides the value that came from a reference.
    assert run.result.exit_code == 0
    log = run.log_path.read_text()
    assert "https://gateway.example/v1" not in log
    assert "*** passed-as-it-is-7f3a" in log  # the CLI printed the URL, masked, and the other
