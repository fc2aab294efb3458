"""The ``council`` script pauses the garbage collector while its command's modules import,
then freezes what they built and resumes it (``orchestrator.cli.startup_gc``); a process the
commands run inside of (a test runner) is left as it was."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

from orchestrator.cli.app import COMMANDS
from orchestrator.cli.lazy_group import load_command

PROBE = """
import atexit, gc, json, sys
from orchestrator.cli.app import main
atexit.register(lambda: print(json.dumps([gc.isenabled(), gc.get_freeze_count()])))
sys.argv = ["council", *sys.argv[1:]]
main()
"""


def probe(*argv: str) -> tuple[bool, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=False
    )
    enabled, frozen = json.loads(done.stdout.strip().splitlines()[-1])
    return bool(enabled), int(frozen)


def test_a_command_run_by_the_script_resumes_the_collector_with_its_modules_frozen() -> None:
    enabled, frozen = probe("run", "--help")
    assert enabled
    assert frozen > 20_000  # the run machinery's objects: modules, classes, schemas


def test_no_command_leaves_the_collector_paused_only_until_exit() -> None:
    enabled, frozen = probe("--help")  # no command's module imported: nothing to settle
    assert frozen == 0
    assert not enabled  # paused for a process that only prints its help and exits


def test_loading_a_command_elsewhere_leaves_the_collector_alone() -> None:
    before = gc.get_freeze_count()
    load_command("status", COMMANDS["status"])
    assert gc.isenabled() and gc.get_freeze_count() == before
