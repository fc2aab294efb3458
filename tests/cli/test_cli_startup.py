"""``council --help``, ``--version`` and ``status`` start without the run machinery.

Each command's module is imported only when it runs (``orchestrator.cli.lazy_group``), and
``status`` reads the store without the scheduler, the merge queue, git or the plugins. Timing
is measured in ``bench/startup_bench.py``; here the property behind it is checked, in a real
``council`` process: which modules it imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli.app import COMMANDS
from orchestrator.cli.lazy_group import load_command
from tests.support.scheduler_helpers import new_repo
from tests.support.timing import patience

# What only running tasks needs: none of it may be imported to list commands or read a report.
RUN_MACHINERY = (
    "orchestrator.council",
    "orchestrator.scheduler.scheduler",
    "orchestrator.state.team",
    "orchestrator.merge",
    "orchestrator.locks",
    "orchestrator.runner",
    "orchestrator.worktrees",
    "orchestrator.workflow",
    # The plugin host and pluggy; ``plugins.record_rule``, a small dataclass every store's
    # rules are made of, is not machinery.
    "orchestrator.plugins.host",
    "orchestrator.plugins.hookspecs",
    "orchestrator.plugins.registry",
    "orchestrator.git",
    "orchestrator.testing",
    "adapters",
    "git",
    "pluggy",
    "psycopg",
    "psycopg_pool",
    "tenacity",
)

# Runs the command as the `council` script does (main()), then writes what it imported.
PROBE = """\
import json, sys
out, sys.argv = sys.argv[1], ["council", *sys.argv[2:]]
from orchestrator.cli.app import main
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
built = []
if "pydantic" in sys.modules:  # the project's models whose validator was built
    from pydantic import BaseModel
    seen, todo = set(), [BaseModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    built = sorted(
        f"{c.__module__}:{c.__qualname__}" for c in seen if c.__pydantic_complete__
    )
with open(out, "w") as file:
    json.dump({"code": code, "modules": sorted(sys.modules), "built": built}, file)
"""

CONFIG = """\
repo: repo
adapters:
  fast: {type: scripted, options: {delay: 0}}
default_adapter: fast
workflow: {phases: [{name: build}]}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 5}
tasks:
  - {id: one, prompt: "WRITE one.txt first"}
"""

ENV = {**os.environ, "COUNCIL_DISABLE_PLUGINS": "1"}

# What only ``run -g`` (goal mode) and ``--approve`` use: a plain ``council run FILE`` imports
# none of it, nor does ``council run --help``.
GOAL_MODE = (
    "orchestrator.cli.goal_cmd",
    "orchestrator.cli.approve_cmd",
    "orchestrator.run.goal",
    "orchestrator.run.goal_hold",
    "orchestrator.run.config_check",
)


# What a plain one-task run (no team, no stacked pull requests, no services, no
# ``Council.events()`` stream) uses none of: each is imported where its feature is on.
UNUSED_BY_A_PLAIN_RUN = (
    "orchestrator.events.catalogue",  # every event family, for a stream's typed events
    "orchestrator.run.event_stream",
    "orchestrator.events.issues",
    "orchestrator.scheduler.team.part",  # team mode (a PostgreSQL store)
    "orchestrator.scheduler.team.train",
    "orchestrator.scheduler.pulls.stack",  # landing.pulls: stacked
    "orchestrator.scheduler.pulls.follower",  # landing.via: pull_request
    "orchestrator.scheduler.pulls.landing",
    "orchestrator.forge.base",  # a forge's client
    "rich",  # nothing drawn or styled: JSON on stdout, plain lines on stderr
    "orchestrator.coordination.desk",  # the council's tools: its CLI takes no MCP server
    "orchestrator.scheduler.session_services",  # a run's services:
    "orchestrator.services.session",
    "pydantic.type_adapter",
)

# Models built on first use (``defer_build``): a plain run validates none of them.
SELDOM_VALIDATED = (
    "orchestrator.config.forge:ForgeConfig",
    "orchestrator.config.services:ServiceConfig",
    "orchestrator.config.sources:SourceConfig",
    "orchestrator.config.mcp:McpServerConfig",
    "orchestrator.config.budgets:PriceConfig",
    "orchestrator.run.plan:RunPlan",
    "orchestrator.worktrees.models:ReconcileReport",
    "orchestrator.workflow.handoffs.document:VerifyRecord",
    "orchestrator.coordination.notes:Note",
    "adapters.claude_code:ClaudeCodeAdapter.Config",
)


def _probe(*args: str, cwd: Path, columns: int = 80) -> tuple[int, list[str], str]:
    """Exit code, imported modules and stdout of ``council ARGS`` (stdout piped)."""
    code, modules, shown, _ = _probe_models(*args, cwd=cwd, columns=columns)
    return code, modules, shown


def _probe_models(
    *args: str, cwd: Path, columns: int = 80
) -> tuple[int, list[str], str, list[str]]:
    """As ``_probe``, and the pydantic models whose validator the process built."""
    out = cwd / ".probe.json"
    shown = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**ENV, "COLUMNS": str(columns)},
        timeout=patience(60),
    )
    assert out.exists(), shown.stderr
    found = json.loads(out.read_text())
    out.unlink()
    return found["code"], found["modules"], shown.stdout, found["built"]


def _heavy(modules: list[str], names: tuple[str, ...] = RUN_MACHINERY) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(f"{n}.") for n in names)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding ``run.yaml`` and ``repo``, on which a real ``council run`` ended."""
    root = tmp_path_factory.mktemp("finished")
    new_repo(root)
    (root / "run.yaml").write_text(CONFIG)
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", "run.yaml", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=patience(120),
    )
    assert done.returncode == 0, done.stderr
    return root


