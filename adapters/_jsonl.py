"""Tolerant reading of CLI output lines, shared by the built-in adapters.

A CLI's output is data from outside: a line may be cut short, be a plain-text warning, or hold a
field of an unexpected type. Nothing here raises: a missing or mistyped field reads as empty, so
a parser is written for the shape it expects and still survives every other shape.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["count", "dig", "items", "loads", "money", "obj", "strip_ansi", "text"]

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*(?:\x07|\x1b\\)")


def loads(line: str) -> object | None:
    """The JSON value of ``line``, or None when it is not a JSON object or array."""
    stripped = line.strip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        value: object = json.loads(stripped)
    except (ValueError, RecursionError):  # deep nesting overflows the decoder's stack
        return None
    return value


def obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def text(value: object) -> str:
    return value if isinstance(value, str) else ""


def dig(value: object, *keys: str) -> object:
    """``value[k1][k2]...`` through dicts only; None where the path breaks."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def count(value: object) -> int:
    """A token count: a non-negative whole number, 0 for anything else."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and math.isfinite(value):
        return max(int(value), 0)
    return 0


def money(value: object) -> float | None:
    """A cost in USD when the CLI reported a number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def strip_ansi(line: str) -> str:
    return _ANSI.sub("", line)
