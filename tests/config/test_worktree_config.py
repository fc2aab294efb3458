"""The ``worktrees:`` section of a run config, and the settings the worktree manager takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config.load import load_config, parse_config, run_config_json_schema
from orchestrator.config.sections import WorktreeConfig
from orchestrator.errors import ConfigError
from orchestrator.worktrees.models import WorktreeSettings

ROOT = Path(__file__).resolve().parents[2]
TASKS = "tasks:\n  - id: a\n    prompt: do a\n"


def parse(section: str, tmp_path: Path) -> WorktreeConfig:
    text = f"worktrees:\n{section}{TASKS}"
    return parse_config(text, source="run.yaml", base_dir=tmp_path).worktrees


def refusal(section: str, tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(section, tmp_path)
    return str(caught.value)


def test_defaults_when_absent(tmp_path: Path) -> None:
    worktrees = parse_config(TASKS, source="run.yaml", base_dir=tmp_path).worktrees
    assert worktrees == WorktreeConfig()
    assert (worktrees.copy_files, worktrees.setup, worktrees.sparse) == ([], [], [])
    assert worktrees.setup_timeout == 600.0 and worktrees.pool_size == 0


def test_every_setting(tmp_path: Path) -> None:
    worktrees = parse(
        "  copy_files: [.env, ./config//local.json]\n"
        "  setup:\n"
        "    - npm ci --prefer-offline\n"
        "    - [python3, -m, pip, install, -e, '.']\n"
        "  setup_timeout: 5m\n"
        "  pool_size: 4\n"
        "  sparse: [src, docs/api]\n",
        tmp_path,
    )
    assert worktrees.copy_files == [".env", "config/local.json"]
    assert worktrees.setup == [
        ["npm", "ci", "--prefer-offline"],
        ["python3", "-m", "pip", "install", "-e", "."],
    ]
    assert worktrees.setup_timeout == 300.0 and worktrees.pool_size == 4
    assert worktrees.sparse == ["src", "docs/api"]


def test_one_setup_command_may_be_a_string(tmp_path: Path) -> None:
    assert parse("  setup: make deps\n", tmp_path).setup == [["make", "deps"]]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  copy_file: [.env]\n", "worktrees.copy_file: unknown key (did you mean 'copy_files'?"),
        ("  copy_files: [/etc/passwd]\n", "is absolute"),
        ("  copy_files: [../secrets]\n", "climbs out with '..'"),
        ("  copy_files: [.git/config]\n", "git's or the orchestrator's own directory"),
        ("  copy_files: [.council/state]\n", "git's or the orchestrator's own directory"),
        ("  copy_files: [.env, ./.env]\n", "listed twice"),
        ("  setup: npm ci && npm test\n", "shell operator '&&'"),
        ("  setup_timeout: 0\n", "worktrees.setup_timeout"),
        ("  setup_timeout: soon\n", "is not a duration"),
        ("  pool_size: -1\n", "worktrees.pool_size"),
        ("  pool_size: 100000\n", "worktrees.pool_size"),
        ("  sparse: [../up]\n", "climbs out with '..'"),
    ],
)
def test_refusals_name_the_field(section: str, message: str, tmp_path: Path) -> None:
    text = refusal(section, tmp_path)
    assert message in text and "run.yaml" in text


def test_schema_lists_the_section() -> None:
    schema = run_config_json_schema()
    section = schema["$defs"]["WorktreeConfig"]
    assert section["additionalProperties"] is False
    assert set(section["properties"]) == {
        "copy_files",
        "passthrough_env",
        "setup",
        "setup_timeout",
        "pool_size",
        "sparse",
    }


def test_demo_config_sets_up_worktrees() -> None:
    worktrees = load_config(ROOT / "configs" / "demo.yaml").worktrees
    assert worktrees.pool_size == 2 and worktrees.setup_timeout == 120.0


def test_settings_carry_the_config_and_code_only_knobs() -> None:
    config = WorktreeConfig.model_validate(
        {"copy_files": [".env"], "pool_size": 3, "setup": ["make deps"]}
    )
    settings = WorktreeSettings.from_config(config)
    assert settings.copy_files == [".env"] and settings.pool_size == 3
    assert settings.setup == [["make", "deps"]]
    assert settings.meta_lock_timeout == 120.0 and settings.stale_lock_age == 2.0
    with pytest.raises(ValueError, match="copy_files"):
        WorktreeSettings(copy_files=["../x"])
