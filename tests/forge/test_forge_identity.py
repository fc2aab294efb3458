"""Which token and which repository the forge uses: the token's order of precedence (config,
GH_TOKEN, GITHUB_TOKEN, `gh auth token`), the origin remote's URL in its forms, and the run
config's ``forge:`` section."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orchestrator.config.load import parse_config
from orchestrator.errors import ConfigError, ForgeAuthError, UsageError
from orchestrator.forge.identity import (
    RemoteRepo,
    api_url_for,
    origin_repo,
    parse_remote_url,
    resolve_token,
)
from orchestrator.safety import secret_mask
from tests.support.merge_repo import git, init_repo

TASKS = "tasks:\n  - id: a\n    prompt: do it\n"


async def test_the_configured_token_wins_and_expands_references(tmp_path: Path) -> None:
    environ = {"GH_TOKEN": "gh-token-value-1", "TEAM_TOKEN": "team-token-value"}
    token = await resolve_token("${TEAM_TOKEN}", environ, cwd=tmp_path, gh=None)
    assert token == "team-token-value"
    assert secret_mask.names()["team-token-value"] == "forge.token"


async def test_gh_token_then_github_token(tmp_path: Path) -> None:
    both = {"GH_TOKEN": "gh-token-value-1", "GITHUB_TOKEN": "github-token-value"}
    assert await resolve_token(None, both, cwd=tmp_path, gh=None) == "gh-token-value-1"
    only = {"GITHUB_TOKEN": "github-token-value"}
    assert await resolve_token(None, only, cwd=tmp_path, gh=None) == "github-token-value"


async def test_an_unset_reference_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ForgeAuthError, match=r"\$\{MISSING_TOKEN\}, which is not set"):
        await resolve_token("${MISSING_TOKEN}", {}, cwd=tmp_path, gh=None)


async def test_gh_cli_is_asked_last(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_gh = bin_dir / "gh"
    fake_gh.write_text('#!/bin/sh\n[ "$1 $2" = "auth token" ] && echo gho_fromTheGhCli123\n')
    fake_gh.chmod(fake_gh.stat().st_mode | stat.S_IXUSR)
    environ = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path)}
    assert await resolve_token(None, environ, cwd=tmp_path) == "gho_fromTheGhCli123"


async def test_no_token_anywhere_says_where_to_put_one(tmp_path: Path) -> None:
    environ = {"PATH": str(tmp_path / "empty"), "HOME": str(tmp_path)}  # no gh there
    with pytest.raises(ForgeAuthError) as caught:
        await resolve_token(None, environ, cwd=tmp_path)
    message = str(caught.value)
    assert "GH_TOKEN" in message and "GITHUB_TOKEN" in message and "gh auth login" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/octo/widgets",
        "https://github.com/octo/widgets.git",
        "https://user@github.com/octo/widgets.git/",
        "git@github.com:octo/widgets.git",
        "git@github.com:octo/widgets",
        "ssh://git@github.com/octo/widgets.git",
        "ssh://git@github.com:22/octo/widgets",
    ],
)
def test_origin_urls_in_every_form(url: str) -> None:
    assert parse_remote_url(url) == RemoteRepo("github.com", "octo", "widgets")


def test_enterprise_hosts_get_their_api() -> None:
    remote = parse_remote_url("git@ghe.example.com:team/tool.git")
    assert (remote.host, remote.full_name) == ("ghe.example.com", "team/tool")
    assert api_url_for(remote.host) == "https://ghe.example.com/api/v3"
    assert api_url_for("github.com") == "https://api.github.com"


@pytest.mark.parametrize("url", ["/srv/git/widgets.git", "https://github.com/octo", "nonsense"])
def test_urls_naming_no_repository_are_refused(url: str) -> None:
    with pytest.raises(UsageError, match="remote URL"):
        parse_remote_url(url)


def test_the_origin_remote_of_a_checkout(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", checked_out=True)
    with pytest.raises(UsageError, match="no remote 'origin'"):
        origin_repo(repo)
    git(repo, "remote", "add", "origin", "git@github.com:octo/widgets.git")
    assert origin_repo(repo).full_name == "octo/widgets"


def test_the_forge_section_is_optional_and_typed(tmp_path: Path) -> None:
    assert parse_config(TASKS, base_dir=tmp_path).forge is None
    text = (
        "forge:\n  repo: octo/widgets\n  api_url: https://ghe.example.com/api/v3/\n"
        "  token: ${TEAM_TOKEN}\n" + TASKS
    )
    forge = parse_config(text, base_dir=tmp_path).forge
    assert forge is not None
    assert (forge.type, forge.repo, forge.api_url, forge.token) == (
        "github",
        "octo/widgets",
        "https://ghe.example.com/api/v3",
        "${TEAM_TOKEN}",
    )


@pytest.mark.parametrize(
    ("section", "line", "message"),
    [
        ("forge:\n  type: Git Lab\n", 2, "forge.type"),
        ("forge:\n  options: {x: 1}\n", 2, "github takes none"),
        ("forge:\n  repo: widgets\n", 2, "is not OWNER/NAME"),
        ("forge:\n  api_url: ftp://example.com\n", 2, "is not an http(s) URL"),
        ("forge:\n  api_url: https://u:p@example.com\n", 2, "carries no credentials"),
        ("forge:\n  token: ''\n", 2, "forge.token"),
        ("forge:\n  tokne: x\n", 2, "forge.tokne"),
    ],
)
def test_a_bad_forge_section_is_refused_at_its_line(
    tmp_path: Path, section: str, line: int, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(section + TASKS, source="run.yaml", base_dir=tmp_path)
    text = str(caught.value)
    assert f"run.yaml:{line}:" in text and message in text


def test_an_unset_token_reference_is_named_when_the_environment_is_checked(
    tmp_path: Path,
) -> None:
    text = "forge:\n  token: ${NOT_SET_TOKEN}\n" + TASKS
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="run.yaml", base_dir=tmp_path, environ={})
    assert "run.yaml:2: forge.token: ${NOT_SET_TOKEN} is not set" in str(caught.value)
    parse_config(text, base_dir=tmp_path, environ={"NOT_SET_TOKEN": "x"})


async def test_connect_takes_what_the_config_leaves_out_from_the_checkout(tmp_path: Path) -> None:
    from orchestrator.config.forge import ForgeConfig
    from orchestrator.forge.connect import connect
    from orchestrator.testing.fake_github import FakeGitHub
    from tests.support.forge_helpers import OWNER, REPO, TOKEN, bare_repo

    checkout = init_repo(tmp_path / "checkout", checked_out=True)
    git(checkout, "remote", "add", "origin", f"git@ghe.example.com:{OWNER}/{REPO}.git")
    with FakeGitHub(bare_repo(tmp_path), owner=OWNER, repo=REPO, token=TOKEN) as gh:
        number = gh.create_issue("From the tracker")
        config = ForgeConfig(api_url=gh.api_url, token="${MY_TOKEN}")
        forge = await connect(config, checkout, {"MY_TOKEN": TOKEN}, gh=None)
        assert forge.repo == f"{OWNER}/{REPO}"
        assert (await forge.get_issue(number)).title == "From the tracker"

    defaults = ForgeConfig()
    with pytest.raises(ForgeAuthError):
        await connect(defaults, checkout, {}, gh=None)
    # the repository and the API from the origin remote alone, before any request is sent
    made = await connect(defaults, checkout, {"GITHUB_TOKEN": "ghs_someTokenValue"}, gh=None)
    assert repr(made) == (
        f"GitHubForge(repo='{OWNER}/{REPO}', api_url='https://ghe.example.com/api/v3')"
    )
