"""gemini and qwen each run as one Node.js process (``adapters/gemini.py``, ``adapters/qwen.py``).

Started as they are, both load their whole bundle, then start it again in a child process and
wait for it (gemini to raise its heap to half the machine's memory, qwen for its memory setting
and self-update): every CLI start paid twice. The run turns that off; gemini gets the same heap
through ``NODE_OPTIONS``. The fake model has the CLI run a shell command that lists every
process of its sandbox (a pid namespace of its own) with its command line and its
``NODE_OPTIONS``; the tool's answer, in the CLI's next request to the model, must show one
Node.js process of the CLI, and for gemini the heap its restart would have given.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator.testing.fake_model import CallTool, FinalText, WriteFile
from orchestrator.testing.live_scenarios import Scenario, run_scenario

# No command substitution: gemini refuses a shell command with one.
LIST = (
    "for f in /proc/[0-9]*/cmdline; do printf 'process %s: ' \"$f\"; tr '\\0' ' ' < \"$f\"; "
    "echo; done; grep -a -o 'NODE_OPTIONS=[^[:cntrl:]]*' /proc/[0-9]*/environ"
)
SCENARIO = Scenario(
    name="one-process",
    script=(
        CallTool("run_shell_command", {"command": LIST}),
        WriteFile("hello.txt", "hello from the fake model\n"),
        FinalText("Listed the processes and created hello.txt."),
    ),
    prompt="List the processes of your sandbox, then create hello.txt.",
    expected_files={"hello.txt": "hello from the fake model\n"},
    timeout=90.0,
)
PROCESS = re.compile(r"^process /proc/(\d+)/cmdline: (.*)$")
OPTIONS = re.compile(r"^/proc/(\d+)/environ:NODE_OPTIONS=(.*)$")


def _strings(value: Any) -> list[str]:
    """Every string of a request's JSON body."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


@pytest.mark.parametrize(
    "cli", [pytest.param(name, marks=pytest.mark.real_cli(name)) for name in ("gemini", "qwen")]
)
def test_the_cli_runs_as_one_node_process(cli: str, tmp_path: Path, real_cli_binary: Path) -> None:
    outcome = run_scenario(cli, SCENARIO, tmp_path, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    listed = [s for r in outcome.requests for s in _strings(r.body) if "process /proc/" in s]
    assert listed, [r.answer for r in outcome.requests]
    lines = listed[0].splitlines()
    commands = {m[1]: m[2] for line in lines if (m := PROCESS.match(line.strip()))}
    options = {m[1]: m[2] for line in lines if (m := OPTIONS.match(line.strip()))}
    # The CLI's loads: Node.js running its program (the sandbox's own init, the shell, the
    # council's relay and the listing are the others). qwen's launcher (its ``bin``,
    # ``cli-entry.js``, which loads none of the CLI) starts ``cli.js``: that is its one load.
    # A restart would be a second load, a child of the first.
    node = [pid for pid, command in commands.items() if Path(command.split()[0]).name == "node"]
    loads = [pid for pid in node if cli != "qwen" or "/cli.js " in commands[pid]]
    assert len(loads) == 1, [commands[pid][:150] for pid in node]
    if cli == "gemini":
        half = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (2 * 1024 * 1024)
        assert options.get(loads[0]) == f"--max-old-space-size={half}", listed[0]
    assert json.dumps(outcome.landed) == json.dumps(SCENARIO.expected_files)
