"""The user's own CLI configuration carried into the private HOME (issue 29), without a real
CLI: ``orchestrator.runner.config_merge`` (the merge itself) and
``orchestrator.runner.user_config`` (reading the user's files, writing and linking them,
forgetting them), driven through the built-in adapters' own ``config_files`` and
``user_files``. The real CLIs honouring the result: ``tests/real_cli/test_user_config.py``."""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.aider import AiderAdapter
from adapters.claude_code import ClaudeCodeAdapter
from adapters.codex import CodexAdapter
from adapters.gemini import GeminiAdapter
from adapters.qwen import QwenAdapter
from orchestrator.adapter import Adapter, AdapterRequest, ConfigFile
from orchestrator.errors import AdapterError
from orchestrator.runner.config_merge import dump, merge_config, parse, render, secret_values
from orchestrator.runner.user_config import MAX_USER_FILE, Carried, carry_user_config, forget
from orchestrator.safety import secret_mask

MCP = {"probe": {"command": "/usr/bin/python3", "args": ["-m", "probe"]}}


@pytest.fixture
def user_home(tmp_path: Path) -> Path:
    home = tmp_path / "user"
    home.mkdir()
    return home


@pytest.fixture
def private(tmp_path: Path) -> Path:
    home = tmp_path / "private"
    home.mkdir()
    return home


def _request(private: Path, **extra: Any) -> AdapterRequest:
    return AdapterRequest(prompt="do it", workdir=private.parent, home=private, **extra)


def _carry(
    adapter: Adapter, private: Path, env: dict[str, str], **extra: Any
) -> tuple[Carried, AdapterRequest]:
    request = _request(private, **extra)
    spec = adapter.build_command(request)
    return carry_user_config(private, spec, adapter.user_files, request, env), request


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


# --- the merge ---------------------------------------------------------------------------


def test_defaults_then_the_users_then_required_each_replaced_key_named() -> None:
    config = ConfigFile(
        format="json",
        defaults={"telemetry": False, "ui": {"theme": "dark", "pager": "less"}},
        required={"mode": "yolo", "ui": {"pager": "none"}, "endpoint": {"url": "http://x"}},
    )
    user = {
        "telemetry": True,  # the user's beats a default
        "ui": {"pager": "more", "font": "mono"},  # required beats the user's, key by key
        "mode": "yolo",  # the same value: nothing replaced
        "endpoint": "http://theirs",  # a value where the run's table goes: replaced
        "mcpServers": MCP,
    }

    merged = merge_config(config, user, logins=True)

    assert merged.data == {
        "telemetry": True,
        "ui": {"theme": "dark", "pager": "none", "font": "mono"},
        "mode": "yolo",
        "endpoint": {"url": "http://x"},
        "mcpServers": MCP,
    }
    assert sorted(merged.overridden) == [("endpoint", "url"), ("ui", "pager")]
    assert merged.carried
    nothing = merge_config(config, None, logins=True)
    assert nothing.data["telemetry"] is False and not nothing.overridden and not nothing.carried


def test_dropped_keys_never_carried_logins_only_when_shared() -> None:
    config = ConfigFile(
        format="json", dropped=(("projects",),), logins=(("auth", "apiKey"), ("primaryApiKey",))
    )
    user = {
        "projects": {"/home/u/repo": {"allowedTools": ["Bash"]}},
        "auth": {"apiKey": "sk-user-0123456789", "type": "openai"},
        "primaryApiKey": "sk-primary-0123456789",
        "mcpServers": MCP,
    }

    shared = merge_config(config, user, logins=True).data
    isolated = merge_config(config, user, logins=False).data

    assert shared == {key: user[key] for key in ("auth", "primaryApiKey", "mcpServers")}
    assert isolated == {"auth": {"type": "openai"}, "mcpServers": MCP}
    assert user["auth"] == {"apiKey": "sk-user-0123456789", "type": "openai"}  # not changed


def test_json_with_comments_is_read_and_a_slash_inside_a_string_kept() -> None:
    text = """{
      // the user's MCP servers
      "mcpServers": {"web": {"url": "http://127.0.0.1:9/mcp"}}, /* a block
      comment */ "theme": "a // b"
    }"""

    assert parse(text, "json", "~/.gemini/settings.json") == {
        "mcpServers": {"web": {"url": "http://127.0.0.1:9/mcp"}},
        "theme": "a // b",
    }
    assert parse("  \n", "json", "empty") == {}


