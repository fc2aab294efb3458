"""A run needs no network beyond the model's endpoint (issue 11, defect 6): aider used to fetch
a price list and opencode ~5 MB of npm packages on every run. Each real CLI runs under strace
through `council run`; every connection it or any child makes goes to 127.0.0.1 (the fake
model) or a local socket, nothing else, not even a DNS lookup."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from orchestrator.testing.live_scenarios import WRITE, Scenario, run_scenario
from tests.support import real_clis

_CONNECT = re.compile(r"connect\(\d+, \{sa_family=(AF_INET6?), (.*?)\}")
_LOOPBACK = re.compile(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"|"::ffff:127\.')


def _traced(tmp_path: Path, binary: Path) -> tuple[Path, Path]:
    """A launcher that runs ``binary`` under strace, and the trace it writes."""
    strace = shutil.which("strace")
    if strace is None:
        if real_clis.required():
            pytest.fail("strace is not installed (CI installs it: apt-get install strace)")
        pytest.skip("strace is not installed: apt-get install strace to run this test")
    trace = tmp_path / "trace" / "connections.trace"
    trace.parent.mkdir()
    launcher = tmp_path / "bin" / binary.name
    launcher.parent.mkdir()
    launcher.write_text(
        f'#!/bin/sh\nexec {strace} -f -qq -e trace=connect -o {trace} {binary} "$@"\n'
    )
    launcher.chmod(0o755)
    return launcher, trace


@pytest.mark.parametrize(
    "cli", [pytest.param(name, marks=pytest.mark.real_cli(name)) for name in real_clis.CLIS]
)
def test_a_run_connects_to_nothing_but_the_model(
    cli: str, tmp_path: Path, real_cli_binary: Path
) -> None:
    _assert_offline(cli, WRITE, tmp_path, real_cli_binary)


# A repository's own opencode configuration directory (agents, commands): opencode 1.18.33
# installs @opencode-ai/plugin into every config directory whose node_modules/ is missing
# (Npm.install in its bundle), and a fresh worktree never has one: registry.npmjs.org on
# every run (measured: 203.0.113.80:443 and a DNS lookup). Seeding the worktree's .opencode/
# the way the private config directory is seeded is not done yet (it writes into the user's
# tree); this case flips to passing when it is.
_REPO_OPENCODE = dataclasses.replace(
    WRITE,
    seed_files={".opencode/agent/reviewer.md": "---\ndescription: Reviews\n---\nReview it.\n"},
)


@pytest.mark.real_cli("opencode")
@pytest.mark.xfail(strict=True, reason="a repository .opencode/ makes opencode install from npm")
def test_a_repository_opencode_directory_needs_no_network(
    tmp_path: Path, real_cli_binary: Path
) -> None:
    _assert_offline("opencode", _REPO_OPENCODE, tmp_path, real_cli_binary)


def _assert_offline(cli: str, scenario: Scenario, tmp_path: Path, binary: Path) -> None:
    launcher, trace = _traced(tmp_path, binary)
    # strace runs inside the CLI's sandbox, beside it: it may write its trace there, and it
    # starts the CLI by a path the sandbox learns only from this wrapper's text.
    sandbox = {"write": [str(trace.parent)], "read": [str(binary.parent.parent)]}
    scenario = dataclasses.replace(scenario, config={**scenario.config, "sandbox": sandbox})

    outcome = run_scenario(cli, scenario, tmp_path, executable=launcher)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    connections = _CONNECT.findall(trace.read_text())
    assert connections, "the trace saw no connection at all (not even to the model)"
    elsewhere = [address for family, address in connections if not _LOOPBACK.search(address)]
    assert not elsewhere, f"{cli} connected beyond the model: {sorted(set(elsewhere))}"
