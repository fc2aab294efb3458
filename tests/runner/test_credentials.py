"""The user's logins linked into a CLI's private HOME (orchestrator.runner.logins), on a real
file system: links, never copies; only the files the user has; moved directories; isolated."""

from __future__ import annotations

import os
from pathlib import Path

from adapters.aider import AiderAdapter
from adapters.claude_code import ClaudeCodeAdapter
from adapters.codex import CodexAdapter
from adapters.gemini import GeminiAdapter
from adapters.opencode import OpencodeAdapter
from adapters.qwen import QwenAdapter
from orchestrator.adapter import GCLOUD_ADC, Credential
from orchestrator.runner.login_refresh import settle_credentials, user_copies
from orchestrator.runner.logins import found_credentials, link_credentials, unlink_credentials

LOGIN = Credential(".cli/login.json", "login", moved_by="CLI_DIR")


def _file(path: Path, text: str = "secret-login-0123456789") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_login_the_user_has_is_linked_not_copied(tmp_path: Path) -> None:
    user, private = tmp_path / "user", tmp_path / "private"
    source = _file(user / ".cli" / "login.json")

    made = link_credentials(private, [LOGIN], {"HOME": str(user)})

    target = private / ".cli" / "login.json"
    assert made == [target]
    assert target.is_symlink() and os.readlink(target) == str(source)
    assert target.read_text() == source.read_text()  # the CLI reads the user's file


def test_a_login_the_user_lacks_leaves_the_private_home_alone(tmp_path: Path) -> None:
    private = tmp_path / "private"
    own = _file(private / ".cli" / "login.json", "logged in inside the private home")

    assert link_credentials(private, [LOGIN], {"HOME": str(tmp_path / "user")}) == []
    assert not own.is_symlink() and own.read_text() == "logged in inside the private home"


def test_a_moved_config_directory_is_followed(tmp_path: Path) -> None:
    moved = _file(tmp_path / "elsewhere" / "login.json")
    env = {"HOME": str(tmp_path / "user"), "CLI_DIR": str(tmp_path / "elsewhere")}

    link_credentials(tmp_path / "private", [LOGIN], env)

    assert os.readlink(tmp_path / "private" / ".cli" / "login.json") == str(moved)
    gcloud = _file(tmp_path / "gcloud" / "application_default_credentials.json")
    assert GCLOUD_ADC.source({"CLOUDSDK_CONFIG": str(tmp_path / "gcloud")}) == gcloud


def test_a_copy_the_cli_left_in_place_of_the_link_is_replaced(tmp_path: Path) -> None:
    user, private = tmp_path / "user", tmp_path / "private"
    source = _file(user / ".cli" / "login.json", "the user's login")
    _file(private / ".cli" / "login.json", "a stale copy")

    link_credentials(private, [LOGIN], {"HOME": str(user)})
    link_credentials(private, [LOGIN], {"HOME": str(user)})  # twice: nothing changes

    assert os.readlink(private / ".cli" / "login.json") == str(source)
    assert source.read_text() == "the user's login"


def test_a_directory_the_cli_made_there_is_not_replaced(tmp_path: Path) -> None:
    user, private = tmp_path / "user", tmp_path / "private"
    _file(user / ".aws" / "config")
    _file(private / ".aws" / "cli" / "cache" / "x.json")
    aws = Credential(".aws", "AWS profiles")

    assert link_credentials(private, [aws], {"HOME": str(user)}) == []
    assert (private / ".aws" / "cli" / "cache" / "x.json").exists()


def test_isolated_removes_the_links_and_nothing_else(tmp_path: Path) -> None:
    user, private = tmp_path / "user", tmp_path / "private"
    source = _file(user / ".cli" / "login.json")
    link_credentials(private, [LOGIN], {"HOME": str(user)})
    other = _file(private / ".cli" / "settings.json", "{}")

    unlink_credentials(private, [LOGIN])

    assert not (private / ".cli" / "login.json").exists() and source.exists()
    assert other.exists()