def test_toml_round_trip_keeps_tables_and_drops_nulls() -> None:
    data = {
        "model_reasoning_effort": "high",
        "mcp_servers": {"my.server": {"command": "npx", "args": ["-y", "srv"], "env": {"A": "1"}}},
        "profiles": {"deep": {"model": "gpt-5.5", "approval": None}},
    }

    text = dump(data, "toml")

    assert tomllib.loads(text) == {
        "model_reasoning_effort": "high",
        "mcp_servers": data["mcp_servers"],
        "profiles": {"deep": {"model": "gpt-5.5"}},  # TOML has no null
    }
    assert parse(text, "toml", "config.toml") == tomllib.loads(text)


@pytest.mark.parametrize(
    ("form", "text", "words"),
    [
        ("json", '{"mcpServers": {', "is not valid JSON"),
        ("json", "[1, 2]", "the top level is not a mapping"),
        ("toml", "model = [", "is not valid TOML"),
        ("yaml", "model: [unclosed", "is not valid YAML"),
    ],
)
def test_a_file_that_is_not_valid_says_which_and_why(form: str, text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as caught:
        parse(text, form, "~/the-file")
    assert "~/the-file" in str(caught.value)


def test_secret_values_by_key_name_and_by_login_path() -> None:
    data = {
        "mcpServers": {"gh": {"env": {"GITHUB_TOKEN": "ghp_abc", "DEBUG": "1"}}},
        "headers": {"Authorization": "Bearer xyz"},
        "auth": {"selected": "sk-plain"},
        "apiKeyHelper": "",  # empty: nothing to mask
    }

    found = secret_values(data, [("auth", "selected")])

    assert found == {
        "mcpServers.gh.env.GITHUB_TOKEN": "ghp_abc",
        "headers.Authorization": "Bearer xyz",
        "auth.selected": "sk-plain",
    }


# --- carrying the files, through the adapters ----------------------------------------------


def test_codex_config_merged_run_keys_win_and_the_log_names_them(
    user_home: Path, private: Path
) -> None:
    _write(
        user_home / ".codex" / "config.toml",
        'model = "o3"\nmodel_reasoning_effort = "high"\n\n'
        '[mcp_servers.probe]\ncommand = "/usr/bin/python3"\n\n'
        "[features]\nplugins = true\n",
    )
    adapter = CodexAdapter({"base_url": "http://127.0.0.1:9/v1"})

    carried, _ = _carry(adapter, private, {"HOME": str(user_home)}, model="gpt-5.5")

    written = private / ".codex" / "config.toml"
    merged = tomllib.loads(written.read_text())
    assert merged["model_reasoning_effort"] == "high"
    assert merged["mcp_servers"] == {"probe": {"command": "/usr/bin/python3"}}
    assert merged["model"] == "gpt-5.5"  # the run's
    assert merged["features"]["plugins"] is True  # the user's beats the default
    assert merged["analytics"] == {"enabled": False}  # a default the user left alone
    assert merged["model_providers"]["council"]["base_url"] == "http://127.0.0.1:9/v1"
    assert carried.written == [written]
    assert carried.notes == [
        "user config: settings (profiles, MCP servers, model settings) ~/.codex/config.toml"
        " merged into ~/.codex/config.toml; the run's own value replaced the user's for: model"
    ]
    assert (written.stat().st_mode & 0o777) == 0o600


def test_credentials_isolated_drops_the_login_key_of_the_users_settings(
    user_home: Path, private: Path
) -> None:
    key = f"sk-qwen-{secrets.token_hex(8)}"
    settings = {"security": {"auth": {"apiKey": key, "selectedType": "openai"}}, "mcpServers": MCP}
    _write(user_home / ".qwen" / "settings.json", json.dumps(settings))
    env = {"HOME": str(user_home)}

    _carry(QwenAdapter(), private, env, share_credentials=False)
    isolated = _json(private / ".qwen" / "settings.json")
    _carry(QwenAdapter(), private, env)
    shared = _json(private / ".qwen" / "settings.json")

    assert isolated["security"] == {"auth": {"selectedType": "openai"}}
    assert isolated["mcpServers"] == MCP and key not in json.dumps(isolated)
    assert shared["security"]["auth"]["apiKey"] == key
    assert isolated["telemetry"] == {"enabled": False}  # the run's defaults, in both


def test_claude_json_loses_projects_keeps_mcp_servers(user_home: Path, private: Path) -> None:
    state = {"mcpServers": MCP, "projects": {"/home/u/repo": {"hasTrustDialogAccepted": True}}}
    _write(user_home / ".claude.json", json.dumps(state))

    _carry(ClaudeCodeAdapter(), private, {"HOME": str(user_home)})

    assert _json(private / ".claude.json") == {"mcpServers": MCP}


def test_a_users_file_that_is_not_valid_is_said_and_nothing_of_it_carried(
    user_home: Path, private: Path
) -> None:
    _write(user_home / ".qwen" / "settings.json", '{"mcpServers": {"probe": ')

    carried, _ = _carry(QwenAdapter(), private, {"HOME": str(user_home)})

    written = _json(private / ".qwen" / "settings.json")
    assert "mcpServers" not in written and written["telemetry"] == {"enabled": False}
    # Removed when the CLI ends like every config file the run writes (the next start writes
    # it anew): the run's own MCP servers may hold tokens too.
    assert carried.written == [private / ".qwen" / "settings.json"]
    assert len(carried.notes) == 1 and carried.notes[0].startswith(
        "user config: settings (mcpServers, model settings, security.auth) not carried:"
    )
    assert "~/.qwen/settings.json is not valid JSON" in carried.notes[0]


def test_bytes_that_are_not_utf8_are_said(user_home: Path, private: Path) -> None:
    path = user_home / ".qwen" / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"theme": "\xff"}')

    carried, _ = _carry(QwenAdapter(), private, {"HOME": str(user_home)})

    assert "is not UTF-8 text" in carried.notes[0], carried.notes


