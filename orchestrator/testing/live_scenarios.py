"""Drive a real CLI through the real ``council run`` against the fake model, and say what landed.

A ``Scenario`` is a fake-model script plus what should come of it: the task's final status and
the files the base branch should then hold. ``run_scenario`` makes a temporary git repository
(seeded with the scenario's files), starts a ``FakeModel``, writes a one-task run config that
points the CLI's adapter at it (``live_targets``), runs ``council run`` as a subprocess, and
returns a ``ScenarioOutcome``: the task's status and error, the files on the base branch, the
requests the model saw, and how long it took::

    from orchestrator.testing.live_scenarios import WRITE, run_scenario

    outcome = run_scenario("claude", WRITE, tmp_path)
    assert outcome.passed, outcome.reason

For a plugin's own CLI, pass ``target=LiveTarget(...)`` (see ``live_targets``) and
``executable=`` if the binary is not found by ``live_targets.find_cli``. Third-party plugins
load as in any ``council run`` (unless ``COUNCIL_DISABLE_PLUGINS`` is set).

Nothing leaves the machine: the CLI talks to 127.0.0.1 only, with a fake key.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from orchestrator.council import stored_report
from orchestrator.errors import CouncilError
from orchestrator.process.command import run_command
from orchestrator.testing import patience
from orchestrator.testing.fake_model import (
    EditFile,
    FakeModel,
    FinalText,
    RecordedRequest,
    Step,
    WriteFile,
)
from orchestrator.testing.live_targets import BUILTIN_TARGETS, LiveTarget, find_cli

__all__ = [
    "EDIT",
    "SCENARIOS",
    "TASK_ID",
    "WRITE",
    "Scenario",
    "ScenarioOutcome",
    "arun_scenario",
    "run_scenario",
]

TASK_ID = "scenario"
BASE_BRANCH = "main"
_IDENTITY = ["-c", "user.name=Scenario Seed", "-c", "user.email=seed@example.invalid"]
PATIENCE_ENV = patience.PATIENCE_ENV
"""``Scenario.timeout`` is a safety net for a hung run, times ``patience.factor()``: this
variable's number when set, else the machine's load per core."""


def patience_factor() -> float:
    """``patience.factor()``: ``COUNCIL_TEST_PATIENCE``, else the measured load (at least 1)."""
    return patience.factor()


_README = "# Scenario repository\n\nMade by orchestrator.testing.live_scenarios.\n"


@dataclass(frozen=True)
class Scenario:
    """A script for the fake model and the result it should have through ``council run``."""

    name: str
    script: tuple[Step, ...]
    prompt: str
    expected_status: str = "done"  # the task's final status (done, failed, ...)
    expected_failure: str | None = None  # for a failed task: rate_limited, auth_required...
    expected_files: Mapping[str, str | None] = field(default_factory=dict)  # None: absent
    seed_files: Mapping[str, str] = field(default_factory=dict)  # on the base before the run
    timeout: float = 60.0  # seconds for the whole `council run`, times ``patience_factor()``
    config: Mapping[str, Any] = field(default_factory=dict)  # run-config sections to override
    api_key: str | None = None  # the key the fake model accepts (None: any)


@dataclass(frozen=True)
class ScenarioOutcome:
    """What came of one scenario on one CLI."""

    cli: str
    scenario: Scenario
    status: str | None  # the task's final status; None when no report could be read
    error: str | None  # the task's error, or why there is no report
    failure: str | None  # why a failed task failed: rate_limited, auth_required, ...
    parks: int  # how many times the task was parked on a rate limit
    exit_code: int | None  # of `council run`; None when it was stopped for its timeout
    landed: dict[str, str | None]  # expected path -> its content on the base branch
    requests: list[RecordedRequest]
    seconds: float
    output: str  # the tail of council's own output (stdout and stderr)

    @property
    def passed(self) -> bool:
        return not self.reason

    @property
    def reason(self) -> str:
        """Why the scenario did not pass, in one line ("" when it did)."""
        if self.exit_code is None:
            return f"council run did not finish within {self.scenario.timeout:g}s"
        problems = []
        if self.status != self.scenario.expected_status:
            problems.append(
                f"task {self.status or 'unknown'}, expected {self.scenario.expected_status}"
                + (f": {self.error}" if self.error else "")
            )
        wanted_failure = self.scenario.expected_failure
        if wanted_failure is not None and self.failure != wanted_failure:
            problems.append(f"failed as {self.failure}, expected {wanted_failure}")
        for path, wanted in self.scenario.expected_files.items():
            got = self.landed.get(path)
            if got != wanted:
                state = "absent" if got is None else f"{got!r}"
                problems.append(f"{path} on {BASE_BRANCH} is {state}, expected {wanted!r}")
        return "; ".join(problems)


WRITE = Scenario(
    name="write",
    script=(
        WriteFile("hello.txt", "hello from the fake model\n"),
        FinalText("Created hello.txt as asked."),
    ),
    prompt="Create the file hello.txt with the greeting you are scripted to write.",
    expected_files={"hello.txt": "hello from the fake model\n"},
)

EDIT = Scenario(
    name="edit",
    script=(
        EditFile("notes.txt", "second line", "second line, edited"),
        FinalText("Edited notes.txt as asked."),
    ),
    prompt="In notes.txt, change the second line as you are scripted to.",
    seed_files={"notes.txt": "first line\nsecond line\nthird line\n"},
    expected_files={"notes.txt": "first line\nsecond line, edited\nthird line\n"},
)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (WRITE, EDIT)}


def run_scenario(
    cli: str,
    scenario: Scenario,
    tmp_path: Path,
    *,
    target: LiveTarget | None = None,
    executable: Path | None = None,
) -> ScenarioOutcome:
    """Run ``scenario`` on ``cli`` in a fresh repository under ``tmp_path`` (see the module)."""
    return anyio.run(_run, cli, scenario, tmp_path, target, executable)


async def arun_scenario(
    cli: str,
    scenario: Scenario,
    tmp_path: Path,
    *,
    target: LiveTarget | None = None,
    executable: Path | None = None,
) -> ScenarioOutcome:
    """``run_scenario`` for callers already in an event loop (the fake model runs in threads)."""
    return await _run(cli, scenario, tmp_path, target, executable)


async def _run(
    cli: str,
    scenario: Scenario,
    tmp_path: Path,
    target: LiveTarget | None,
    executable: Path | None,
) -> ScenarioOutcome:
    target = target or BUILTIN_TARGETS.get(cli)
    if target is None:
        raise CouncilError(f"no live target for {cli!r}: pass target=LiveTarget(...)")
    binary = executable or find_cli(target.cli)
    if binary is None:
        raise CouncilError(f"{target.cli!r} is not installed (looked in .clis/bin and PATH)")
    repo = tmp_path / "repo"
    await _seed(repo, scenario.seed_files)
    started = time.monotonic()
    with FakeModel(scenario.script, api_key=scenario.api_key) as model:
        config = _config(repo, target, binary, model, scenario)
        config_file = tmp_path / "council.yaml"  # JSON is YAML
        await anyio.to_thread.run_sync(
            _write_files, tmp_path, {config_file.name: json.dumps(config, indent=2) + "\n"}
        )
        argv = [sys.executable, "-m", "orchestrator.cli.app", "run", str(config_file), "--json"]
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        done = await run_command(
            argv, cwd=tmp_path, env=env, timeout=scenario.timeout * patience_factor()
        )
        requests = model.requests
    seconds = time.monotonic() - started
    status, error, failure, parks = await _task(repo)
    landed = {path: await _on_base(repo, path) for path in scenario.expected_files}
    return ScenarioOutcome(
        cli=target.cli,
        scenario=scenario,
        status=status,
        error=error,
        failure=failure,
        parks=parks,
        exit_code=done.returncode,
        landed=landed,
        requests=requests,
        seconds=seconds,
        output=done.output[-4000:],
    )


def _config(
    repo: Path, target: LiveTarget, binary: Path, model: FakeModel, scenario: Scenario
) -> dict[str, Any]:
    adapter: dict[str, Any] = {
        "type": target.adapter_type,
        "executable": str(binary),
        "options": target.options(model),
        "env": dict(target.env),
        **target.settings,
    }
    if target.model:
        adapter["model"] = target.model
    phase_limit = max(scenario.timeout - 10, 5)
    config: dict[str, Any] = {
        "repo": str(repo),
        "base_branch": BASE_BRANCH,
        "adapters": {target.cli: adapter},
        "default_adapter": target.cli,
        "capacity": {"sessions": 1},
        "workflow": {"phases": [{"name": "build", "timeout": f"{phase_limit:g}s"}]},
        "retry": {"max_retries": 0, "backoff_initial": "100ms", "backoff_max": "1s"},
        "scheduler": {"tick": "50ms", "heartbeat_interval": "1s", "stale_threshold": "60s"},
        "tasks": [
            {"id": TASK_ID, "prompt": scenario.prompt, "files": sorted(scenario.expected_files)}
        ],
    }
    return {**config, **scenario.config}


async def _seed(repo: Path, files: Mapping[str, str]) -> None:
    await anyio.to_thread.run_sync(_write_files, repo, {"README.md": _README, **files})
    await _git(repo, "init", "-q", "-b", BASE_BRANCH)
    await _git(repo, "add", "-A")
    await _git(repo, *_IDENTITY, "commit", "-q", "-m", "scenario seed")


def _write_files(root: Path, files: Mapping[str, str]) -> None:
    for path, content in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(content)


async def _git(repo: Path, *args: str) -> str:
    done = await run_command(["git", *args], cwd=repo, timeout=30)
    if not done.ok:
        raise CouncilError(f"git {' '.join(args)} failed in {repo}: {done.output.strip()}")
    return done.output


async def _on_base(repo: Path, path: str) -> str | None:
    done = await run_command(["git", "show", f"{BASE_BRANCH}:{path}"], cwd=repo, timeout=30)
    return done.output if done.ok else None


async def _task(repo: Path) -> tuple[str | None, str | None, str | None, int]:
    """The task's status, error, why it failed (``rate_limited``...) and its park count."""
    try:
        report = await stored_report(repo / ".council" / "state")
    except (CouncilError, OSError) as exc:
        return None, f"no run report: {exc}", None, 0
    task = next((t for t in report.tasks if t.task_id == TASK_ID), None)
    if task is None:
        return None, "the run report has no task", None, 0
    return str(task.status), task.error, task.outcome, task.parks
