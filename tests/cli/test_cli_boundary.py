"""Bad input at the boundary of ``council``: each case is refused with one line on stderr that
says what was wrong and where, exit code 2, and nothing created - no ``.council/``, no sample
repository, no worktree, no branch, no change under the test's directory or in git.

Most cases go through typer's runner (the command's own code path, without a second Python
start); the last tests run the real command as a process for the cases where the message
comes from code only a process reaches (the signal-handling run driver)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import app
from orchestrator.config.yaml_source import MAX_CONFIG_BYTES
from tests.support.scheduler_helpers import new_repo
from tests.support.timing import patience
from tests.support.worktree_helpers import git

COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]

ADAPTER = "adapters:\n  cli: {type: scripted, options: {delay: 0}}\n"
TASK = 'tasks:\n  - {id: one, prompt: "WRITE one.txt x"}\n'
GOOD = "repo: repo\n" + ADAPTER + TASK


def _bomb() -> str:
    """Nine levels of ten aliases each: a billion-laughs document of a few hundred bytes."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return GOOD + "\n".join(lines) + "\n"


def _link(target: str, link: str) -> Callable[[Path], None]:
    """Setup: ``tmp_path/<target>`` (a directory) and a symbolic link ``<link>`` to it."""

    def setup(tmp_path: Path) -> None:
        (tmp_path / target).mkdir(parents=True)
        place = tmp_path / link
        place.parent.mkdir(parents=True, exist_ok=True)
        place.symlink_to(tmp_path / target, target_is_directory=True)

    return setup


Case = tuple[str, Callable[[Path], None] | None, str]

CASES: dict[str, Case] = {
    # -- the YAML itself ---------------------------------------------------------------------
    "syntax error": (
        "repo: repo\n" + ADAPTER + "tasks:\n  - {id: one, prompt: x\n",
        None,
        "run.yaml:6: invalid YAML: while parsing a flow mapping at line 5; expected ',' or '}'",
    ),
    "duplicate key": (
        GOOD + "repo: other\n",
        None,
        "run.yaml:6: repo: duplicate key (first defined at line 1)",
    ),
    "wrong type": (
        GOOD + "capacity: {sessions: many}\n",
        None,
        "run.yaml:6: capacity.sessions: must be a whole number (got 'many')",
    ),
    "unknown key": (
        GOOD + "capacty: {sessions: 2}\n",
        None,
        "run.yaml:6: capacty: unknown key (did you mean 'capacity'? allowed: ",
    ),
    "alias bomb": (_bomb(), None, "aliases expand to more than 10000 nodes; refusing to load"),
    "oversized file": (
        GOOD + "# " + "x" * MAX_CONFIG_BYTES + "\n",
        None,
        f"run.yaml: config file is larger than {MAX_CONFIG_BYTES} bytes (1 MiB); refused",
    ),
    # -- adapters ----------------------------------------------------------------------------
    "unknown adapter name": (
        GOOD + "default_adapter: clj\n",
        None,
        "run.yaml:6: default_adapter: unknown adapter 'clj' (did you mean 'cli'?) (defined: cli)",
    ),
    "unknown adapter type": (
        "repo: repo\nadapters:\n  cli: {type: scriptd}\n" + TASK,
        None,
        "run.yaml:3: adapters.cli.type: unknown adapter type 'scriptd' (did you mean "
        "'scripted'?); known types: ",
    ),
    "prompt too long for a preset": (
        "repo: repo\nadapters:\n  cli: {type: command, options: {binary: cat}}\n"
        f"tasks:\n  - {{id: one, prompt: {'x' * 140_000}}}\n",
        None,
        # (The rendered prompt's size depends on the phase templates: not spelled out here.)
        "error: task 'one', phases scout, plan, build, review: adapter 'cli' cannot be given the "
        "prompt: a prompt of ",
    ),
    "missing CLI binary": (
        "repo: repo\nadapters:\n  claude: {type: claude_code, executable: no-such-claude-xyz}\n"
        + TASK,
        None,
        "error: adapter 'claude' (type 'claude_code'): its binary 'no-such-claude-xyz' is not on "
        "PATH; install the CLI or set adapters.claude.executable (used by task 'one', phase "
        "'scout')",
    ),
    "missing fallback binary": (
        "repo: repo\nadapters:\n  cli: {type: scripted, fallback: [spare]}\n"
        "  spare: {type: command, options: {binary: no-such-cli-xyz}}\n"
        "default_adapter: cli\n" + TASK,
        None,
        "error: adapter 'spare' (type 'command'): its binary 'no-such-cli-xyz' is not on PATH",
    ),
    "absolute binary that is not there": (
        "repo: repo\nadapters:\n  cli: {type: scripted, executable: /no/such/python}\n" + TASK,
        None,
        "error: adapter 'cli' (type 'scripted'): its binary /no/such/python is not an "
        "executable file (adapters.cli.executable)",
    ),
    "missing binary with a sample repository to create": (
        "repo: sample\nsample_repo: true\n"
        "adapters:\n  claude: {type: claude_code, executable: no-such-claude-xyz}\n" + TASK,
        None,
        "its binary 'no-such-claude-xyz' is not on PATH",
    ),
    "no adapter defined": (
        "repo: repo\n" + TASK,
        None,
        "error: task 'one': no adapter configured for phase 'scout'; define the CLIs to run "
        "under `adapters:`",
    ),
    # -- task ids ------------------------------------------------------------------------------
    **{
        f"task id {bad}": (
            "repo: repo\n" + ADAPTER + f'tasks:\n  - {{id: "{bad}", prompt: x}}\n',
            None,
            f"run.yaml:5: tasks[0].id: id '{bad}' is not a safe id",
        )
        for bad in ("../x", "a/b", "-rf", "--help")
    },
    # -- the repository ------------------------------------------------------------------------
    "symlinked .council": (
        GOOD,
        _link("elsewhere", "repo/.council"),
        "repo/.council is a symbolic link (to ",
    ),
    "symlinked lock directory": (
        GOOD,
        _link("elsewhere", "repo/.council/locks"),
        "repo/.council/locks is a symbolic link (to ",
    ),
    "symlinked state directory": (
        GOOD,
        _link("elsewhere", "repo/.council/state"),
        "repo/.council/state is a symbolic link (to ",
    ),
    "repository missing": (
        GOOD.replace("repo: repo", "repo: nowhere"),
        None,
        "nowhere does not exist (repo: in the run config)",
    ),
    "not a git checkout": (
        GOOD.replace("repo: repo", "repo: plain"),
        lambda tmp_path: (tmp_path / "plain").mkdir(),
        "plain is not the top level of a git checkout (it has no .git)",
    ),
    "base branch missing": (
        GOOD + "base_branch: develop\n",
        None,
        "error: base branch 'develop' does not exist in ",
    ),
}


