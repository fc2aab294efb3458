"""A build that could not write is ``permission_denied`` (final), never success and never "no
changes, retry".

Each test runs the real workflow (git, worktrees, the store) with a built-in adapter whose CLI
is ``replay_cli.py``: it prints a recorded run of the real CLI (``tests/support/transcripts/``), so
the adapter parses exactly what that CLI said, and the worktree stays as the real run left it
(nothing written). The adapter's options are those of the recording.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.models import PhaseStatus
from orchestrator.workflow.task_run import WorkflowResult, WorkflowStatus
from orchestrator.workflow.workflow import run_workflow
from tests.support.workflow_helpers import Harness, harness, task

__all__ = ["harness"]

TRANSCRIPTS = Path(__file__).parents[1] / "support" / "transcripts"
REPLAY = Path(__file__).parents[1] / "support" / "replay_cli.py"
TYPES = {"claude": "claude_code"}


def replaying(
    tmp: Path, cli: str, case: str, directory: Path, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The adapter entry of a run config whose CLI replays ``directory/case``, with the
    options the recording was made with (or ``options``)."""
    launcher = tmp / f"replay-{cli}-{case}"
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} {REPLAY} "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    meta = json.loads((directory / f"{case}.meta.json").read_text())
    return {
        "type": TYPES.get(cli, cli),
        "executable": str(launcher),
        "options": meta.get("options", {}) if options is None else options,
        "env": {"REPLAY_DIR": str(directory), "REPLAY_CASE": case},
    }


async def build_once(harness: Harness, entry: dict[str, Any]) -> WorkflowResult:
    config = harness.config(
        task({}, phases=["build"]), adapters={"cli": entry}, default_adapter="cli"
    )
    return await run_workflow(await harness.start(config, adapter="cli"))


DENIED_RUNS = [
    # (cli, directory under transcripts, case, a piece of the message)
    ("qwen", "denials/qwen", "approval_auto", "permission denied: write_file"),
    ("qwen", "denials/qwen", "auto_no_attempt", "approval mode 'auto'"),
    ("opencode", "denials/opencode", "ask_edit", "opencode refused"),
    ("opencode", "denials/opencode", "plan_agent", "rule which prevents you"),
    ("gemini", "denials/gemini", "plan_mode", "Access denied"),
    ("gemini", "denials/gemini", "default_mode", "approval mode 'default'"),
    ("claude", "denials/claude", "default_mode", "haven't granted it yet"),
    ("aider", "denials/aider", "gitignored_edit", "build/out.txt"),
]


@pytest.mark.parametrize(("cli", "where", "case", "says"), DENIED_RUNS)
async def test_a_denied_or_read_only_build_is_permission_denied(
    harness: Harness, cli: str, where: str, case: str, says: str
) -> None:
    entry = replaying(harness.tmp, cli, case, TRANSCRIPTS / where)
    result = await build_once(harness, entry)

    assert result.status == WorkflowStatus.FAILED, result
    assert (result.phase, result.outcome_kind) == ("build", "permission_denied"), result
    assert result.retryable is False  # the same options would be refused the same way
    assert says in result.message, result.message
    record = (await harness.state()).phases["build"]
    assert record.status == PhaseStatus.FAILED and record.outcome == "permission_denied"


async def test_a_read_only_adapter_whose_cli_said_nothing_is_still_denied(
    harness: Harness,
) -> None:
    # gemini 0.61 in approval mode "default", the model never trying to write: no denial in
    # the output at all, the run "succeeded"; only the options tell it could not write.
    default = {"approval_mode": "default"}  # as recorded (the older recordings keep no options)
    entry = replaying(harness.tmp, "gemini", "no_approval", TRANSCRIPTS / "gemini", default)
    result = await build_once(harness, entry)
    assert result.outcome_kind == "permission_denied" and result.retryable is False
    assert "gemini: approval mode 'default'" in result.message


async def test_a_writing_adapter_that_changed_nothing_is_still_no_changes(
    harness: Harness,
) -> None:
    # The same success output through adapters that can write: nothing refused, nothing
    # written (the replay writes nothing), so another attempt may do better.
    entry = replaying(harness.tmp, "qwen", "approval_yolo", TRANSCRIPTS / "denials" / "qwen")
    result = await build_once(harness, entry)
    assert (result.outcome_kind, result.retryable) == ("no_changes", True), result
