"""A run that could not write is never success (issue 11, defect 5): each real CLI in a mode
that refuses writes (its own permission setting) is asked to write a file through `council
run`; the build ends `failed` as `permission_denied`, nothing lands, and it is not retried as
"no changes". aider has no permission mode that refuses an edit (it applies what the model
writes): its case is the adapter's read-only mode, ``dry_run`` (aider's ``--dry-run``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from orchestrator.testing.fake_model import FinalText, WriteFile
from orchestrator.testing.live_scenarios import Scenario, run_scenario
from orchestrator.testing.live_targets import BUILTIN_TARGETS

READ_ONLY: Mapping[str, Mapping[str, Any]] = {
    "claude": {"permission_mode": "default"},
    "codex": {"sandbox": "read-only"},
    "gemini": {"approval_mode": "default"},
    "qwen": {"approval_mode": "default"},
    "opencode": {"auto_approve": False},
    "aider": {"dry_run": True},
}

REFUSED = Scenario(
    "refused write",
    (WriteFile("hello.txt", "hello from the fake model\n"), FinalText("Done.")),
    "Create the file hello.txt with the greeting you are scripted to write.",
    expected_status="failed",
    expected_failure="permission_denied",
    expected_files={"hello.txt": None},
)


@pytest.mark.parametrize(
    "cli", [pytest.param(name, marks=pytest.mark.real_cli(name)) for name in READ_ONLY]
)
def test_a_cli_that_may_not_write_ends_permission_denied(
    cli: str, tmp_path: Path, real_cli_binary: Path
) -> None:
    target = BUILTIN_TARGETS[cli]
    read_only = dataclasses.replace(
        target, options=lambda model: {**target.options(model), **READ_ONLY[cli]}
    )

    outcome = run_scenario(cli, REFUSED, tmp_path, target=read_only, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    assert outcome.exit_code is not None  # it ended by itself, not stopped for its timeout
    assert outcome.exit_code != 0  # a failed task fails the run