def test_a_users_file_that_is_not_a_regular_file_is_not_read(
    user_home: Path, private: Path
) -> None:
    fifo = user_home / ".codex" / "config.toml"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)  # reading it would block the run forever

    carried, _ = _carry(CodexAdapter(), private, {"HOME": str(user_home)})

    assert carried.notes == [
        "user config: settings (profiles, MCP servers, model settings) not carried:"
        " ~/.codex/config.toml is not a regular file"
    ]
    written = tomllib.loads((private / ".codex" / "config.toml").read_text())
    assert written["features"] == {"plugins": False}  # the run's own, as without the file


def test_a_users_file_over_a_mebibyte_is_not_carried(user_home: Path, private: Path) -> None:
    pad = " " * MAX_USER_FILE
    _write(user_home / ".gemini" / "settings.json", '{"mcpServers": {}' + pad + "}")
    carried, _ = _carry(GeminiAdapter(), private, {"HOME": str(user_home)})

    assert len(carried.notes) == 1
    assert f"~/.gemini/settings.json is over {MAX_USER_FILE} bytes" in carried.notes[0]
    assert "mcpServers" not in _json(private / ".gemini" / "settings.json")


def test_secrets_in_the_users_file_are_masked_each_by_file_and_key(
    user_home: Path, private: Path
) -> None:
    token = f"ghp_{secrets.token_hex(12)}"
    login = f"sk-ant-{secrets.token_hex(12)}"
    state = {
        "mcpServers": {"gh": {"command": "gh-mcp", "env": {"GITHUB_TOKEN": token}}},
        "primaryApiKey": login,
    }
    _write(user_home / ".claude.json", json.dumps(state))

    _carry(ClaudeCodeAdapter(), private, {"HOME": str(user_home)})

    assert {token, login} <= secret_mask.known()
    named = secret_mask.names()
    assert named[token] == "~/.claude.json: mcpServers.gh.env.GITHUB_TOKEN"
    assert named[login] == "~/.claude.json: primaryApiKey"
    assert token not in secret_mask.mask()(f"env GITHUB_TOKEN={token}")


