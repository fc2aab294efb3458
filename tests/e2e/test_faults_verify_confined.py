"""Code a CLI wrote runs as confined as the CLI: a ``council run`` whose CLI
(``fault_clis/verify_logins.py``) writes a test of its own that the run config's verify command
runs. The test tries to read eleven logins planted in the user's HOME and to write the user's
``~/.cache``.

Under the sandbox (as root, and as an unprivileged user through ``setpriv``) none is readable
and nothing is written: the user's HOME is hidden whole, the test's HOME is the session's
private one, and the task lands. Without a sandbox only the environment is private (HOME and
the XDG directories in the session's private HOME), the test reads the logins by their paths
and prints them, fails, and what it printed is masked in everything stored and in the comment
posted on the task's GitHub issue. In no case is a planted secret in any git object, any file
under ``.council/``, the run's output or a forge post.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.testing.fake_github import FakeGitHub
from tests.support.canary import leaks
from tests.support.fault_helpers import COUNCIL, TASK, FaultRun, Finished
from tests.support.forge_helpers import OWNER, REPO, TOKEN
from tests.support.remote_repo import make_team
from tests.support.spare_user import as_users, hand_over, user_dir
from tests.support.timing import patience

CACHE_KEPT = "the user's own cache\n"


def plant_logins(home: Path) -> dict[str, str]:
    """Eleven logins, as the tools that keep them write them, each holding a fresh value; the
    values by the login's path."""
    salt = os.urandom(6).hex()
    values = {
        ".vault-token": f"hvs.CAES{salt}Vault0123456789abcdef",
        ".bash_history": f"ghp_{salt}History0123456789abcdefAB",
        ".cargo/credentials.toml": f"cio{salt}Cargo0123456789abcdefg",
        ".config/rclone/rclone.conf": f"Rc{salt}lone+secret/key",
        ".terraform.d/credentials.tfrc.json": f"AbCdEf12345678.atlasv1.{salt}" + "T" * 60,
        ".config/pip/pip.conf": f"Pip{salt}pass",
        ".aws/credentials": f"Aws{salt}/SecretAccessKey+Q",
        ".netrc": f"Netrc{salt}pw",
        ".docker/config.json": f"ZG9ja2VyOnB{salt}hc3N3b3Jk",
        # Last: what a failing test prints last is what its error quotes.
        ".ssh/id_ed25519": f"b3BlbnNzaC1rZXktdjE{salt}AAAAAAABAAAAMwAAAAtzc2gtZW",
        ".pgpass": f"Pg{salt}pw9",
    }
    files = {
        ".pgpass": f"db.internal:5432:prod:alice:{values['.pgpass']}\n",
        ".vault-token": values[".vault-token"],
        ".bash_history": f"ls\nexport GITHUB_TOKEN={values['.bash_history']}\ngit push\n",
        ".cargo/credentials.toml": f'[registry]\ntoken = "{values[".cargo/credentials.toml"]}"\n',
        ".config/rclone/rclone.conf": "[s3]\ntype = s3\nsecret_access_key = "
        f"{values['.config/rclone/rclone.conf']}\n",
        ".terraform.d/credentials.tfrc.json": json.dumps(
            {
                "credentials": {
                    "app.terraform.io": {"token": values[".terraform.d/credentials.tfrc.json"]}
                }
            }
        ),
        ".config/pip/pip.conf": "[global]\nindex-url = https://alice:"
        f"{values['.config/pip/pip.conf']}@pypi.internal/simple\n",
        ".ssh/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        f"{values['.ssh/id_ed25519']}\n-----END OPENSSH PRIVATE KEY-----\n",
        ".aws/credentials": "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
        f"aws_secret_access_key = {values['.aws/credentials']}\n",
        ".netrc": f"machine api.internal login alice password {values['.netrc']}\n",
        ".docker/config.json": json.dumps(
            {"auths": {"registry.internal": {"auth": values[".docker/config.json"]}}}
        ),
    }
    for relative, text in files.items():
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o600)
    (home / ".cache").mkdir()
    (home / ".cache" / "kept").write_text(CACHE_KEPT)
    return values


