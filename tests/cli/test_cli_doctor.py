"""``council doctor``, as a real process on a machine of the test's own (``machine.Machine``):
real git repositories, fake CLIs on PATH, logins in HOME, a real state store, and a real
PostgreSQL server for the team database's checks (``postgres`` tier)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from orchestrator.run.doctor.checklist import Status
from orchestrator.run.doctor.cli_checks import cli_checks
from orchestrator.run.setup.cli_detect import CliState, Login
from orchestrator.run.setup.cli_fixes import PINNED
from orchestrator.state import FileStateStore
from orchestrator.state.postgres.schema import MIGRATIONS
from tests.support.machine import Machine, git, new_repo
from tests.support.pg_tier import TestDatabase

SECRET = "sk-ant-api03-never-printed-0123456789abcdef"


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path / "machine")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return new_repo(tmp_path / "repo")


def _config(repo: Path, adapters: str, default: str, extra: str = "") -> Path:
    config = repo / "council.yaml"
    config.write_text(
        f"repo: .\nadapters:\n{adapters}default_adapter: {default}\n{extra}"
        "tasks:\n  - {id: one, prompt: Do one thing.}\n"
    )
    return config


def _scripted(repo: Path, extra: str = "") -> Path:
    return _config(repo, "  alice: {type: scripted}\n", "alice", extra)


def _doctor(machine: Machine, cwd: Path, *args: object, **env: str) -> tuple[int, dict[str, Any]]:
    done = machine.council("doctor", *args, "--json", cwd=cwd, env=env)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def _by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in result["checks"]}


def test_the_offline_starter_config_passes_every_check(machine: Machine, repo: Path) -> None:
    assert machine.council("init", cwd=repo).returncode == 0
    done = machine.council("doctor", cwd=repo)  # ./council.yaml, found by itself
    assert done.returncode == 0, done.stdout + done.stderr
    # This machine has no bubblewrap on the test's PATH: a warning, with its fix, not a failure.
    lines = [line for line in done.stdout.splitlines() if not line.startswith("     fix: ")]
    assert lines[1].startswith("WARN sandbox: no sandbox: bubblewrap (bwrap) is not installed")
    assert all(line.startswith("OK   ") for line in lines[:1] + lines[2:-1]), done.stdout
    assert lines[-1] == f"all {len(lines) - 1} checks passed, 1 with a warning"
    names = [line.split(":")[0][5:] for line in lines[:-1]]
    assert names == [
        "git",
        "sandbox",
        "repository",
        "base branch",
        "base checkout",
        ".council",
        "alice",
        "bob",
        "state store",
    ]
    assert "OK   state store: " in done.stdout and "no run recorded yet" in done.stdout
    code, result = _doctor(machine, repo, "council.yaml")
    assert code == 0 and result["ok"] is True and result["file"] == "council.yaml"
    groups = {check["group"] for check in result["checks"]}
    assert groups == {"git", "sandbox", "repository", "cli", "state"}


def test_a_git_older_than_the_merge_queue_needs(machine: Machine, repo: Path) -> None:
    real = (machine.bin / "git").resolve()
    (machine.bin / "git").unlink()
    (machine.bin / "git").write_text(
        "#!/bin/sh\n"
        'for arg in "$@"; do [ "$arg" = --version ] && { echo "git version 2.30.8"; exit 0; }; '
        "done\n"
        f'exec {real} "$@"\n'
    )
    (machine.bin / "git").chmod(0o755)
    code, result = _doctor(machine, repo, _scripted(repo))
    check = _by_name(result)["git"]
    assert code == 1 and check["status"] == "fail"
    assert check["detail"].startswith("git version 2.30.8: older than 2.38")
    assert check["fix"] == "upgrade git to 2.38 or newer"
    assert _by_name(result)["base branch"]["status"] == "ok"  # the rest is still checked


def test_a_missing_cli_and_a_missing_login_each_get_their_fix(machine: Machine, repo: Path) -> None:
    machine.add_cli("claude", "2.1.330 (Claude Code)")
    config = _config(repo, "  claude_code: {}\n  codex: {}\n", "claude_code")
    done = machine.council("doctor", config, cwd=repo)
    assert done.returncode == 1
    out = done.stdout
    assert f"OK   claude_code: 2.1.330 (Claude Code) ({machine.bin / 'claude'})" in out
    assert (
        "FAIL claude_code login: no login found\n"
        "     fix: log in: run `claude` and type /login, or set ANTHROPIC_API_KEY\n"
    ) in out
    assert (
        "FAIL codex: 'codex' is not on PATH\n"
        "     fix: install codex: npm i -g @openai/codex@0.169.0, or set "
        "adapters.codex.executable\n"
    ) in out
    assert out.splitlines()[-1].startswith("2 of ") and out.endswith(" checks failed\n")
    # A key in the environment is a login: named, never shown.
    code, result = _doctor(machine, repo, config, ANTHROPIC_API_KEY=SECRET)
    login = _by_name(result)["claude_code login"]
    assert login["status"] == "ok" and login["detail"] == "ANTHROPIC_API_KEY set"
    assert SECRET not in json.dumps(result)
    assert code == 1  # codex is still missing


def test_a_login_file_counts_and_isolated_credentials_do_not_see_it(
    machine: Machine, repo: Path
) -> None:
    machine.add_cli("codex", "codex-cli 0.169.0")
    machine.add_login(".codex/auth.json", json.dumps({"OPENAI_API_KEY": SECRET}))
    config = _config(repo, "  codex: {}\n", "codex")
    code, result = _doctor(machine, repo, config)
    assert code == 0
    assert _by_name(result)["codex login"]["detail"].endswith("~/.codex/auth.json")
    isolated = _config(repo, "  codex: {credentials: isolated}\n", "codex")
    code, result = _doctor(machine, repo, isolated)
    assert code == 1 and _by_name(result)["codex login"]["status"] == "fail"
    assert SECRET not in json.dumps(result)


def test_codex_with_a_base_url_reports_the_login_its_run_uses(machine: Machine, repo: Path) -> None:
    # With base_url, codex sends the endpoint's key variable when the run has it, and the
    # `codex login` only without it (its provider then says requires_openai_auth).
    machine.add_cli("codex", "codex-cli 0.169.0")
    machine.add_login(".codex/auth.json", json.dumps({"OPENAI_API_KEY": SECRET}))
    config = _config(repo, "  codex: {options: {base_url: 'http://127.0.0.1:9/v1'}}\n", "codex")
    code, result = _doctor(machine, repo, config)
    detail = _by_name(result)["codex login"]["detail"]
    assert code == 0 and detail.endswith("(requires_openai_auth): ~/.codex/auth.json"), detail
    code, result = _doctor(machine, repo, config, OPENAI_API_KEY=SECRET)
    assert code == 0 and _by_name(result)["codex login"]["detail"] == "OPENAI_API_KEY set"
    assert SECRET not in json.dumps(result)


def test_a_cli_whose_version_command_fails(machine: Machine, repo: Path) -> None:
    machine.add_cli("gemini", "Error: cannot find module", version_exit=1)
    code, result = _doctor(machine, repo, _config(repo, "  gemini: {}\n", "gemini"))
    check = _by_name(result)["gemini"]
    assert code == 1 and check["status"] == "fail"
    assert check["detail"].endswith("but `gemini --version` failed")
    assert "npm i -g @google/gemini-cli@0.61.0" in check["fix"]


def test_a_version_command_that_times_out_is_not_called_broken() -> None:
    # Before: "failed" and "reinstall" for a gemini that took 11 s to start under load.
    login = Login(needed=False, found=False, where="-")
    slow = CliState("gemini", "gemini", "gemini", "/opt/bin/gemini", None, login, True, 30.0)
    (check,) = cli_checks(slow, configured=True)
    assert check.status == Status.WARN
    assert check.detail == "found at /opt/bin/gemini, but `gemini --version` timed out after 30 s"
    assert check.fix is not None and "reinstall" not in check.fix


def test_a_dirty_checkout_of_the_base_fails_with_its_paths(machine: Machine, repo: Path) -> None:
    config = _scripted(repo)
    (repo / "README.md").write_text("changed, not committed\n")
    code, result = _doctor(machine, repo, config)
    check = _by_name(result)["base checkout"]
    assert code == 1 and check["status"] == "fail"
    assert check["detail"] == f"uncommitted changes to README.md in {repo}"
    assert check["fix"].startswith("commit or stash them there (git stash)")
    git(repo, "stash", "-q")
    code, result = _doctor(machine, repo, config)
    assert code == 0 and _by_name(result)["base checkout"]["status"] == "ok"


def test_a_linked_council_directory_is_refused_not_followed(
    machine: Machine, repo: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "state").mkdir(parents=True)
    (repo / ".council").symlink_to(elsewhere)
    code, result = _doctor(machine, repo, _scripted(repo))
    council, store = _by_name(result)[".council"], _by_name(result)["state store"]
    assert code == 1 and council["status"] == "fail" and store["status"] == "fail"
    assert council["detail"] == f"{repo / '.council'} is a symbolic link (to {elsewhere})"
    assert council["fix"].startswith("replace the link with a real directory")
    assert list(elsewhere.iterdir()) == [elsewhere / "state"]  # nothing written through it


def test_a_base_branch_that_does_not_exist(machine: Machine, repo: Path) -> None:
    _scripted(repo, "base_branch: release\n")
    code, result = _doctor(machine, repo, "council.yaml")
    check = _by_name(result)["base branch"]
    assert code == 1 and check["detail"] == "'release' does not exist"
    assert check["fix"] == (
        "create it (`git branch release`), or set base_branch: in council.yaml to an "
        "existing branch"
    )


def test_without_a_config_outside_a_checkout_and_without_clis(
    machine: Machine, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = machine.council("doctor", cwd=elsewhere)
    assert done.returncode == 1
    assert "no council.yaml here" in done.stderr
    assert done.stdout.startswith("OK   git: git version ")
    assert "FAIL repository: " in done.stdout and "is not inside a git checkout" in done.stdout
    assert "FAIL AI coding CLIs: none found on PATH" in done.stdout
    assert "meanwhile `council demo` shows a whole run with offline stand-ins" in done.stdout


def test_without_a_config_the_clis_found_are_checked(machine: Machine, repo: Path) -> None:
    machine.add_cli("claude", "2.1.330 (Claude Code)")
    machine.add_login(".claude/.credentials.json", json.dumps({"token": SECRET}))
    code, result = _doctor(machine, repo)
    names = _by_name(result)
    assert code == 0 and result["file"] is None
    assert names["claude_code"]["detail"].startswith("2.1.330 (Claude Code)")
    assert names["claude_code login"]["status"] == "ok"
    assert "codex" not in names  # not installed, not configured: nothing to check
    assert names["base branch"]["detail"].startswith("'main' at ")


def test_a_bad_config_exits_2_with_each_error_on_its_line(machine: Machine, repo: Path) -> None:
    config = repo / "council.yaml"
    config.write_text(
        "repo: .\nadapters:\n  alice: {type: scripted}\ndefault_adapter: alice\n"
        "tasks:\n  - {id: one, prompt: x, priorty: 3}\n  - {id: two, prompt: y, timeout: soon}\n"
    )
    done = machine.council("doctor", "--json", cwd=repo)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith("council.yaml:6: tasks[0].priorty: ")
    assert lines[1].startswith("council.yaml:7: tasks[1].timeout: ")


def test_a_damaged_record_without_history_fails_the_store(machine: Machine, repo: Path) -> None:
    async def put() -> None:
        async with FileStateStore.for_repo(repo) as store:
            await store.put_record("notes", "one", {"n": 1})

    anyio.run(put)
    config = _scripted(repo)
    code, result = _doctor(machine, repo, config)
    assert code == 0 and _by_name(result)["state store"]["detail"].endswith("0 runs recorded")
    (repo / ".council/state/records/notes/one/current.json").write_text("{torn")
    code, result = _doctor(machine, repo, config)
    check = _by_name(result)["state store"]
    assert code == 1 and check["status"] == "fail"
    assert "1 damaged record(s) without a good version" in check["detail"]
    assert "notes/one" in check["detail"] and "council checkpoint restore" in check["fix"]


def test_an_unreachable_database_names_it_and_says_what_to_do(machine: Machine, repo: Path) -> None:
    dsn = "postgresql://council:hunter2-secret@127.0.0.1:9/team"  # the discard port: refused
    config = _scripted(repo, f"state: {{backend: postgresql, dsn: '{dsn}'}}\n")
    code, result = _doctor(machine, repo, config)
    check = _by_name(result)["database"]
    assert code == 1 and check["status"] == "fail"
    assert check["detail"].startswith(
        "cannot reach the state database postgresql://council@127.0.0.1:9/team: "
    )
    assert "hunter2" not in json.dumps(result)
    assert "council db up" in check["fix"] and f"state.dsn in {config}" in check["fix"]


@pytest.mark.postgres
def test_the_database_schema_version_is_checked(
    machine: Machine, repo: Path, pg_server: TestDatabase, pg_dsn: str
) -> None:
    config = _scripted(repo, f"state: {{backend: postgresql, dsn: '{pg_dsn}'}}\n")
    code, result = _doctor(machine, repo, config)
    check = _by_name(result)["database"]
    assert code == 0, result
    assert check["detail"].endswith(f"reachable, schema version {len(MIGRATIONS)}")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO council.schema_migrations (version) VALUES (99)")
    code, result = _doctor(machine, repo, config)
    check = _by_name(result)["database"]
    assert (
        code == 1
        and f"schema version 99 is newer than this release's ({len(MIGRATIONS)})" in check["detail"]
    )
    assert check["fix"] == "upgrade cli-council here to the release the team uses"


@pytest.mark.postgres
def test_a_database_without_the_schema_is_left_to_the_first_run(
    machine: Machine, repo: Path, pg_server: TestDatabase, pg_dsn: str
) -> None:
    name = "doctor_empty_" + pg_dsn.rsplit("/", 1)[1]
    empty = pg_server.cluster.url(name)
    with pg_server.admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        config = _scripted(repo, f"state: {{backend: postgresql, dsn: '{empty}'}}\n")
        code, result = _doctor(machine, repo, config)
        assert code == 0, result
        assert _by_name(result)["database"]["detail"].endswith("the first run makes the schema")
        with psycopg.connect(empty, autocommit=True) as conn:
            found = conn.execute("SELECT to_regnamespace('council')").fetchone()
        assert found == (None,)  # looking created nothing
    finally:
        pg_server.drop(empty)


def test_live_runs_each_cli_against_the_fake_model(machine: Machine, repo: Path) -> None:
    # This claude answers --version and fails everything else: it cannot write anything.
    machine.add_cli("claude", "2.1.330 (Claude Code)")
    config = _config(repo, "  claude_code: {}\n  alice: {type: scripted}\n", "alice")
    code, result = _doctor(machine, repo, config, "--live", ANTHROPIC_API_KEY=SECRET)
    check = _by_name(result)["claude_code works"]
    assert code == 1 and check["status"] == "fail"
    assert check["detail"].startswith("2.1.330 (Claude Code): ")
    assert check["fix"] == (
        "this release does not work with CLI Council: install claude: npm i -g "
        f"@anthropic-ai/claude-code@{PINNED['claude'].version} (the release tested)"
    )
    assert "alice works" not in _by_name(result)  # the scripted stand-in has no live check
    assert SECRET not in json.dumps(result)


@pytest.mark.parametrize("columns", [80, 160])
def test_on_a_terminal_a_checklist_with_every_fix_whole(
    machine: Machine, repo: Path, columns: int
) -> None:
    config = _config(repo, "  codex: {}\n  alice: {type: scripted}\n", "alice")
    code, text = machine.council_on_terminal("doctor", config, cwd=repo, columns=columns)
    assert code == 1, text
    lines = text.splitlines()
    for title in ("git", "repository", "CLIs", "state store"):
        assert title in lines
    assert any(line.startswith("  ✓ git ") for line in lines)
    assert any(line.startswith("  ✗ codex ") and "'codex' is not on PATH" in line for line in lines)
    fix = "fix: install codex: npm i -g @openai/codex@0.169.0, or set adapters.codex.executable"
    assert any(line.strip() == fix for line in lines), text
    assert re.fullmatch(r"1 of \d+ checks failed", lines[-1]), lines[-1]
    assert "…" not in text


def test_piped_every_line_says_its_verdict(machine: Machine, repo: Path) -> None:
    config = _config(repo, "  codex: {}\n  alice: {type: scripted}\n", "alice")
    done = machine.council("doctor", config, cwd=repo)
    assert done.returncode == 1 and "\x1b" not in done.stdout
    for line in done.stdout.splitlines()[:-1]:
        assert line[:5] in ("OK   ", "WARN ", "FAIL ", "     "), line