def test_found_credentials_names_paths_never_contents(tmp_path: Path) -> None:
    user = tmp_path / "user"
    _file(user / ".codex" / "auth.json")
    found = found_credentials(CodexAdapter.credentials, {"HOME": str(user)})
    assert [(c.home_path, p) for c, p in found] == [(".codex/auth.json", user / ".codex/auth.json")]


def test_each_cli_looks_where_it_keeps_its_login(tmp_path: Path) -> None:
    user = str(tmp_path)
    claude = ClaudeCodeAdapter.credentials[0]
    assert claude.source({"HOME": user}) == tmp_path / ".claude" / ".credentials.json"
    assert claude.source({"HOME": user, "CLAUDE_CONFIG_DIR": "/c"}) == Path("/c/.credentials.json")
    codex = CodexAdapter.credentials[0]
    assert codex.source({"HOME": user, "CODEX_HOME": "/x"}) == Path("/x/auth.json")
    opencode = OpencodeAdapter.credentials[0]
    assert opencode.source({"HOME": user}) == tmp_path / ".local/share/opencode/auth.json"
    assert opencode.source({"XDG_DATA_HOME": "/d"}) == Path("/d/opencode/auth.json")


def test_a_link_whose_login_is_gone_is_removed_not_left_dangling(tmp_path: Path) -> None:
    user, private = tmp_path / "user", tmp_path / "private"
    source = _file(user / ".cli" / "login.json")
    link_credentials(private, [LOGIN], {"HOME": str(user)})
    source.unlink()  # the user logged out

    assert link_credentials(private, [LOGIN], {"HOME": str(user)}) == []

    assert not os.path.lexists(private / ".cli" / "login.json")


def test_a_login_saved_anew_is_dropped_when_the_user_signed_in_again_meanwhile(
    tmp_path: Path,
) -> None:
    user, private = tmp_path / "user", tmp_path / "private"
    env = {"HOME": str(user)}
    source = _file(user / ".cli" / "login.json", "first sign-in")
    before = user_copies([LOGIN], env)
    link_credentials(private, [LOGIN], env)
    target = private / ".cli" / "login.json"
    target.unlink()
    _file(target, "the CLI's refresh")  # in place of the link, as qwen saves it
    _file(source, "the user signed in again, a longer token")

    settle_credentials(private, [LOGIN], before, env)

    assert source.read_text() == "the user signed in again, a longer token"
    assert not os.path.lexists(target)


def test_a_login_the_cli_made_where_the_user_has_none_stays(tmp_path: Path) -> None:
    user, private = tmp_path / "user", tmp_path / "private"
    env = {"HOME": str(user)}
    own = _file(private / ".cli" / "login.json", "logged in inside")

    settle_credentials(private, [LOGIN], user_copies([LOGIN], env), env)

    assert own.read_text() == "logged in inside"


def test_gemini_qwen_and_aider_look_where_they_keep_their_logins(tmp_path: Path) -> None:
    user = str(tmp_path)
    oauth, account = GeminiAdapter.credentials[:2]
    assert oauth.source({"HOME": user, "GEMINI_CLI_HOME": "/g"}) == Path(
        "/g/.gemini/oauth_creds.json"
    )
    assert account.source({"HOME": user}) == tmp_path / ".gemini" / "google_accounts.json"
    moved = {"HOME": user, "GEMINI_CLI_HOME": "/g"}
    gemini_files = [c.source(moved) for c in GeminiAdapter.credentials[2:5]]
    assert gemini_files == [
        Path("/g/.gemini/.env"),
        Path("/g/.env"),
        Path("/g/.gemini/gemini-credentials.json"),
    ]
    qwen = [c.source({"HOME": user, "QWEN_HOME": "/q"}) for c in QwenAdapter.credentials]
    assert qwen == [Path("/q/.env"), tmp_path / ".env"]  # its discontinued OAuth: not a login
    aider = [c.source({"HOME": user}) for c in AiderAdapter.credentials[:2]]
    assert aider == [tmp_path / ".env", tmp_path / ".aider" / "oauth-keys.env"]
