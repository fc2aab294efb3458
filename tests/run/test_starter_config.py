"""The starter config ``council init`` writes, for each mix of CLIs a machine may have: always
valid (as ``council config validate`` reads it), the roles given by login, and each CLI's
account login said to its adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config.load import parse_config
from orchestrator.plugins import host as plugins
from orchestrator.run.setup.cli_detect import CliState, Login
from orchestrator.run.setup.starter_config import starter_config


def _cli(
    kind: str,
    *,
    found: bool = True,
    login: bool = True,
    files: tuple[str, ...] = (),
    keys_set: tuple[str, ...] = (),
    edits: bool = True,
) -> CliState:
    return CliState(
        name=kind,
        adapter_type=kind,
        binary=kind,
        path=f"/opt/bin/{kind}" if found else None,
        version=f"{kind} 1.0" if found else None,
        login=Login(
            needed=True,
            found=login,
            where="somewhere" if login else "no login found",
            keys=["OPENAI_API_KEY", "GEMINI_API_KEY"],
            keys_set=list(keys_set),
            files=list(files),
        ),
        edits_files=edits,
    )


def _checked(text: str, tmp_path: Path) -> None:
    registry = plugins.load_plugins(entry_points=(), environ={}).registry
    parse_config(
        text, source="council.yaml", base_dir=tmp_path, options_models=registry.options_models()
    )


def test_two_logged_in_clis_build_and_review(tmp_path: Path) -> None:
    starter = starter_config(
        "council.yaml", ".", "main", [_cli("claude_code"), _cli("codex"), _cli("gemini")]
    )
    assert (starter.builder, starter.reviewer) == ("claude_code", "codex")
    assert starter.adapters == ["claude_code", "codex", "gemini"]
    _checked(starter.text, tmp_path)


@pytest.mark.parametrize(
    ("kind", "keys_set", "option"),
    [
        ("gemini", (), "auth_type: oauth-personal"),
        ("gemini", ("GEMINI_API_KEY",), None),
    ],
)
def test_an_account_login_is_said_to_the_adapter(
    tmp_path: Path, kind: str, keys_set: tuple[str, ...], option: str | None
) -> None:
    cli = _cli(kind, files=(f"/home/u/.{kind}/oauth_creds.json",), keys_set=keys_set)
    starter = starter_config("council.yaml", ".", "main", [cli])
    if option is None:
        assert "auth_type" not in starter.text  # the adapter's default: the key
    else:
        assert option in starter.text
    _checked(starter.text, tmp_path)


def test_a_qwen_key_in_its_env_file_keeps_the_default_auth_type(tmp_path: Path) -> None:
    # Qwen's OAuth is discontinued: its login is a key (here in ~/.qwen/.env), which the
    # adapter's default auth_type (openai) reads; a config with qwen-oauth would be refused.
    cli = _cli("qwen", files=("/home/u/.qwen/.env",))
    starter = starter_config("council.yaml", ".", "main", [cli])
    assert "auth_type" not in starter.text and "qwen:" in starter.text
    _checked(starter.text, tmp_path)


def test_a_cli_that_edits_nothing_gets_no_role(tmp_path: Path) -> None:
    starter = starter_config("council.yaml", ".", "main", [_cli("ollama", edits=False)])
    assert starter.demo and starter.adapters == ["alice", "bob"]
    assert "#   ollama: ollama 1.0; it does not edit files, so it has no role here" in starter.text
    _checked(starter.text, tmp_path)


def test_odd_paths_and_branches_are_written_as_they_are(tmp_path: Path) -> None:
    repo = '../my repo: #1 "quoted"'
    starter = starter_config("c.yaml", repo, "feature/x-#2", [_cli("codex")])
    config = parse_config(starter.text, source="c.yaml", base_dir=tmp_path)
    assert config.repo.name == 'my repo: #1 "quoted"'
    assert config.repo.parent == tmp_path.parent
    assert config.base_branch == "feature/x-#2"
