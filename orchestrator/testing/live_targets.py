"""How each built-in adapter is pointed at the fake model, and where the real CLIs are.

A ``LiveTarget`` is what a run config needs to drive one CLI against a ``FakeModel``: the
adapter type, a model name the CLI accepts, the adapter ``options`` that carry the fake
model's URL, and the ``env`` with a (fake) key. A plugin author writes one for their own
adapter and passes it to ``live_scenarios.run_scenario(..., target=...)``::

    LiveTarget(
        cli="mycli",
        adapter_type="mycli",
        model="fake-model",
        options=lambda model: {"base_url": model.openai_base_url},
        env={"MYCLI_API_KEY": FAKE_KEY},
    )

``find_cli`` looks for a binary in ``$COUNCIL_CLIS_DIR/bin``, then ``./.clis/bin`` (where
``.ci/install-clis`` puts the pinned releases), then on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.testing.fake_model import FakeModel

__all__ = ["BUILTIN_TARGETS", "CLIS_DIR_ENV", "FAKE_KEY", "LiveTarget", "cli_dirs", "find_cli"]

CLIS_DIR_ENV = "COUNCIL_CLIS_DIR"
FAKE_KEY = "fake-model-key-0123456789"  # long enough to be redacted like a real key


@dataclass(frozen=True)
class LiveTarget:
    """One CLI, as a run config drives it against the fake model."""

    cli: str  # the binary's name
    adapter_type: str  # the adapter plugin that drives it
    model: str | None  # a model name the CLI accepts (some pick their tools by it)
    options: Callable[[FakeModel], dict[str, Any]]  # adapter options for this server
    env: Mapping[str, str] = field(default_factory=dict)  # the CLI's key variables
    settings: Mapping[str, Any] = field(default_factory=dict)  # more adapter keys (credentials)


BUILTIN_TARGETS: dict[str, LiveTarget] = {
    target.cli: target
    for target in (
        LiveTarget(
            cli="claude",
            adapter_type="claude_code",
            model="claude-sonnet-4-5",
            options=lambda model: {"base_url": model.base_url},
            env={"ANTHROPIC_API_KEY": FAKE_KEY},
        ),
        LiveTarget(
            cli="codex",
            adapter_type="codex",
            model="gpt-5.5",  # a catalog model: codex offers it the apply_patch tool
            options=lambda model: {"base_url": model.openai_base_url},
            env={"OPENAI_API_KEY": FAKE_KEY},
        ),
        LiveTarget(
            cli="gemini",
            adapter_type="gemini",
            model="gemini-2.5-flash",
            options=lambda model: {"base_url": model.base_url},
            env={"GEMINI_API_KEY": FAKE_KEY},
        ),
        LiveTarget(
            cli="qwen",
            adapter_type="qwen",
            model="fake-model",
            options=lambda model: {"base_url": model.openai_base_url},
            env={"OPENAI_API_KEY": FAKE_KEY},
        ),
        LiveTarget(
            cli="opencode",
            adapter_type="opencode",
            model="fake-model",
            options=lambda model: {"provider": "fake", "base_url": model.openai_base_url},
            env={"OPENAI_API_KEY": FAKE_KEY},
        ),
        LiveTarget(
            cli="aider",
            adapter_type="aider",
            model="openai/fake-model",
            options=lambda model: {"base_url": model.openai_base_url, "map_tokens": 0},
            env={"OPENAI_API_KEY": FAKE_KEY},
        ),
    )
}


def cli_dirs() -> list[Path]:
    """Where installed CLIs are looked for before ``PATH``, in order."""
    dirs = []
    chosen = os.environ.get(CLIS_DIR_ENV)
    if chosen:
        dirs.append(Path(chosen) / "bin")
    dirs.append(Path.cwd() / ".clis" / "bin")
    return dirs


def find_cli(name: str) -> Path | None:
    """The CLI's executable: ``$COUNCIL_CLIS_DIR/bin``, ``./.clis/bin``, then ``PATH``."""
    for directory in cli_dirs():
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.absolute()
    found = shutil.which(name)
    return Path(found).absolute() if found else None
