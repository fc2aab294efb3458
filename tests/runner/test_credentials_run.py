"""The user's logins reach each CLI through links in its private HOME (issue 11, "their
logins"), never as copies: a fake user HOME with credential files, the real orchestrator
running a stand-in CLI (``tests/support/fault_clis/login_probe.py``) through the ``claude_code``
adapter, real git, real processes. The CLI sees links to the user's files and reads them;
the secret is in no file under ``.council/`` (``grep -r``, which does not follow links);
``credentials: isolated`` shows none of it; a login the CLI saved anew goes back to the
user's copy."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.council import Council
from tests.support.scheduler_helpers import new_repo

PROBE = Path(__file__).parents[1] / "support" / "fault_clis" / "login_probe.py"
CREDENTIALS = ".claude/.credentials.json"
AWS = ".aws"
_MOVERS = ("CLAUDE_CONFIG_DIR", "CLOUDSDK_CONFIG", "AWS_PROFILE", "CLAUDE_CODE_OAUTH_TOKEN")


@pytest.fixture
def secret() -> str:
    return f"sk-ant-oat01-{secrets.token_hex(16)}"


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str) -> Path:
    """A user logged in to claude and to AWS, nothing else."""
    home = tmp_path / "user-home"
    (home / ".claude").mkdir(parents=True)
    (home / CREDENTIALS).write_text(json.dumps({"claudeAiOauth": {"accessToken": secret}}))
    (home / AWS).mkdir()
    (home / AWS / "credentials").write_text(f"[default]\naws_secret_access_key = {secret}\n")
    monkeypatch.setenv("HOME", str(home))
    for name in _MOVERS:
        monkeypatch.delenv(name, raising=False)
    return home


def _configure(tmp_path: Path, credentials: str | None, env: dict[str, str]) -> None:
    """One build through a ``claude_code`` adapter whose binary is the probe; its report."""
    probe = tmp_path / "claude-probe"
    probe.write_text(f"#!{sys.executable}\n{PROBE.read_text()}")
    probe.chmod(0o755)
    adapter: dict[str, Any] = {"type": "claude_code", "executable": str(probe), "env": env}
    if credentials is not None:
        adapter["credentials"] = credentials
    config = {
        "repo": str(new_repo(tmp_path)),
        "adapters": {"claude": adapter},
        "default_adapter": "claude",
        "workflow": {"phases": [{"name": "build"}]},
        "retry": {"max_retries": 0},
        "scheduler": {"tick": 0.05, "heartbeat_interval": 0.5, "stale_threshold": 30},
        "tasks": [{"id": "look", "prompt": "Look around."}],
    }
    (tmp_path / "run.yaml").write_text(json.dumps(config))


async def _council_run(tmp_path: Path) -> dict[str, Any]:
    async with Council.from_config(tmp_path / "run.yaml") as council:
        report = await council.run()
    return dict(report.model_dump(mode="json"))


def _seen(tmp_path: Path) -> dict[str, Any]:
    """What the probe reported, as landed on the base branch."""
    done = subprocess.run(
        ["git", "show", "main:logins-seen.json"],
        cwd=tmp_path / "repo",
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


def _grep(directory: Path, needle: str) -> list[str]:
    """``grep -rl``: every file under ``directory`` holding ``needle`` (links not followed)."""
    done = subprocess.run(["grep", "-rlF", needle, str(directory)], capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stderr
    return done.stdout.split()


def _private_home(tmp_path: Path) -> Path:
    return tmp_path / "repo" / ".council" / "homes" / "look" / "claude" / "build"


async def test_shared_logins_are_links_to_the_users_files_and_never_copies(
    tmp_path: Path, user_home: Path, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "work")
    _configure(tmp_path, None, {"LOGIN_PROBE_PATHS": f"{CREDENTIALS}:{AWS}:.codex/auth.json"})

    report = await _council_run(tmp_path)

    assert report["totals"]["done"] == 1, report["tasks"]
    seen = _seen(tmp_path)
    assert seen["paths"][CREDENTIALS] == {
        "link": True,
        "exists": True,
        "target": str(user_home / CREDENTIALS),
        "readable": True,
    }
    assert seen["paths"][AWS]["target"] == str(user_home / AWS)
    # A login the user does not have gets no link, not even a dangling one.
    assert seen["paths"][".codex/auth.json"] == {"link": False, "exists": False}
    assert seen["variables"] == {"AWS_PROFILE": True, "CLAUDE_CODE_OAUTH_TOKEN": False}
    council = tmp_path / "repo" / ".council"
    assert _grep(council, secret) == []
    assert (_private_home(tmp_path) / CREDENTIALS).is_symlink()


async def test_isolated_shows_none_of_the_users_logins(
    tmp_path: Path, user_home: Path, secret: str
) -> None:
    _configure(tmp_path, "isolated", {"LOGIN_PROBE_PATHS": f"{CREDENTIALS}:{AWS}"})
    # A link left by an earlier, shared run of the same session is taken away.
    stale = _private_home(tmp_path) / CREDENTIALS
    stale.parent.mkdir(parents=True)
    stale.symlink_to(user_home / CREDENTIALS)

    report = await _council_run(tmp_path)

    assert report["totals"]["done"] == 1, report["tasks"]
    seen = _seen(tmp_path)
    assert seen["paths"][CREDENTIALS] == {"link": False, "exists": False}
    assert seen["paths"][AWS] == {"link": False, "exists": False}
    assert _grep(tmp_path / "repo" / ".council", secret) == []


async def test_a_login_the_cli_saved_anew_goes_back_to_the_user(
    tmp_path: Path, user_home: Path, secret: str
) -> None:
    refreshed = f"sk-ant-oat01-refreshed-{secrets.token_hex(8)}"
    _configure(
        tmp_path,
        None,
        {
            "LOGIN_PROBE_PATHS": CREDENTIALS,
            "LOGIN_PROBE_RESAVE": CREDENTIALS,
            "LOGIN_PROBE_NEW_CONTENT": refreshed,
        },
    )

    report = await _council_run(tmp_path)

    assert report["totals"]["done"] == 1, report["tasks"]
    assert (user_home / CREDENTIALS).read_text() == refreshed
    assert not os.path.lexists(_private_home(tmp_path) / CREDENTIALS)
    assert _grep(tmp_path / "repo" / ".council", refreshed) == []


async def test_a_login_token_the_cli_copies_into_its_work_never_lands(
    tmp_path: Path, user_home: Path, secret: str
) -> None:
    """The run knows the tokens in the logins it shows a CLI (``runner.login_secrets``): one
    copied into the work fails the task before it lands, naming the login, never the value."""
    _configure(tmp_path, None, {"LOGIN_PROBE_PATHS": CREDENTIALS, "LOGIN_PROBE_LEAK": CREDENTIALS})

    report = await _council_run(tmp_path)

    (task,) = report["tasks"]
    assert task["status"] == "failed", task
    error = task["error"] or ""
    # The fixture's user has the same token in two logins: either one names it.
    assert "leaked.json (login '" in error, error
    assert "leaked.json" in error and secret not in error
    repo = tmp_path / "repo"
    on_main = subprocess.run(["git", "-C", str(repo), "grep", "-I", secret, "main"])
    assert on_main.returncode == 1  # not on the base
    objects = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout
    assert secret.encode() not in objects  # nor in any object: the kept work is masked
