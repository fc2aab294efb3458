"""Issue 29: ``extra_args`` reach each real CLI's command line and the CLI honours them. Per
CLI a harmless flag of its own, listed by the pinned release's ``--help``, that the adapter
does not set; the run must succeed with the flag on the
command line the log records, and where the flag changes what the CLI sends, the fake model
must see that change."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from orchestrator.testing.live_scenarios import WRITE, run_scenario
from orchestrator.testing.live_targets import BUILTIN_TARGETS
from tests.support import real_clis

MARK = "council-extra-args-mark-7f3a"
# cli -> (extra args, does the mark reach the model's requests?)
EXTRA: dict[str, tuple[list[str], bool]] = {
    "claude": (["--append-system-prompt", MARK], True),  # appended to the system prompt
    "codex": (["--color", "never"], False),  # `codex exec` output colouring
    "gemini": (["--screen-reader"], False),  # accessibility mode: plain output
    "qwen": (["--screen-reader"], False),
    "opencode": (["--title", MARK], False),  # the session's title, stored locally
    "aider": (["--no-suggest-shell-commands"], False),  # a shorter system prompt
}


def _cli(name: str) -> object:
    return pytest.param(name, marks=[pytest.mark.real_cli(name)], id=name)


@pytest.mark.parametrize("cli", [_cli(name) for name in real_clis.CLIS])
def test_extra_args_reach_the_cli_and_it_honours_them(
    cli: str, tmp_path: Path, real_cli_binary: Path
) -> None:
    extra, seen_by_model = EXTRA[cli]
    base = BUILTIN_TARGETS[cli]
    target = dataclasses.replace(
        base, options=lambda model: {**base.options(model), "extra_args": extra}
    )

    outcome = run_scenario(cli, WRITE, tmp_path, target=target, executable=real_cli_binary)

    assert outcome.passed, f"{outcome.reason}\n--- council output ---\n{outcome.output}"
    logs = sorted((tmp_path / "repo" / ".council" / "logs").glob("*.log"))
    # The header's argv is shell-quoted and the prompt spans lines: look at what follows it.
    headers = [log.read_text(errors="replace")[:20_000] for log in logs]
    commands = [h.split("# argv:", 1)[1] for h in headers if "# argv:" in h]
    assert any(" ".join(extra) in command for command in commands), commands
    bodies = [json.dumps(r.body) for r in outcome.requests if not r.side]
    if seen_by_model:
        assert any(MARK in body for body in bodies), bodies[:1]
