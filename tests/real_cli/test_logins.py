"""A CLI logged in with the user's account, not a key (issue 11, "their logins"): the user's
credential file reaches the CLI's private HOME as a link, the CLI uses it against the fake
model, and nothing of it is copied under `.council/`; `credentials: isolated` hides it."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from orchestrator.testing.live_scenarios import WRITE, run_scenario
from orchestrator.testing.live_targets import BUILTIN_TARGETS

TOKEN = "sk-ant-oat01-user-account-login-token-0123456789"


def _claude_login(home: Path) -> Path:
    """What `claude` writes on Linux after an account login (`/login`)."""
    credentials = home / ".claude" / ".credentials.json"
    credentials.parent.mkdir(parents=True)
    expires = int((time.time() + 86400) * 1000)
    login = {
        "claudeAiOauth": {
            "accessToken": TOKEN,
            "refreshToken": "sk-ant-ort01-user-refresh-token-0123456789",
            "expiresAt": expires,
            "scopes": ["user:inference", "user:profile"],
            "subscriptionType": "max",
        }
    }
    credentials.write_text(json.dumps(login))
    credentials.chmod(0o600)
    return credentials


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "user-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    return home


def _no_copy_under_council(repo: Path) -> None:
    for path in (repo / ".council").rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.real_cli("claude")
def test_claude_uses_the_users_account_login(
    tmp_path: Path, real_cli_binary: Path, user_home: Path
) -> None:
    credentials = _claude_login(user_home)
    target = dataclasses.replace(BUILTIN_TARGETS["claude"], env={})  # no key: the login only

    outcome = run_scenario("claude", WRITE, tmp_path, target=target, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    asked = [r for r in outcome.requests if r.protocol == "anthropic"]
    assert asked and all("authorization" in r.headers for r in asked), asked[:1]
    links = [p for p in (tmp_path / "repo" / ".council").rglob(".credentials.json")]
    assert links and all(p.is_symlink() and p.resolve() == credentials for p in links)
    _no_copy_under_council(tmp_path / "repo")


@pytest.mark.real_cli("claude")
def test_isolated_credentials_hide_the_login(
    tmp_path: Path, real_cli_binary: Path, user_home: Path
) -> None:
    _claude_login(user_home)
    target = dataclasses.replace(
        BUILTIN_TARGETS["claude"], env={}, settings={"credentials": "isolated"}
    )

    outcome = run_scenario("claude", WRITE, tmp_path, target=target, executable=real_cli_binary)

    assert not outcome.passed
    assert outcome.status == "failed" and "Not logged in" in (outcome.error or ""), outcome
    assert not [r for r in outcome.requests if r.protocol == "anthropic"]
    assert not list((tmp_path / "repo" / ".council").rglob(".credentials.json"))


@pytest.mark.real_cli("opencode")
def test_opencode_uses_the_key_of_opencode_auth_login(
    tmp_path: Path, real_cli_binary: Path, user_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `opencode auth login` writes for the provider the run config names.
    auth = user_home / ".local" / "share" / "opencode" / "auth.json"
    auth.parent.mkdir(parents=True)
    auth.write_text(json.dumps({"fake": {"type": "api", "key": TOKEN}}))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    target = dataclasses.replace(BUILTIN_TARGETS["opencode"], env={})

    outcome = run_scenario(
        "opencode",
        dataclasses.replace(WRITE, api_key=TOKEN),  # the model takes only the login's key
        tmp_path,
        target=target,
        executable=real_cli_binary,
    )

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    _no_copy_under_council(tmp_path / "repo")


@pytest.mark.real_cli("qwen")
def test_qwen_without_a_key_is_auth_required_at_once(
    tmp_path: Path, real_cli_binary: Path, user_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: qwen's "error_during_execution" was a generic failure, retried. (Its discontinued
    # qwen-oauth is refused by `council config validate`, before any run: test_cli_config.py.)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    target = dataclasses.replace(BUILTIN_TARGETS["qwen"], env={})
    scenario = dataclasses.replace(
        WRITE,
        expected_status="failed",
        expected_failure="auth_required",
        expected_files={"hello.txt": None},
        config={"retry": {"max_retries": 3, "backoff_initial": 0.05, "backoff_max": 0.1}},
    )

    outcome = run_scenario("qwen", scenario, tmp_path, target=target, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    assert outcome.error is not None and "Missing API key" in outcome.error, outcome.error
    assert outcome.requests == []  # it never reached the model
    events = (tmp_path / "repo" / ".council" / "events.jsonl").read_text().splitlines()
    started = [line for line in events if json.loads(line)["type"] == "phase.started"]
    assert len(started) == 1  # not retried, though three retries were allowed


@pytest.mark.real_cli("qwen")
def test_qwen_speaks_the_responses_api_with_auth_type_openai_responses(
    tmp_path: Path, real_cli_binary: Path
) -> None:
    base = BUILTIN_TARGETS["qwen"]
    target = dataclasses.replace(
        base, options=lambda model: {**base.options(model), "auth_type": "openai-responses"}
    )

    outcome = run_scenario("qwen", WRITE, tmp_path, target=target, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    asked = {r.protocol for r in outcome.requests if r.protocol}
    assert asked == {"responses"}, asked


@pytest.mark.real_cli("qwen")
def test_qwen_uses_the_key_in_the_users_qwen_env_file(
    tmp_path: Path, real_cli_binary: Path, user_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (user_home / ".qwen").mkdir()
    (user_home / ".qwen" / ".env").write_text(f"OPENAI_API_KEY={TOKEN}\n")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("QWEN_HOME", raising=False)
    target = dataclasses.replace(BUILTIN_TARGETS["qwen"], env={})

    outcome = run_scenario(
        "qwen",
        dataclasses.replace(WRITE, api_key=TOKEN),  # the model takes only the file's key
        tmp_path,
        target=target,
        executable=real_cli_binary,
    )

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    _no_copy_under_council(tmp_path / "repo")


@pytest.mark.real_cli("gemini")
def test_gemini_uses_the_key_in_the_users_gemini_env_file(
    tmp_path: Path, real_cli_binary: Path, user_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gemini's documented ~/.gemini/.env: no key in the environment, only in that file.
    (user_home / ".gemini").mkdir()
    (user_home / ".gemini" / ".env").write_text(f'GEMINI_API_KEY="{TOKEN}"\n')
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_CLI_HOME"):
        monkeypatch.delenv(name, raising=False)
    target = dataclasses.replace(BUILTIN_TARGETS["gemini"], env={})

    outcome = run_scenario(
        "gemini",
        dataclasses.replace(WRITE, api_key=TOKEN),  # the model takes only the file's key
        tmp_path,
        target=target,
        executable=real_cli_binary,
    )

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    assert {r.protocol for r in outcome.requests if r.protocol} == {"gemini"}
    links = list((tmp_path / "repo" / ".council").rglob(".env"))
    assert links and all(p.is_symlink() for p in links)
    _no_copy_under_council(tmp_path / "repo")


@pytest.mark.real_cli("codex")
def test_codex_uses_the_key_of_codex_login_with_a_custom_endpoint(
    tmp_path: Path, real_cli_binary: Path, user_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `codex login --with-api-key` writes. Before: the generated provider named only
    # env_key, so codex never read this file with base_url, while doctor reported it "OK".
    auth = user_home / ".codex" / "auth.json"
    auth.parent.mkdir(parents=True)
    auth.write_text(json.dumps({"OPENAI_API_KEY": TOKEN, "tokens": None, "last_refresh": None}))
    auth.chmod(0o600)
    for name in ("OPENAI_API_KEY", "CODEX_API_KEY", "CODEX_HOME"):
        monkeypatch.delenv(name, raising=False)
    target = dataclasses.replace(BUILTIN_TARGETS["codex"], env={})

    outcome = run_scenario(
        "codex",
        dataclasses.replace(WRITE, api_key=TOKEN),  # the model takes only the login's key
        tmp_path,
        target=target,
        executable=real_cli_binary,
    )

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    _no_copy_under_council(tmp_path / "repo")
