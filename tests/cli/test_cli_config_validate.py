"""``council config validate`` reports, in one pass, every problem of a run config and all that
``council run`` would refuse before it starts: one line each at its line in the file, the
file's problems as errors (exit 2), what only this machine lacks (a CLI, the repository) as
warnings (errors with ``--strict``). As a real process, piped and on a terminal, at 80 and 160
columns: no line is ever cut or wrapped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.scheduler_helpers import new_repo
from tests.support.terminal import in_terminal
from tests.support.timing import patience
from tests.support.worktree_helpers import git

COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]
KNOWN = "aider, claude_code, codex, command, gemini, ollama, opencode, qwen, scripted"
PLUGIN_HINT = "(a plugin's adapter? see `council adapters list`)"
LONG = "x" * 140_000  # over the 128 KiB one argument may hold

CONFIG = f"""repo: nowhere
adapters:
  claude: {{type: claude_code, executable: no-such-claude-xyz}}
  typo: {{type: claudee}}
  preset: {{type: command, options: {{binary: cat}}}}
  solo: {{}}
default_adapter: claude
tasks:
  - {{id: a, prompt: x, depends_on: [ghost]}}
  - {{id: b, prompt: {LONG}, adapters: [preset]}}
  - {{id: c, prompt: y, adapters: [typo]}}