def logins_run(
    base: Path, sandbox: str | dict[str, Any], *, fails: bool = False
) -> tuple[FaultRun, dict[str, str]]:
    """The run, and the values planted in the user's HOME (``FAULT_USER_HOME``)."""
    home = base / "user-home"
    home.mkdir()
    values = plant_logins(home)
    run = FaultRun(base, "verify_logins.py", sandbox=sandbox)
    run.env = {
        "FAULT_USER_HOME": str(home),
        "FAULT_LOGINS": ":".join(values),
        "FAULT_VERIFY_FAILS": "1" if fails else "0",
    }
    config = run.config()
    config["verify"] = [[sys.executable, "check_logins.py"]]
    run.config_path.write_text(json.dumps(config, indent=2))
    return run, values


def verify_result(run: FaultRun) -> dict[str, Any]:
    """What the test the CLI wrote said of itself (``result.json`` in the HOME it was given:
    the session's private one)."""
    (found,) = (run.council_dir / "command-homes").glob("*/result.json")
    return dict(json.loads(found.read_text()))


def assert_no_secret_anywhere(run: FaultRun, finished: Finished, values: dict[str, str]) -> None:
    assert leaks(run.repo, values) == []  # git objects, every file under .council/
    for name, value in values.items():
        assert value.encode() not in finished.stdout + finished.stderr, name


def assert_private_home(run: FaultRun, env: dict[str, str | None]) -> None:
    homes = run.council_dir / "command-homes"
    home = Path(str(env["HOME"]))
    assert home.parent == homes, env
    assert env["XDG_CONFIG_HOME"] == f"{home}/.config"
    assert env["XDG_CACHE_HOME"] == f"{home}/.cache"
    assert env["XDG_DATA_HOME"] == f"{home}/.local/share"
    assert env["TMPDIR"] == f"{home}/tmp"


def assert_confined(run: FaultRun, finished: Finished, values: dict[str, str]) -> None:
    task = finished.task()
    assert task["status"] == "done", task
    seen = verify_result(run)
    assert seen["read"] == [], seen  # none of the eleven, by path or through HOME
    assert seen["wrote"] == ["given:.cache/x"], seen  # its own cache only
    assert_private_home(run, seen["env"])
    user_cache = Path(run.env["FAULT_USER_HOME"]) / ".cache"
    assert sorted(p.name for p in user_cache.iterdir()) == ["kept"]
    assert (user_cache / "kept").read_text() == CACHE_KEPT
    assert (Path(str(seen["env"]["XDG_CACHE_HOME"])) / "x").read_text() == "escaped"
    assert run.on_main("work.txt") and run.on_main("check_logins.py")
    assert_no_secret_anywhere(run, finished, values)


def run_as(run: FaultRun, uid: int | None, *, timeout: float = 90.0) -> Finished:
    """``council run --json``, its HOME the planted one: as this process's user (``None``), or
    as ``uid`` through ``setpriv``, the run's files handed over to it first and back after."""
    become: list[str] = []
    if uid is not None:
        hand_over(run.tmp_path, uid)
        become = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    env = {**os.environ, "HOME": run.env["FAULT_USER_HOME"], "COUNCIL_DISABLE_PLUGINS": "1"}
    argv = [*become, *COUNCIL, "run", str(run.config_path), "--json"]
    done = subprocess.run(
        argv, cwd=run.tmp_path, env=env, capture_output=True, timeout=patience(timeout)
    )
    return Finished(done.returncode, done.stdout, done.stderr, 0.0, 0)


@pytest.mark.sandbox
@pytest.mark.parametrize("uid", as_users())
def test_a_test_the_cli_wrote_reaches_no_login_of_the_user(tmp_path: Path, uid: int | None) -> None:
    with user_dir(uid, tmp_path) as base:
        # The user's HOME is under /tmp or /var/tmp here, and /tmp the sandbox hides anyway:
        # the whole directory is shown, as /home is, so what hides the HOME is its own rule.
        run, values = logins_run(base, {"mode": "bubblewrap", "read": [str(base)]})

        finished = run_as(run, uid)

        homes = run.council_dir / "command-homes"
        assert {path.stat().st_uid for path in homes.iterdir()} == {uid or os.geteuid()}
        hand_over(run.tmp_path, None if uid is None else os.geteuid())  # git reads its own
        assert finished.returncode == 0, finished.stderr[-3000:]
        assert_confined(run, finished, values)