def test_forget_removes_the_files_holding_the_users_settings(
    user_home: Path, private: Path
) -> None:
    _write(user_home / ".claude" / "settings.json", json.dumps({"hooks": {}}))
    _write(user_home / ".claude.json", json.dumps({"mcpServers": MCP}))

    carried, _ = _carry(ClaudeCodeAdapter(), private, {"HOME": str(user_home)})
    written = sorted(carried.written)
    assert written == [private / ".claude" / "settings.json", private / ".claude.json"]
    assert all(path.is_file() for path in written)

    forget(private, carried)
    forget(private, carried)  # twice: already gone is no error

    assert not any(path.exists() for path in written)
    assert (user_home / ".claude.json").is_file()  # the user's own untouched


def test_forget_removes_the_copies_the_cli_made_of_them(user_home: Path, private: Path) -> None:
    _write(user_home / ".claude.json", json.dumps({"mcpServers": MCP}))
    carried, _ = _carry(ClaudeCodeAdapter(), private, {"HOME": str(user_home)})
    # What claude 2.1.330 does with the ~/.claude.json it finds:
    backups = private / ".claude" / "backups"
    backup = _write(backups / ".claude.json.backup.1795529347161", json.dumps({"mcpServers": MCP}))
    other = _write(backups / "unrelated.json", "{}")

    forget(private, carried)

    assert not backup.exists() and not (private / ".claude.json").exists()
    assert other.exists()


def test_a_run_file_without_anything_of_the_users_is_forgotten_too(
    user_home: Path, private: Path
) -> None:
    carried, _ = _carry(CodexAdapter(), private, {"HOME": str(user_home)})

    assert carried.notes == []
    assert carried.written == [private / ".codex" / "config.toml"]
    assert (private / ".codex" / "config.toml").is_file()  # the run's own, until the CLI ends
    forget(private, carried)
    assert not (private / ".codex" / "config.toml").exists()  # the next start writes it anew


def test_other_user_files_are_linked_and_removed_under_ignore(
    user_home: Path, private: Path
) -> None:
    instructions = _write(user_home / ".claude" / "CLAUDE.md", "Always be brief.\n")
    agents = user_home / ".claude" / "agents"
    _write(agents / "reviewer.md", "---\nname: reviewer\n---\n")
    _write(user_home / ".claude.json", json.dumps({"mcpServers": MCP}))
    env = {"HOME": str(user_home)}

    carried, _ = _carry(ClaudeCodeAdapter(), private, env)

    for source in (instructions, agents):
        link = private / source.relative_to(user_home)
        assert link.is_symlink() and os.readlink(link) == str(source)
    assert sorted(carried.readable) == sorted([instructions, agents])
    assert "user config: instructions ~/.claude/CLAUDE.md linked" in carried.notes
    assert "user config: agents ~/.claude/agents linked" in carried.notes

    ignored, _ = _carry(ClaudeCodeAdapter(), private, env, user_config=False)

    assert not (private / ".claude" / "CLAUDE.md").is_symlink()
    assert not (private / ".claude" / "agents").exists()
    assert ignored.notes == ["user config: ignored (user_config: ignore)"]
    assert ignored.readable == []
    assert ignored.written == [private / ".claude" / "settings.json"]  # the run's own keys
    assert not (private / ".claude.json").exists()  # claude's has no keys of the run's own
    settings = _json(private / ".claude" / "settings.json")  # the run's keys only
    assert set(settings) == {"env", "permissions"}


def test_aider_conf_merged_in_yaml_model_settings_linked(user_home: Path, private: Path) -> None:
    _write(user_home / ".aider.conf.yml", "read: [CONVENTIONS.md]\npretty: true\n")
    settings = _write(user_home / ".aider.model.settings.yml", "- name: openai/x\n")

    carried, _ = _carry(AiderAdapter(), private, {"HOME": str(user_home)}, model="openai/x")

    conf = yaml.safe_load((private / ".aider.conf.yml").read_text())
    assert conf["read"] == ["CONVENTIONS.md"] and conf["pretty"] is False
    assert conf["model"] == "openai/x"
    assert os.readlink(private / ".aider.model.settings.yml") == str(settings)
    assert any("the run's own value replaced the user's for: pretty" in n for n in carried.notes)


