"""`council adapters check --live`: a user checks a new CLI release offline, in seconds: the
write scenario through the real CLI against the fake model, a verdict per CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.timing import patience


def _council(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.app", "adapters", "check", *args],
        capture_output=True,
        text=True,
        timeout=patience(60),
        env=env,
    )


def _reports(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return {report["cli"]: report for report in json.loads(done.stdout)}


@pytest.mark.real_cli("claude")
def test_a_working_release_is_said_to_work(real_cli_binary: Path) -> None:
    done = _council("--live", "claude_code", "--json")

    assert done.returncode == 0, done.stderr
    report = _reports(done)["claude"]
    assert report["works"] is True and report["path"] == str(real_cli_binary)
    assert report["version"] and report["seconds"] > 0
    assert "landed hello.txt" in report["detail"]
    assert "checking claude" in done.stderr  # progress, kept off stdout


def _only_on_path(tmp_path: Path, name: str, target: str) -> dict[str, str]:
    """An environment whose only CLI is ``name``, a link to the real program ``target``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / name).symlink_to(target)
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    env = {k: v for k, v in os.environ.items() if k != "COUNCIL_CLIS_DIR"}
    return {**env, "PATH": path, "COUNCIL_CLIS_DIR": str(tmp_path / "no-clis")}


def test_a_release_that_writes_nothing_fails_the_check(tmp_path: Path) -> None:
    # A "codex" that runs and exits 0 having done nothing: exit 0 is never success.
    env = _only_on_path(tmp_path, "codex", "/bin/true")

    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.app", "adapters", "check", "--live", "codex",
         "--json"],
        capture_output=True, text=True, timeout=patience(60), env=env, cwd=tmp_path,
    )  # fmt: skip

    assert done.returncode == 1, done.stdout + done.stderr
    report = _reports(done)["codex"]
    assert report["works"] is False and "hello.txt" in report["detail"]


def test_missing_clis_are_reported_and_only_a_named_one_fails(tmp_path: Path) -> None:
    env = _only_on_path(tmp_path, "unrelated", "/bin/true")

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator.cli.app", "adapters", "check", "--live", *args],
            capture_output=True, text=True, timeout=patience(60), env=env, cwd=tmp_path,
        )  # fmt: skip

    everything = check("--json")
    assert everything.returncode == 0
    assert all(
        r["installed"] is False and r["works"] is None for r in json.loads(everything.stdout)
    )
    named = check("gemini", "--json")
    assert named.returncode == 1 and _reports(named)["gemini"]["installed"] is False


def test_an_unknown_name_lists_the_known_ones() -> None:
    done = _council("--live", "no-such-cli")
    assert done.returncode != 0
    assert (
        "no live check for 'no-such-cli'" in done.stderr and "claude_code (claude)" in done.stderr
    )
