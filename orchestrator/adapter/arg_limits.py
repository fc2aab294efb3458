"""How much a command line may carry, so a long prompt takes another way in.

``exec`` refuses a command whose arguments are too big with ``E2BIG`` ("Argument list too
long"): on Linux one argument may hold at most ``MAX_ARG_STRLEN`` (32 pages, 128 KiB, its
terminating NUL included), and the arguments and the environment together at most
``sysconf(SC_ARG_MAX)`` (a quarter of the stack limit, 2 MiB by default); macOS has no limit
per argument but 1 MiB in all. A task's prompt plus the handoff the workflow adds to it (a
plan, a review, a diff) can pass 128 KiB, so an adapter checks ``too_long_for_argument`` and
passes such a prompt through stdin or a file; ``command_too_long`` is the check the core makes
on every command before it starts one, so no CLI start fails with ``E2BIG``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

__all__ = [
    "ARGUMENT_LIMIT",
    "PROMPT_ARGUMENT_LIMIT",
    "command_too_long",
    "too_long_for_argument",
    "utf8_size",
]

ARGUMENT_LIMIT = 32 * 4096
"""Linux's ``MAX_ARG_STRLEN``: the bytes of one argument or ``NAME=value``, its NUL included."""

PROMPT_ARGUMENT_LIMIT = 100 * 1024
"""The longest prompt (UTF-8 bytes) a built-in adapter passes as an argument. Below
``ARGUMENT_LIMIT`` with room for a flag around it (``--prompt=...``), and small enough that
the whole command stays under macOS's 1 MiB."""

_FALLBACK_ARG_MAX = 256 * 1024  # when the system will not say: the smallest any current one has
_POINTER = 8  # each string also costs its pointer in the new process's argv or envp array


def utf8_size(text: str) -> int:
    """The bytes ``text`` takes on a command line (lone surrogates as ``os.fsencode`` writes
    them)."""
    return len(text.encode("utf-8", "surrogateescape"))


def too_long_for_argument(prompt: str) -> bool:
    """Should this prompt go through stdin or a file instead of the command line?"""
    return utf8_size(prompt) > PROMPT_ARGUMENT_LIMIT


def command_too_long(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """Why ``exec`` would refuse ``argv`` with ``env`` (``E2BIG``), in words; None if it fits."""
    strings = [*argv, *(f"{name}={value}" for name, value in env.items())]
    # A character is at most 4 bytes of UTF-8: a command that fits so counted fits (every CLI
    # start asks, and its environment is a hundred strings or more).
    longest = max((len(text) for text in strings), default=0)
    bound = sum(len(text) for text in strings) * 4 + len(strings) * (1 + _POINTER)
    linux = sys.platform.startswith("linux")
    if (not linux or longest * 4 + 1 <= ARGUMENT_LIMIT) and bound <= _arg_max():
        return None
    if linux:
        for index, text in enumerate(strings):
            size = utf8_size(text) + 1
            if size > ARGUMENT_LIMIT:
                what = (
                    f"argument {index} of the command"
                    if index < len(argv)
                    else f"variable {text.partition('=')[0]}"
                )
                return (
                    f"{what} is {_kib(size)}, more than the {_kib(ARGUMENT_LIMIT)} one "
                    "argument may hold"
                )
    total = sum(utf8_size(text) + 1 + _POINTER for text in strings)
    limit = _arg_max()
    if total > limit:
        return (
            f"the command and its environment take {_kib(total)}, more than the system's "
            f"{_kib(limit)} (ARG_MAX)"
        )
    return None


def _arg_max() -> int:
    try:
        value = os.sysconf("SC_ARG_MAX")
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_ARG_MAX
    return value if value > 0 else _FALLBACK_ARG_MAX


def _kib(size: int) -> str:
    return f"{size / 1024:.0f} KiB" if size >= 10 * 1024 else f"{size} bytes"
