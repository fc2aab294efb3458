"""``council config validate`` and ``council config schema``, in-process and as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli.app import CouncilGroup, app, exit_code_for
from orchestrator.errors import (
    ConfigError,
    ConfigIssue,
    CouncilError,
    GitError,
    InvalidIdError,
    LockTimeout,
    PathEscapeError,
)
from tests.support.timing import patience

ROOT = Path(__file__).resolve().parents[2]
# A repository the run would create and a CLI that is here: nothing about this machine to warn of.
HERE = "repo: sample\nsample_repo: true\nadapters: {cli: {type: scripted}}\n"
BAD = HERE + "tasks:\n  - id: a\n    prompt: x\n    depends_on: [ghost]\n"
BAD_LINE = "bad.yaml:7: tasks[0].depends_on[0]: unknown task 'ghost'"


@pytest.fixture(autouse=True)
def plain_output(monkeypatch: pytest.MonkeyPatch) -> None:
    # Colour codes would make exact comparisons depend on the developer's terminal settings.
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(ROOT)
    return ROOT


@pytest.fixture
def bad_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text(BAD, encoding="utf-8")
    return "bad.yaml"


def test_validate_demo(runner: CliRunner, in_root: Path) -> None:
    result = runner.invoke(app, ["config", "validate", "configs/demo.yaml"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "configs/demo.yaml: OK (7 tasks, 4 phases, 3 adapters)\n"
    assert result.stderr == ""


def test_validate_singular_summary(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(
        "repo: sample\nsample_repo: true\nadapters: {solo: {type: scripted}}\n"
        "tasks: [{id: a, prompt: x}]\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 0
    assert result.stdout == f"{path}: OK (1 task, 4 phases, 1 adapter)\n"


def test_validate_bad_file_is_one_line_on_stderr(runner: CliRunner, bad_file: str) -> None:
    result = runner.invoke(app, ["config", "validate", bad_file])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == BAD_LINE + "\n"


def test_long_issue_lines_are_not_wrapped(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text("tasks:\n  - id: a\n    prompt: x\n    promt: y\n", encoding="utf-8")
    result = runner.invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert len(lines[0]) > 100
    assert lines[0].startswith(f"{path}:4: tasks[0].promt: unknown key (did you mean 'prompt'?")


def test_validate_reports_every_issue(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(
        "capacity: {sessions: 0}\ntasks:\n  - {id: a, prompt: x}\n  - {id: a, prompt: y}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [  # one pass: a refused value hides nothing else
        f"{path}:1: capacity.sessions: must be >= 1 (got 0)",
        f"{path}:4: tasks[1].id: duplicate task id 'a' (first used by tasks[0])",
    ]
    path.write_text(
        HERE + "tasks:\n  - {id: a, prompt: x, depends_on: [b]}\n  - {id: a, prompt: y}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["config", "validate", str(path)])
    assert result.stderr.splitlines() == [
        f"{path}:5: tasks[0].depends_on[0]: unknown task 'b'",
        f"{path}:6: tasks[1].id: duplicate task id 'a' (first used by tasks[0])",
    ]


def test_validate_missing_file(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["config", "validate", "absent.yaml"])
    assert result.exit_code == 2
    assert result.stderr == "absent.yaml: config file not found\n"


def test_validate_json_valid(runner: CliRunner, in_root: Path) -> None:
    result = runner.invoke(app, ["config", "validate", "configs/demo.yaml", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "file": "configs/demo.yaml",
        "valid": True,
        "issues": [],
        "warnings": [],
        "summary": {"tasks": 7, "phases": 4, "adapters": 3},
    }


def test_validate_json_invalid(runner: CliRunner, bad_file: str) -> None:
    result = runner.invoke(app, ["config", "validate", "--json", bad_file])
    assert result.exit_code == 2
    assert result.stderr == ""
    assert json.loads(result.stdout) == {
        "file": "bad.yaml",
        "valid": False,
        "issues": [
            {
                "file": "bad.yaml",
                "line": 7,
                "field": "tasks[0].depends_on[0]",
                "message": "unknown task 'ghost'",
            }
        ],
        "warnings": [],
        "summary": None,
    }


def test_validate_json_issue_without_line(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "gone.yaml"
    result = runner.invoke(app, ["config", "validate", "--json", str(missing)])
    assert result.exit_code == 2
    issue = json.loads(result.stdout)["issues"][0]
    assert issue == {
        "file": str(missing),
        "line": None,
        "field": "",
        "message": "config file not found",
    }


def test_schema_is_json_with_tasks(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "tasks" in schema["properties"]
    assert "tasks" in schema["required"]
    assert schema["$schema"].startswith("https://json-schema.org/")


def test_usage_error_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(app, ["config", "validate"])
    assert result.exit_code == 2
    assert "Missing argument" in result.output


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError([ConfigIssue("x.yaml", 3, "tasks", "bad")]), 2),
        (InvalidIdError("task id 'A' is not a safe id"), 2),
        (PathEscapeError("../x escapes the repository"), 2),
        (GitError(["status"], 128, "not a git repository"), 1),
        (LockTimeout("/tmp/lock", 1.5), 1),
    ],
)
def test_exit_codes(error: CouncilError, code: int) -> None:
    assert exit_code_for(error) == code


def _failing_app(error: Exception) -> typer.Typer:
    failing = typer.Typer(cls=CouncilGroup)

    @failing.callback()
    def root() -> None:
        """A root group, like council's."""

    @failing.command()
    def boom() -> None:
        raise error

    return failing


