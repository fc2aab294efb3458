"""Finding the command: ``--version``, ``-h`` everywhere, shell completion, ``python -m
orchestrator``."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from cli_process_helpers import ENV
from timing import patience


def _council(*args: str, cwd: Path, env: dict[str, str] = ENV) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=patience(60),
    )


def test_version_through_python_dash_m(tmp_path: Path) -> None:
    shown = _council("--version", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == f"council {version('cli-council')}\n"


def test_dash_h_is_help_for_the_root_and_every_subcommand(tmp_path: Path) -> None:
    root = _council("-h", cwd=tmp_path)
    assert root.returncode == 0 and "Usage: council" in root.stdout
    for command in (["run"], ["status"], ["db", "up"], ["checkpoint", "list"]):
        shown = _council(*command, "-h", cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert f"Usage: council {' '.join(command)}" in shown.stdout


def test_shell_completion_script(tmp_path: Path) -> None:
    # Typer finds the shell among the command's ancestors, and takes no shell name unless told
    # not to look: a test run whose ancestors hold no shell (started detached) found none.
    env = {**ENV, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    shown = _council("--show-completion", "bash", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "_council_completion" in shown.stdout and "complete " in shown.stdout