@pytest.mark.parametrize("columns", [80, 160])
def test_help_lists_every_command_without_importing_any(tmp_path: Path, columns: int) -> None:
    code, modules, shown = _probe("--help", cwd=tmp_path, columns=columns)
    assert code == 0
    assert _heavy(modules) == []
    # Not one command's module, nor the models they all use: the table has the help lines.
    assert _heavy(modules, ("orchestrator.cli", "pydantic")) == [
        "orchestrator.cli",
        "orchestrator.cli.app",
        "orchestrator.cli.console",
        "orchestrator.cli.console.tables",  # the help's panels, drawn with rich
        "orchestrator.cli.lazy_group",
        "orchestrator.cli.root_help",
        "orchestrator.cli.startup_gc",  # the collector's pause (``gc`` only)
        "orchestrator.cli.table_layout",
    ]
    # Nor typer's help renderer, whose markdown and traceback imports cost more than the page.
    assert [m for m in modules if m.startswith(("typer.rich_utils", "markdown_it"))] == []
    rows = [line.strip("│ ").split(" ", 1) for line in shown.splitlines()]
    listed = {row[0]: " ".join(row[1].split()) for row in rows if len(row) == 2}
    for name, ref in COMMANDS.items():
        # A long help line wraps at 80 columns; its first words are on the command's row.
        assert ref.help.startswith(listed[name]), (name, listed.get(name))


def test_version_imports_nothing_of_the_commands(tmp_path: Path) -> None:
    code, modules, shown = _probe("--version", cwd=tmp_path)
    assert (code, shown.split()[0]) == (0, "council")
    assert _heavy(modules, (*RUN_MACHINERY, "orchestrator.cli.run_cmd", "pydantic")) == []


@pytest.mark.parametrize("columns", [80, 160])
def test_status_reads_the_report_without_the_run_machinery(
    finished_run: Path, columns: int
) -> None:
    code, modules, shown = _probe("status", cwd=finished_run / "repo", columns=columns)
    assert code == 0
    assert "1/1 done" in shown and "one" in shown
    # The current directory's run: no config is read either. Nor is a process looked at for
    # a finished run (psutil), nor a lock taken (portalocker reads package metadata on import).
    assert _heavy(modules, (*RUN_MACHINERY, "orchestrator.config", "yaml")) == []
    assert _heavy(modules, ("psutil", "portalocker")) == []


def test_status_of_a_config_reads_it_without_the_run_machinery(finished_run: Path) -> None:
    code, modules, shown = _probe("status", "run.yaml", "--json", cwd=finished_run)
    assert code == 0
    assert [(t["task_id"], t["status"]) for t in json.loads(shown)["tasks"]] == [("one", "done")]
    assert _heavy(modules) == []


def test_a_command_loads_when_it_runs(finished_run: Path) -> None:
    code, modules, _ = _probe("run", "run.yaml", "--dry-run", cwd=finished_run)
    assert code == 0
    assert "orchestrator.council" in modules and "orchestrator.cli.run_cmd" in modules


def test_run_help_imports_no_goal_mode_nor_the_run_machinery(tmp_path: Path) -> None:
    code, modules, shown = _probe("run", "--help", cwd=tmp_path)
    assert code == 0
    assert "--goal" in shown and "--approve" in shown and "--rounds" in shown
    assert "orchestrator.cli.run_cmd" in modules
    assert _heavy(modules, GOAL_MODE) == []
    # Nor the run machinery: the council is made (and imported) once the command runs. Only
    # git's readers come in, with ``--if-base-dirty``'s choices (``run.base_checkout``).
    readers = _heavy(modules, ("orchestrator.git", "orchestrator.merge.checkout"))
    assert "orchestrator.merge.checkout" in readers
    assert [m for m in _heavy(modules) if m not in readers] == ["orchestrator.merge"]


def test_a_plain_run_imports_no_goal_mode(tmp_path: Path) -> None:
    new_repo(tmp_path)
    (tmp_path / "run.yaml").write_text(CONFIG)
    code, modules, shown, built = _probe_models("run", "run.yaml", "--json", cwd=tmp_path)
    assert code == 0
    assert [(t["task_id"], t["status"]) for t in json.loads(shown)["tasks"]] == [("one", "done")]
    assert "orchestrator.scheduler.scheduler" in modules  # it ran, and imported what that takes
    assert _heavy(modules, GOAL_MODE) == []
    # Nor the features it does not use, nor the event catalogue no stream asked for.
    assert _heavy(modules, UNUSED_BY_A_PLAIN_RUN) == []
    # The models such a run never validates are built on first use, not at import.
    assert sorted(set(built) & set(SELDOM_VALIDATED)) == []


def test_goal_rounds_default_is_goal_modes() -> None:
    from orchestrator.cli import goal_options
    from orchestrator.run import goal

    assert goal_options.DEFAULT_ROUNDS == goal.DEFAULT_ROUNDS


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_table_line_loads_its_command_with_the_same_help(name: str) -> None:
    ref = COMMANDS[name]
    command = load_command(name, ref)
    assert command.name == name
    first_paragraph = " ".join(command.help.strip().split("\n\n")[0].split())
    assert first_paragraph == ref.help


def test_completion_lists_commands_and_completes_a_deferred_one(tmp_path: Path) -> None:
    def complete(*words: str) -> list[str]:
        env = {
            **ENV,
            "_COUNCIL_COMPLETE": "complete_bash",
            "COMP_WORDS": " ".join(["council", *words]),
            "COMP_CWORD": str(len(words)),
        }
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=patience(60),
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("c") == ["cancel", "cost", "config", "checkpoint", "clean"]  # --help order
    assert complete("checkpoint", "l") == ["list"]
    assert complete("status", "--w") == ["--watch", "--wide"]