def test_claude_config_dir_moves_the_users_files(
    user_home: Path, private: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "claude-config"
    _write(moved / ".claude.json", json.dumps({"mcpServers": MCP}))
    _write(moved / "settings.json", json.dumps({"hooks": {"Stop": []}}))
    _write(moved / "CLAUDE.md", "Moved.\n")
    _write(user_home / ".claude.json", json.dumps({"mcpServers": {"home": {}}}))  # not read
    env = {"HOME": str(user_home), "CLAUDE_CONFIG_DIR": str(moved)}

    carried, _ = _carry(ClaudeCodeAdapter(), private, env)

    assert _json(private / ".claude.json") == {"mcpServers": MCP}  # where the CLI reads it
    assert _json(private / ".claude" / "settings.json")["hooks"] == {"Stop": []}
    assert os.readlink(private / ".claude" / "CLAUDE.md") == str(moved / "CLAUDE.md")
    assert any(f"{moved}/.claude.json merged into ~/.claude.json" in n for n in carried.notes)


def test_codex_home_moves_the_users_files(user_home: Path, private: Path, tmp_path: Path) -> None:
    moved = tmp_path / "codex-home"
    _write(moved / "config.toml", 'model_reasoning_effort = "high"\n')
    _write(moved / "AGENTS.md", "Moved.\n")
    _write(user_home / ".codex" / "config.toml", 'model_reasoning_effort = "low"\n')
    env = {"HOME": str(user_home), "CODEX_HOME": str(moved)}

    _carry(CodexAdapter(), private, env)

    written = tomllib.loads((private / ".codex" / "config.toml").read_text())
    assert written["model_reasoning_effort"] == "high"
    assert os.readlink(private / ".codex" / "AGENTS.md") == str(moved / "AGENTS.md")


def test_render_is_what_a_start_writes(user_home: Path, private: Path) -> None:
    user = {"mcpServers": MCP}
    _write(user_home / ".qwen" / "settings.json", json.dumps(user))
    adapter = QwenAdapter()
    request = _request(private)
    config = adapter.build_command(request).config_files[".qwen/settings.json"]

    carry_user_config(private, adapter.build_command(request), adapter.user_files, request, {
        "HOME": str(user_home)
    })  # fmt: skip

    assert (private / ".qwen" / "settings.json").read_text() == render(config, user)


@pytest.mark.parametrize(
    ("adapter_type", "folder", "mode"),
    [(GeminiAdapter, ".gemini", "plan"), (GeminiAdapter, ".gemini", "default")]
    + [(QwenAdapter, ".qwen", mode) for mode in ("plan", "default", "auto")],
)
def test_a_read_only_approval_mode_is_not_loosened_by_the_users_allowed_tools(
    user_home: Path, private: Path, adapter_type: type[Adapter], folder: str, mode: str
) -> None:
    """``tools.allowed`` runs the tools it names without approval: the user's list would let
    an edit or shell tool write in a mode the run counts on not writing. Emptied there (and
    said), kept in a mode that writes anyway."""
    allowed = ["run_shell_command", "write_file", "edit", "replace"]
    _write(user_home / folder / "settings.json", json.dumps({"tools": {"allowed": allowed}}))
    env = {"HOME": str(user_home)}

    read_only = adapter_type({"approval_mode": mode})
    carried, _ = _carry(read_only, private, env)
    assert read_only.read_only_reason()
    assert _json(private / folder / "settings.json")["tools"]["allowed"] == []
    assert carried.notes[0].endswith("the run's own value replaced the user's for: tools.allowed")

    _carry(adapter_type({"approval_mode": "yolo"}), private, env)
    assert _json(private / folder / "settings.json")["tools"]["allowed"] == allowed


@pytest.mark.parametrize("adapter_type", [GeminiAdapter, QwenAdapter])
def test_allowed_tools_flag_is_the_approval_modes_to_set(adapter_type: type[Adapter]) -> None:
    with pytest.raises(AdapterError, match="--allowed-tools is set by the adapter itself"):
        adapter_type({"approval_mode": "plan", "extra_args": ["--allowed-tools", "write_file"]})
