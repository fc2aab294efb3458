"""``council init``, as a real process on a machine of the test's own (``machine.Machine``):
fake CLIs on PATH, login files in HOME, key variables in the environment, a real git
repository. The config it writes is checked by ``council config validate`` and, for the
offline personas, run to the end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.machine import Machine, git, new_repo

SECRET = "sk-ant-oat01-never-printed-0123456789abcdef"


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path / "machine")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return new_repo(tmp_path / "repo")


def _init_json(machine: Machine, repo: Path, *args: str) -> dict[str, object]:
    done = machine.council("init", "--json", *args, cwd=repo)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _valid(machine: Machine, config: Path) -> None:
    done = machine.council("config", "validate", config, cwd=config.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_without_any_cli_the_offline_personas_land_a_task(machine: Machine, repo: Path) -> None:
    done = machine.council("init", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert "claude_code  not installed" in done.stdout
    assert "offline scripted personas stand in (alice builds, bob reviews)" in done.stdout
    assert "council doctor " in done.stdout and "council run council.yaml" in done.stdout
    config = repo / "council.yaml"
    text = config.read_text()
    assert 'repo: "."' in text and 'base_branch: "main"' in text
    assert "install codex: npm i -g @openai/codex@0.169.0" in text  # the pinned release
    _valid(machine, config)
    run = machine.council("run", config, cwd=repo, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    assert git(repo, "show", "main:COUNCIL.md").startswith("# Worked on with CLI Council")


def test_the_clis_found_are_used_by_login_and_no_secret_is_shown(
    machine: Machine, repo: Path
) -> None:
    machine.add_cli("claude", "2.1.330 (Claude Code)")
    machine.add_cli("codex", "codex-cli 0.169.0")
    machine.add_cli("gemini", "0.61.0")
    machine.add_login(".claude/.credentials.json", json.dumps({"token": SECRET}))
    machine.add_login(".gemini/oauth_creds.json", json.dumps({"refresh_token": SECRET}))
    result = _init_json(machine, repo)
    assert result["demo"] is False
    assert result["adapters"] == ["claude_code", "gemini"]
    assert (result["builder"], result["reviewer"]) == ("claude_code", "gemini")
    assert result["why"] == (
        "claude_code, gemini: installed and logged in; codex left commented out: no login found"
    )
    clis = {cli["name"]: cli for cli in result["clis"]}  # type: ignore[attr-defined]
    assert clis["claude_code"]["version"] == "2.1.330 (Claude Code)"
    assert clis["claude_code"]["logged_in"] is True
    assert "~/.claude/.credentials.json" in clis["claude_code"]["login"]
    assert clis["codex"]["found"] is True and clis["codex"]["logged_in"] is False
    assert clis["qwen"]["found"] is False
    text = (repo / "council.yaml").read_text()
    assert SECRET not in text
    # gemini logged in with Google, not a key: its adapter is told so.
    assert "auth_type: oauth-personal" in text
    # codex has no login: written commented out, with how to log in.
    assert "  # codex:\n  #   type: codex\n" in text
    assert "To log in: run `codex login`, or set CODEX_API_KEY or OPENAI_API_KEY" in text
    assert "      adapter: gemini   # another CLI reviews the work" in text
    _valid(machine, repo / "council.yaml")


def test_a_key_in_the_environment_is_a_login_named_never_shown(
    machine: Machine, repo: Path
) -> None:
    machine.add_cli("codex", "codex-cli 0.169.0")
    machine.extra["OPENAI_API_KEY"] = SECRET
    done = machine.council("init", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert "codex        codex-cli 0.169.0; logged in (OPENAI_API_KEY set)" in done.stdout
    assert "codex plans, builds and reviews" in done.stdout
    assert SECRET not in done.stdout + done.stderr + (repo / "council.yaml").read_text()
    _valid(machine, repo / "council.yaml")


def test_a_cli_found_without_any_login_leaves_the_run_to_the_personas(
    machine: Machine, repo: Path
) -> None:
    # Before: claude was declared though it had no login, and the first run failed 4 times.
    machine.add_cli("claude", "2.1.330 (Claude Code)")
    result = _init_json(machine, repo)
    assert result["adapters"] == ["alice", "bob"] and result["demo"] is True
    assert result["why"] == "no CLI found has a login (claude_code): the offline personas stand in"
    text = (repo / "council.yaml").read_text()
    assert "  # claude_code: no login found. To log in: run `claude` and type /login" in text
    assert "\n  # claude_code:\n  #   type: claude_code\n" in text  # there, commented out
    _valid(machine, repo / "council.yaml")
    shown = machine.council("init", "--force", cwd=repo)
    assert shown.returncode == 0, shown.stderr
    assert "why: no CLI found has a login (claude_code)" in shown.stdout


def test_outside_a_git_checkout_it_refuses_in_one_line(machine: Machine, tmp_path: Path) -> None:
    elsewhere = tmp_path / "not-a-repo"
    elsewhere.mkdir()
    done = machine.council("init", cwd=elsewhere)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "is not inside a git checkout" in done.stderr
    assert not (elsewhere / "council.yaml").exists()


def test_an_existing_file_is_kept_unless_forced(machine: Machine, repo: Path) -> None:
    config = repo / "council.yaml"
    config.write_text("# mine\n")
    done = machine.council("init", cwd=repo)
    assert done.returncode == 2
    assert "council.yaml already exists; pass --force to replace it" in done.stderr
    assert config.read_text() == "# mine\n"
    forced = machine.council("init", "--force", cwd=repo)
    assert forced.returncode == 0, forced.stderr
    _valid(machine, config)


def test_a_link_in_the_way_is_replaced_not_followed(
    machine: Machine, repo: Path, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere.yaml"
    target.write_text("# not to be touched\n")
    (repo / "council.yaml").symlink_to(target)
    assert machine.council("init", cwd=repo).returncode == 2
    assert machine.council("init", "--force", cwd=repo).returncode == 0
    assert not (repo / "council.yaml").is_symlink()
    assert target.read_text() == "# not to be touched\n"


def test_the_base_is_the_current_branch_and_detached_needs_base(
    machine: Machine, repo: Path
) -> None:
    git(repo, "switch", "-q", "-c", "develop")
    assert _init_json(machine, repo, "-o", "a.yaml")["base_branch"] == "develop"
    assert 'base_branch: "develop"' in (repo / "a.yaml").read_text()
    git(repo, "switch", "-q", "--detach")
    detached = machine.council("init", "-o", "b.yaml", cwd=repo)
    assert detached.returncode == 2 and "HEAD is detached" in detached.stderr
    assert "--base BRANCH" in detached.stderr
    assert _init_json(machine, repo, "-o", "b.yaml", "--base", "main")["base_branch"] == "main"


def test_from_a_subdirectory_the_config_names_the_checkout(machine: Machine, repo: Path) -> None:
    sub = repo / "docs"
    sub.mkdir()
    result = _init_json(machine, sub)
    assert result["repo"] == str(repo) and result["file"] == str(sub / "council.yaml")
    assert 'repo: ".."' in (sub / "council.yaml").read_text()
    _valid(machine, sub / "council.yaml")
    elsewhere = _init_json(machine, repo, "--output", str(repo.parent / "outside.yaml"))
    assert f"repo: {json.dumps(str(repo))}" in (repo.parent / "outside.yaml").read_text()
    assert elsewhere["next"] == [
        f"council doctor {repo.parent / 'outside.yaml'}",
        f"council run {repo.parent / 'outside.yaml'} --dry-run",
        f"council run {repo.parent / 'outside.yaml'}",
    ]


@pytest.mark.parametrize("columns", [80, 160])
def test_on_a_terminal_nothing_is_cut(machine: Machine, repo: Path, columns: int) -> None:
    machine.add_cli("codex", "codex-cli 0.169.0")
    code, text = machine.council_on_terminal("init", cwd=repo, columns=columns)
    assert code == 0, text
    assert "no login found (log in: run `codex login`, or set CODEX_API_KEY or OPENAI_API_KEY)" in (
        text
    )
    assert f"wrote council.yaml for {repo} (base branch main)" in text
    assert "…" not in text


def test_piped_the_same_lines_are_plain(machine: Machine, repo: Path) -> None:
    machine.add_cli("codex", "codex-cli 0.169.0")
    done = machine.council("init", cwd=repo)
    assert done.returncode == 0
    assert "\x1b" not in done.stdout
    lines = done.stdout.splitlines()
    assert lines[0] == "AI coding CLIs on this machine:"
    assert lines[-4] == "next:"
    assert lines[-3].startswith("  council doctor ")
