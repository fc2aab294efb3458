"""``extra_args``: the escape hatch of a built-in adapter, flags of the CLI's own that no
option of the adapter spells, appended to its command line as they are.

Checked when the options are validated (``council config validate``, preflight, creating the
adapter), one line per problem:

- a flag the adapter sets itself (``owned_flags`` of its options model, which maps each flag,
  aliases included, to what to use instead) is refused: two ``--output-format`` would either
  fail or quietly break the parser; ``tests/adapters/test_adapter_extra_args.py`` keeps each
  adapter's map in step with the flags its commands really emit;
- a flag named like a credential (``--api-key``, ``--openai-api-key``) is refused: a value in
  the run config would be stored in every log that shows the command line; a key goes in the
  adapter's ``env`` as ``${NAME}`` or in ``pass_env``, whose values are masked;
- ``--`` is refused: every argument the adapter puts after it would stop being an option.

A flag's value that starts with ``-`` would be read as a flag: write it ``--flag=-value``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar, Self

from pydantic import Field, field_validator, model_validator

from orchestrator.adapter.values import AdapterConfig

__all__ = ["ExtraArgsConfig", "extra_args_problem"]

_SECRET_FLAG = re.compile(r"key|token|secret|password|credential", re.IGNORECASE)


def extra_args_problem(args: list[str], owned: Mapping[str, str]) -> str | None:
    """Why ``args`` cannot be appended to a command whose adapter sets ``owned``; None if
    they can."""
    for arg in args:
        if "\0" in arg:
            return f"extra_args: {arg!r} contains a NUL character"
        if arg == "--":
            return "extra_args: '--' would turn the adapter's own flags after it into arguments"
        if not arg.startswith("-") or arg == "-":
            continue
        flag = arg.split("=", 1)[0]
        if flag in owned:
            return f"extra_args: {flag} is set by the adapter itself; {owned[flag]}"
        if _SECRET_FLAG.search(flag):
            return (
                f"extra_args: {flag} would put a secret in every log of the command line; "
                "give the CLI its key through the adapter's env (`${NAME}`) or pass_env"
            )
    return None


class ExtraArgsConfig(AdapterConfig):
    """Options of an adapter that takes ``extra_args`` (every built-in CLI adapter)."""

    extra_args: list[str] = Field(
        default_factory=list,
        description="more flags of the CLI's own, appended to its command line as they are "
        "(before the prompt, and on a resumed session too); a flag the adapter sets itself is "
        "refused with what to use instead, and so is one named like a key (use env)",
    )
    # The flags the adapter's commands set, each with what to use instead of repeating it.
    owned_flags: ClassVar[Mapping[str, str]] = {}
    # Flags the adapter sets only when one of its options is set: flag -> that option's name.
    # Either is fine alone; both are refused (two --append-system-prompt: one is lost).
    option_flags: ClassVar[Mapping[str, str]] = {}

    @field_validator("extra_args")
    @classmethod
    def _no_clash(cls, args: list[str]) -> list[str]:
        problem = extra_args_problem(args, cls.owned_flags)
        if problem is not None:
            raise ValueError(problem)
        return args

    @model_validator(mode="after")
    def _no_clash_with_options(self) -> Self:
        given = {arg.split("=", 1)[0] for arg in self.extra_args if arg.startswith("-")}
        for flag, name in self.option_flags.items():
            if flag in given and getattr(self, name, None):
                raise ValueError(
                    f"extra_args: {flag} is set by the adapter from its option `{name}`; "
                    f"give it once, in `{name}`"
                )
        return self