"""
ERRORS = [
    f"run.yaml:4: adapters.typo.type: unknown adapter type 'claudee' (did you mean "
    f"'claude_code'?); known types: {KNOWN} {PLUGIN_HINT}",
    # No `type:`: the key is the type, and the key's line the place.
    f"run.yaml:6: adapters.solo.type: unknown adapter type 'solo'; known types: {KNOWN} "
    f"{PLUGIN_HINT}",
    "run.yaml:9: tasks[0].depends_on[0]: unknown task 'ghost'",
    "run.yaml:10: tasks[1].prompt: task 'b', phases scout, plan, build, review: adapter 'preset' "
    "cannot be given the prompt: a prompt of ",
]


def warnings(tmp_path: Path) -> list[str]:
    return [
        f"warning: run.yaml:1: repo: repository {tmp_path / 'nowhere'} does not exist (repo: in "
        "the run config)",
        "warning: run.yaml:3: adapters.claude.executable: adapter 'claude' (type 'claude_code'): "
        "its binary 'no-such-claude-xyz' is not on PATH; install the CLI or set "
        "adapters.claude.executable (used by task 'a', phase 'scout')",
    ]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time."""
    found = {}
    for directory, names, files in os.walk(root):
        for name in names + files:
            info = (Path(directory) / name).lstat()
            found[str(Path(directory, name).relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found


def _env(columns: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"}
    return {**env, "NO_COLOR": "1", "COLUMNS": str(columns), "COUNCIL_DISABLE_PLUGINS": "1"}


def council(tmp_path: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COUNCIL, *args],
        cwd=tmp_path,
        env=_env(columns),
        capture_output=True,
        text=True,
        timeout=patience(120),
        check=False,
    )


def council_on_terminal(tmp_path: Path, *args: str, columns: int) -> tuple[int, str]:
    """``council ARGS`` on a pseudo-terminal ``columns`` wide: its exit code and all the
    terminal received (stdout and stderr), escapes removed and ``\\r\\n`` as ``\\n``."""
    shown = in_terminal(
        *args, cwd=tmp_path, columns=columns, env=_env(columns), timeout=patience(120)
    )
    return shown.returncode, shown.text


def assert_lines(lines: list[str], expected: list[str]) -> None:
    """``lines`` are ``expected``, in order, each whole on its own line (a ``... of `` entry is
    the start of its line)."""
    assert len(lines) == len(expected), "\n".join(lines)
    for line, wanted in zip(lines, expected, strict=True):
        assert line.startswith(wanted) if wanted.endswith("of ") else line == wanted


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "run.yaml").write_text(CONFIG, encoding="utf-8")
    return tmp_path / "run.yaml"


@pytest.mark.parametrize("columns", [80, 160])
def test_every_problem_in_one_pass_piped(tmp_path: Path, config: Path, columns: int) -> None:
    before = snapshot(tmp_path)

    done = council(tmp_path, "config", "validate", "run.yaml", columns=columns)

    assert done.returncode == 2
    assert done.stdout == ""
    assert_lines(done.stderr.splitlines(), [*ERRORS, *warnings(tmp_path)])
    prompt_line = done.stderr.splitlines()[3]
    assert prompt_line.endswith(
        "set stdin_prompt: true in the preset if cat reads its prompt from stdin"
    )
    assert snapshot(tmp_path) == before  # nothing written, not even .council


@pytest.mark.parametrize("columns", [80, 160])
def test_every_problem_in_one_pass_on_a_terminal(
    tmp_path: Path, config: Path, columns: int
) -> None:
    code, seen = council_on_terminal(tmp_path, "config", "validate", "run.yaml", columns=columns)

    assert code == 2
    assert_lines(seen.splitlines(), [*ERRORS, *warnings(tmp_path)])


def test_strict_counts_what_this_machine_lacks_as_errors(tmp_path: Path, config: Path) -> None:
    done = council(tmp_path, "config", "validate", "--strict", "run.yaml")

    assert done.returncode == 2
    unprefixed = [line.removeprefix("warning: ") for line in warnings(tmp_path)]
    assert_lines(done.stderr.splitlines(), [*unprefixed, *ERRORS])  # by line: 1, 3, then 4...


def test_what_only_this_machine_lacks_leaves_the_file_valid(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(
        "repo: nowhere\n"
        "adapters:\n  claude: {type: claude_code, executable: no-such-claude-xyz}\n"
        "tasks:\n  - {id: a, prompt: x}\n",
        encoding="utf-8",
    )
    for columns in (80, 160):
        done = council(tmp_path, "config", "validate", "run.yaml", columns=columns)
        assert done.returncode == 0, done.stderr
        assert done.stdout == (
            "run.yaml: OK (1 task, 4 phases, 1 adapter; 2 warnings: `council run` would refuse "
            "to start here)\n"
        )
        assert done.stderr.splitlines() == warnings(tmp_path)
    code, seen = council_on_terminal(tmp_path, "config", "validate", "run.yaml", columns=80)
    assert code == 0
    assert seen.splitlines()[-1].startswith("run.yaml: OK (1 task, 4 phases, 1 adapter; 2 ")

    strict = council(tmp_path, "config", "validate", "--strict", "run.yaml")
    assert strict.returncode == 2
    assert strict.stdout == ""
    assert [f"warning: {line}" for line in strict.stderr.splitlines()] == warnings(tmp_path)


def test_json_lists_errors_and_warnings(tmp_path: Path, config: Path) -> None:
    done = council(tmp_path, "config", "validate", "--json", "run.yaml")

    assert done.returncode == 2
    assert done.stderr == ""
    result = json.loads(done.stdout)
    assert result["valid"] is False and result["summary"] is None
    assert [(i["line"], i["field"]) for i in result["issues"]] == [
        (4, "adapters.typo.type"),
        (6, "adapters.solo.type"),
        (9, "tasks[0].depends_on[0]"),
        (10, "tasks[1].prompt"),
    ]
    assert [(w["line"], w["field"]) for w in result["warnings"]] == [
        (1, "repo"),
        (3, "adapters.claude.executable"),
    ]
    assert result["warnings"][1]["message"].startswith("adapter 'claude' (type 'claude_code'): ")


def test_a_repository_without_the_base_branch_is_a_warning(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "trunk")
    (tmp_path / "run.yaml").write_text(
        "repo: repo\nbase_branch: main\nadapters: {cli: {type: scripted}}\n"
        "tasks: [{id: a, prompt: x}]\n",
        encoding="utf-8",
    )
    before = snapshot(tmp_path)

    done = council(tmp_path, "config", "validate", "run.yaml")

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"warning: run.yaml:2: base_branch: base branch 'main' does not exist in {repo} "
        "(base_branch: in the run config; a repository without commits has no branch yet)"
    ]
    assert snapshot(tmp_path) == before  # no .council, no hooks directory


def test_run_refuses_a_prompt_no_adapter_can_take_before_writing_anything(
    tmp_path: Path,
) -> None:
    new_repo(tmp_path)
    (tmp_path / "run.yaml").write_text(
        f"repo: repo\nadapters: {{preset: {{type: command, options: {{binary: cat}}}}}}\n"
        f"tasks: [{{id: b, prompt: {LONG}}}]\n",
        encoding="utf-8",
    )
    before = snapshot(tmp_path)

    validated = council(tmp_path, "config", "validate", "run.yaml")
    ran = council(tmp_path, "run", "run.yaml")

    assert validated.returncode == ran.returncode == 2
    (problem,) = validated.stderr.splitlines()
    assert problem.startswith("run.yaml:3: tasks[0].prompt: task 'b', phases scout, plan, build, ")
    # The same sentence, without the place in the file, from the run.
    (refused,) = ran.stderr.splitlines()
    assert refused == "error: " + problem.removeprefix("run.yaml:3: tasks[0].prompt: ")
    assert snapshot(tmp_path) == before


def test_refused_values_and_wrong_names_in_one_pass(tmp_path: Path) -> None:
    # Issue 48: a wrong type hid every reference until it was fixed.
    (tmp_path / "run.yaml").write_text(
        "repo: nowhere\n"  # 1
        "default_adapter: claud\n"  # 2
        "adapters:\n"  # 3
        "  claude: {type: scripted, options: {delay: -1}}\n"  # 4
        "workflow:\n"  # 5
        "  phases: [{name: plan, adapter: codx}, {name: build}]\n"  # 6
        "capacity: {sessions: lots}\n"  # 7
        "tasks:\n"  # 8
        "  - {id: a, prompt: x, depends_on: [3, ghost], phases: [plan, biuld]}\n",  # 9
        encoding="utf-8",
    )
    before = snapshot(tmp_path)

    validated = council(tmp_path, "config", "validate", "run.yaml")
    ran = council(tmp_path, "run", "run.yaml")

    expected = [
        "run.yaml:2: default_adapter: unknown adapter 'claud' (did you mean 'claude'?) "
        "(defined: claude)",
        "run.yaml:4: adapters.claude.options.delay: Input should be greater than or equal to 0 "
        "(adapter type 'scripted')",
        "run.yaml:6: workflow.phases[0].adapter: unknown adapter 'codx' (defined: claude)",
        "run.yaml:7: capacity.sessions: must be a whole number (got 'lots')",
        "run.yaml:9: tasks[0].depends_on[0]: must be a string (got 3)",
        "run.yaml:9: tasks[0].depends_on[1]: unknown task 'ghost'",
        "run.yaml:9: tasks[0].phases[1]: unknown phase 'biuld' (did you mean 'build'?) "
        "(phases: build, plan)",
    ]
    assert validated.returncode == ran.returncode == 2
    assert validated.stderr.splitlines() == expected
    assert ran.stderr.splitlines() == expected
    assert snapshot(tmp_path) == before


def test_a_misspelt_built_in_phase_is_a_warning_of_its_own(tmp_path: Path) -> None:
    new_repo(tmp_path)
    (tmp_path / "run.yaml").write_text(
        "repo: repo\nadapters: {cli: {type: scripted}}\n"
        "workflow: {phases: [{name: plan}, {name: biuld}]}\n"
        "tasks: [{id: a, prompt: x}]\n",
        encoding="utf-8",
    )

    done = council(tmp_path, "config", "validate", "run.yaml")
    strict = council(tmp_path, "config", "validate", "--strict", "run.yaml")

    assert done.returncode == strict.returncode == 0, done.stderr
    warning = (
        "warning: run.yaml:3: workflow.phases[1].name: phase 'biuld' is not a built-in phase "
        "(did you mean 'build'?): only a phase named 'build' gets the build prompt, runs the "
        "verify commands and is sent back by review; 'biuld' runs as a custom phase, on the "
        "generic prompt"
    )
    assert done.stderr.splitlines() == strict.stderr.splitlines() == [warning]
    assert (
        done.stdout.strip() == "run.yaml: OK (1 task, 2 phases, 1 adapter; 1 possible misspelling)"
    )
    # `council run` says it too, once, and runs: a custom phase is allowed (here it writes
    # nothing, as the warning foretold, so the task fails: exit 1, not a refusal's 2).
    ran = council(tmp_path, "run", "run.yaml", "--json")
    assert ran.returncode == 1 and "finished: failed" in ran.stderr, ran.stderr
    assert ran.stderr.count("phase 'biuld' is not a built-in phase (did you mean 'build'?)") == 1