def test_handler_turns_council_errors_into_messages(runner: CliRunner) -> None:
    result = runner.invoke(_failing_app(GitError(["merge"], 1, "conflict in a.py")), ["boom"])
    assert result.exit_code == 1
    assert result.stderr == "error: git merge failed (1): conflict in a.py\n"
    assert result.exception is None or isinstance(result.exception, SystemExit)

    issue = ConfigIssue("run.yaml", 7, "tasks[1].id", "duplicate task id 'a'")
    result = runner.invoke(_failing_app(ConfigError([issue])), ["boom"])
    assert result.exit_code == 2
    assert result.stderr == "run.yaml:7: tasks[1].id: duplicate task id 'a'\n"


def test_handler_lets_bugs_through(runner: CliRunner) -> None:
    result = runner.invoke(_failing_app(KeyError("bug")), ["boom"])
    assert isinstance(result.exception, KeyError)


# --- as a real process -------------------------------------------------------------------------


def _council(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.app", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=patience(60),
        check=False,
    )


def test_real_process_valid() -> None:
    done = _council("config", "validate", "configs/demo.yaml", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "configs/demo.yaml: OK (7 tasks, 4 phases, 3 adapters)\n"


def test_real_process_invalid_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD, encoding="utf-8")
    done = _council("config", "validate", "bad.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == BAD_LINE + "\n"


def test_real_process_schema() -> None:
    done = _council("config", "schema", cwd=ROOT)
    assert done.returncode == 0
    assert "tasks" in json.loads(done.stdout)["properties"]


def test_validate_refuses_qwens_discontinued_oauth_at_its_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    # qwen 0.24 refuses it only once started; the config says so before anything runs.
    path = tmp_path / "qwen.yaml"
    path.write_text(
        "repo: sample\nsample_repo: true\n"
        "adapters:\n  qwen:\n    options: {auth_type: qwen-oauth}\n"
        "tasks: [{id: a, prompt: x}]\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 2
    (line,) = [line for line in result.stderr.splitlines() if "auth_type" in line]
    assert line.startswith(f"{path}:5: adapters.qwen.options.auth_type: ")
    assert "free tier was discontinued on 2026-04-15" in line
    assert "auth_type 'openai'" in line and "OPENAI_API_KEY" in line