def snapshot(root: Path) -> dict[str, object]:
    """Everything under ``root`` (paths, sizes, modification times, link targets) and the
    repository's refs and worktrees, to compare before and after a command."""
    files: dict[str, tuple[int, int] | str] = {}
    for directory, names, filenames in os.walk(root):
        for name in names + filenames:
            path = Path(directory) / name
            info = path.lstat()
            key = str(path.relative_to(root))
            files[key] = (
                os.readlink(path) if path.is_symlink() else (info.st_size, info.st_mtime_ns)
            )
    repo = root / "repo"
    return {
        "files": files,
        "refs": git(repo, "for-each-ref"),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
    }


def prepared(tmp_path: Path, text: str, setup: Callable[[Path], None] | None) -> Path:
    new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(text)
    if setup is not None:
        setup(tmp_path)
    return config


def assert_one_line_and_nothing_created(
    tmp_path: Path, before: dict[str, object], code: int, stderr: str, expected: str
) -> None:
    assert code == 2, stderr
    assert expected in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["run", "resume"])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_refused_in_one_line_creating_nothing(
    tmp_path: Path, case: str, command: str
) -> None:
    text, setup, expected = CASES[case]
    config = prepared(tmp_path, text, setup)
    before = snapshot(tmp_path)

    result = CliRunner().invoke(app, [command, str(config)])

    assert_one_line_and_nothing_created(tmp_path, before, result.exit_code, result.stderr, expected)
    assert not (tmp_path / "sample").exists()


@pytest.mark.parametrize("bad", ["../x", "a/b", "-rf", "--help"])
def test_a_task_id_argument_that_is_not_an_id_is_refused(tmp_path: Path, bad: str) -> None:
    config = prepared(tmp_path, GOOD, None)
    before = snapshot(tmp_path)

    # After `--`, option-like text reaches the command as the task id it claims to be.
    result = CliRunner().invoke(app, ["cancel", str(config), "--", bad])

    assert_one_line_and_nothing_created(
        tmp_path, before, result.exit_code, result.stderr, f"task id {bad!r} is not a safe id"
    )


def test_the_real_command_refuses_in_one_line(tmp_path: Path) -> None:
    text, setup, expected = CASES["missing CLI binary"]
    config = prepared(tmp_path, text, setup)
    before = snapshot(tmp_path)

    done = subprocess.run(
        [*COUNCIL, "run", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "COUNCIL_DISABLE_PLUGINS": "1"},
        timeout=patience(60),
    )

    assert "Traceback" not in done.stderr
    assert_one_line_and_nothing_created(tmp_path, before, done.returncode, done.stderr, expected)
    assert done.stdout == ""


def test_an_error_inside_the_run_driver_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """``resume`` raises inside the task group that also watches for signals; the error must
    reach the handler as itself, not wrapped in an exception group (a traceback)."""
    config = prepared(tmp_path, GOOD, None)
    (tmp_path / "repo" / ".council" / "state").mkdir(parents=True)  # state, but no session

    result = CliRunner().invoke(app, ["resume", str(config)])

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: there is no interrupted session started from ")


def test_resume_where_no_run_ever_was_is_refused_creating_nothing(tmp_path: Path) -> None:
    config = prepared(tmp_path, GOOD, None)
    before = snapshot(tmp_path)

    result = CliRunner().invoke(app, ["resume", str(config)])

    expected = "there is no interrupted session to resume in"
    assert_one_line_and_nothing_created(tmp_path, before, result.exit_code, result.stderr, expected)
