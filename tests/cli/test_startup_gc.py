"""The ``council`` script pauses the garbage collector while its command's modules import,
then freezes what they built and resumes it (``orchestrator.cli.startup_gc``); a process the
commands run inside of (a test runner) is left as it was."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from orchestrator.cli.app import COMMANDS, app
from orchestrator.cli.lazy_group import load_command
from orchestrator.models import TaskStatus
from orchestrator.state import FileStateStore

PROBE = """
import atexit, gc, json, sys
from orchestrator.cli import startup_gc
from orchestrator.cli.app import main
ending, seen = startup_gc.ending, []
def end():
    seen.append(gc.get_freeze_count())  # as the command left it
    ending()
startup_gc.ending = end
atexit.register(lambda: print(json.dumps([gc.isenabled(), *seen, gc.get_freeze_count()])))
sys.argv = ["council", *sys.argv[1:]]
main()
"""


def probe(*argv: str) -> tuple[bool, int, int]:
    """Whether the collector is on at exit, and how many objects were frozen as the command
    ended and at exit."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=False
    )
    enabled, frozen, at_exit = json.loads(done.stdout.strip().splitlines()[-1])
    return bool(enabled), int(frozen), int(at_exit)


def test_a_command_run_by_the_script_resumes_the_collector_with_its_modules_frozen() -> None:
    enabled, frozen, _ = probe("run", "--help")
    assert enabled
    assert frozen > 20_000  # the run machinery's objects: modules, classes, schemas


def test_no_command_leaves_the_collector_paused_only_until_exit() -> None:
    enabled, frozen, _ = probe("--help")  # no command's module imported: nothing to settle
    assert frozen == 0
    assert not enabled  # paused for a process that only prints its help and exits


def test_what_the_command_leaves_is_frozen_for_the_exit() -> None:
    """The interpreter's last collection walks nothing the command made (``ending``): all of it
    frozen as the command returns, whether a command ran or not."""
    for argv in (("--help",), ("run", "--help")):
        _, frozen, at_exit = probe(*argv)
        assert at_exit > frozen
        assert at_exit > 20_000  # everything alive: typer, rich, the modules, their objects


def test_loading_a_command_elsewhere_leaves_the_collector_alone() -> None:
    before = gc.get_freeze_count()
    load_command("status", COMMANDS["status"])
    assert gc.isenabled() and gc.get_freeze_count() == before


IMPORT_PROBE = """
import gc, json, sys
sys.argv[0] = sys.argv[1]
import orchestrator.cli
print(json.dumps(not gc.isenabled()))
"""


def test_the_script_pauses_the_collector_from_its_first_module_on() -> None:
    """Before typer and rich import: ``orchestrator.cli`` holds it when ``argv[0]`` names the
    ``council`` script (``startup_gc.hold_for_the_script``), and not otherwise."""

    def paused_by(argv0: str) -> bool:
        done = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE, argv0], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return bool(json.loads(done.stdout))

    assert paused_by("/venv/bin/council")
    assert not paused_by("/venv/bin/pytest")
    assert not paused_by("-c")


MODULE_PROBE = """
import gc, json, sys
sys.orig_argv = [sys.executable, *sys.argv[1:]]  # the interpreter's command line, as given
import orchestrator.cli
print(json.dumps(not gc.isenabled()))
"""


def test_the_app_module_run_as_the_script_pauses_it_as_the_script_does() -> None:
    """``python -m orchestrator.cli.app`` (how the tests start the command) holds it from the
    package's import on, as the ``council`` script does; another module run so does not."""

    def paused_by(*command_line: str) -> bool:
        done = subprocess.run(
            [sys.executable, "-c", MODULE_PROBE, *command_line],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return bool(json.loads(done.stdout))

    assert paused_by("-m", "orchestrator.cli.app", "run", "--help")
    assert paused_by("-I", "-m", "orchestrator.cli.app")
    assert paused_by("-X", "importtime", "-m", "orchestrator.cli.app", "status")
    assert not paused_by("-m", "pytest", "-m", "orchestrator.cli.app")  # pytest's own -m
    assert not paused_by("-m", "orchestrator.cli.apps")
    assert not paused_by("script.py", "orchestrator.cli.app")
    assert not paused_by("-mpytest", "-m", "orchestrator.cli.app")  # joined: pytest runs
    assert not paused_by("-c", "pass", "-m", "orchestrator.cli.app")


STATUS_PROBE = """
import atexit, gc, json, sys
sys.argv = ["council", "status"]
from orchestrator.cli.app import main
atexit.register(lambda: print(json.dumps(gc.isenabled())))
main()
"""


async def _recorded(root: Path) -> None:
    async with FileStateStore(root) as store:
        await store.create_session({}, ["a"])
        await store.update_task_state("a", {"status": TaskStatus.DONE})


def test_a_status_look_leaves_the_collector_paused_only_in_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one look runs without the collector; the ``council`` command ends with it paused
    (resumed, it would walk everything the look made, only to exit); ``status`` run inside
    another process (this test runner) gives it back as it was."""
    repo = tmp_path / "repo"
    (repo / ".council").mkdir(parents=True)
    anyio.run(_recorded, repo / ".council" / "state")
    done = subprocess.run(
        [sys.executable, "-c", STATUS_PROBE], cwd=repo, capture_output=True, text=True, check=False
    )
    assert "1/1 done" in done.stdout, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) is False

    monkeypatch.chdir(repo)
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    shown = CliRunner().invoke(app, ["status"])
    assert shown.exit_code == 0 and "1/1 done" in shown.output, shown.output
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen  # nothing frozen in a process that goes on


def test_the_end_of_a_command_run_inside_another_process_freezes_nothing() -> None:
    """``ending`` in a process that is not the ``council`` command (this test runner goes on
    after it): nothing frozen."""
    from orchestrator.cli import startup_gc

    frozen = gc.get_freeze_count()
    startup_gc.ending()
    assert gc.get_freeze_count() == frozen