def test_without_a_sandbox_the_environment_is_private_and_what_is_read_is_masked_everywhere(
    tmp_path: Path,
) -> None:
    """``sandbox: none``: the test's HOME and XDG directories are the session's private ones
    (it finds no login there, its cache is its own), but it can name the user's files by path:
    it reads and prints all eleven, and fails. The task's issue is told why, masked; the
    stored record, the logs and the run's output hold the masks, never a value."""
    team = tmp_path / "team"
    team.mkdir()
    with FakeGitHub(_bare(team), owner=OWNER, repo=REPO, token=TOKEN) as fake:
        run, values = logins_run(tmp_path, "none", fails=True)
        subprocess.run(
            ["git", "-C", str(run.repo), "remote", "add", "origin", str(team / "remote.git")],
            check=True,
        )
        config = json.loads(run.config_path.read_text())
        config["tasks"] = []
        config["forge"] = {
            "repo": f"{OWNER}/{REPO}",
            "api_url": fake.api_url,
            "token": "${FAKE_FORGE_TOKEN}",
        }
        config["sources"] = [{"issues": {"labels": ["council"], "poll": 0.2}}]
        run.config_path.write_text(json.dumps(config, indent=2))
        number = fake.create_issue("Check the logins", "Do the work.", labels=["council"])
        task_id = f"issue-{number}"

        finished = run.run(
            env={"HOME": run.env["FAULT_USER_HOME"], "FAKE_FORGE_TOKEN": TOKEN}, timeout=90
        )
        comments = [comment.body for comment in fake.site.issues[number].comments]

    task = finished.task(task_id)
    assert task["status"] == "failed", task
    seen = verify_result(run)
    assert_private_home(run, seen["env"])
    assert not any(entry.startswith("given:") for entry in seen["read"])  # none in its HOME
    assert "given:.cache/x" in seen["wrote"]  # its cache is its own
    # No sandbox: it names the user's files by path, and reads them all.
    assert sorted(seen["read"]) == sorted(f"user:{login}" for login in values)
    assert_no_secret_anywhere(run, finished, values)
    error = str(run.state(task_id)["error"])  # the stored task record
    assert "read user ~/.pgpass:\ndb.internal:5432:prod:alice:***" in error  # said, masked
    assert "read user ~/.ssh/id_ed25519:\n***" in error  # the key block whole
    assert "BEGIN OPENSSH" not in error
    said = comments[-1]
    assert said.startswith(f"CLI Council could not finish task `{task_id}`: ")
    assert "verify command" in said and "alice:***" in said
    for name, value in values.items():
        assert all(value not in comment for comment in comments), name


def _bare(team: Path) -> Path:
    return make_team(team).remote


# A setup command that tries to read the user's pgpass and print it, and says whether it could.
_SETUP = """
import sys
try:
    print(open(sys.argv[1]).read())
except OSError as exc:
    print("refused:", type(exc).__name__)
"""


@pytest.mark.sandbox
def test_setup_commands_run_in_the_sandbox_of_the_sessions_cli(tmp_path: Path) -> None:
    """The run goes without a sandbox, the CLI's adapter with one: the worktree's setup
    command (a package script, code CLIs wrote) runs in the CLI's, reaching no login."""
    run, values = logins_run(tmp_path, "none")
    config = json.loads(run.config_path.read_text())
    config["adapters"][TASK]["sandbox"] = {"mode": "bubblewrap", "read": [str(tmp_path)]}
    pgpass = str(Path(run.env["FAULT_USER_HOME"]) / ".pgpass")
    config["worktrees"] = {"setup": [[sys.executable, "-c", _SETUP, pgpass]]}
    run.config_path.write_text(json.dumps(config, indent=2))

    finished = run.run(env={"HOME": run.env["FAULT_USER_HOME"]}, timeout=90)

    (log,) = (run.council_dir / "logs").glob("setup-*.log")
    assert "refused: FileNotFoundError" in log.read_text()
    assert_confined(run, finished, values)  # its verify command too
