"""Command-building helpers shared by the built-in adapters."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from orchestrator.adapter import AdapterConfig, AdapterRequest, too_long_for_argument

__all__ = [
    "MODEL",
    "OUTPUT",
    "PROMPT",
    "SESSION",
    "command_env",
    "flag_like",
    "json_file",
    "option",
    "owns",
    "stdin_prompt",
    "toml_string",
]

C = TypeVar("C", bound=AdapterConfig)

_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)


def command_env(
    request: AdapterRequest, knobs: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The env overlay (the adapter's knobs, then the run config's ``env``, which wins) and
    the values in it to redact: those of variables named like credentials."""
    env = {**knobs, **request.env}
    secrets = sorted(
        {value for name, value in request.env.items() if value and _SECRET_NAME.search(name)}
    )
    return env, secrets


# What to use instead of a flag the adapter sets itself (``owned_flags`` of its options).
MODEL = "set `model:` (the adapter's or the phase's) instead"
OUTPUT = "the adapter reads the output format it asks for"
PROMPT = "the prompt is the task's, given by the adapter"
SESSION = "the orchestrator continues sessions itself"


def owns(instead: str, *flags: str) -> dict[str, str]:
    """``owned_flags`` entries: each of ``flags`` (aliases included) -> ``instead``."""
    return dict.fromkeys(flags, instead)


def option(name: str) -> str:
    return f"set the adapter's option `{name}` instead"


def flag_like(prompt: str) -> bool:
    """Would an option parser read this prompt as a flag? Then it needs another way in."""
    return prompt.startswith("-")


def stdin_prompt(prompt: str) -> str | None:
    """The prompt to feed on stdin, for a CLI that reads it there when none is on its command
    line: one an option parser would take for a flag, or one too long for an argument."""
    return prompt if flag_like(prompt) or too_long_for_argument(prompt) else None


def json_file(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def toml_string(value: str) -> str:
    """A TOML basic string: JSON's escapes (ASCII-only) are a subset TOML accepts."""
    return json.dumps(value, ensure_ascii=True)
