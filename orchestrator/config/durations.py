"""Durations as people write them in a config: ``90s``, ``15m``, ``1h30m``, ``500ms``, ``2.5``.

A plain number (or a string holding one) is seconds. A string is one or more ``<number><unit>``
parts with units ``d``, ``h``, ``m``, ``s`` and ``ms``; the parts add up (``1h30m`` is 5400
seconds). Everything is stored as a ``float`` of seconds, so code never deals with units.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

__all__ = [
    "DURATION_PATTERN",
    "Duration",
    "PositiveDuration",
    "format_duration",
    "parse_duration",
]

_UNIT_SECONDS: dict[str, float] = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_NUMBER = r"\d+(?:\.\d+)?|\.\d+"
# "ms" comes before "m" and "s" so that "500ms" is not read as 500 minutes and a stray "s".
_PART = rf"(?:{_NUMBER})(?:ms|d|h|m|s)"
DURATION_PATTERN = rf"^\s*(?:(?:{_NUMBER})|(?:{_PART})+)\s*$"
"""What a duration string looks like (also used as the JSON-schema pattern)."""

_PART_RE = re.compile(rf"({_NUMBER})(ms|d|h|m|s)")
_FULL_RE = re.compile(DURATION_PATTERN)
_HINT = "use seconds (90, 1.5) or units d/h/m/s/ms such as '90s', '15m', '1h30m', '500ms'"


def parse_duration(value: object) -> float:
    """Seconds in ``value`` (a number, or a string like ``1h30m``); ``ValueError`` if not one."""
    if isinstance(value, bool):
        # bool is an int subclass; `timeout: yes` is a mistake, not one second.
        raise ValueError(f"expected a duration, got {str(value).lower()}; {_HINT}")
    if isinstance(value, int | float):
        return _checked(float(value), repr(value))
    if not isinstance(value, str):
        shown = "null" if value is None else f"a {type(value).__name__}"
        raise ValueError(f"expected a duration, got {shown}; {_HINT}")
    text = value.strip()
    if text.startswith("-"):
        raise ValueError(f"duration {value!r} is negative; durations must be zero or more")
    if not text or not _FULL_RE.fullmatch(text):
        raise ValueError(f"{value!r} is not a duration; {_HINT}")
    if _PART_RE.match(text) is None:
        return _checked(float(text), repr(value))
    total = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART_RE.findall(text))
    return _checked(total, repr(value))


def _checked(seconds: float, shown: str) -> float:
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"duration {shown} is not a finite number of seconds")
    if seconds < 0:
        raise ValueError(f"duration {shown} is negative; durations must be zero or more")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human form of ``seconds`` that ``parse_duration`` reads back to the same value."""
    seconds = _checked(float(seconds), repr(seconds))
    if seconds == 0:
        return "0s"
    if seconds < 1:
        pretty = f"{_plain(round(seconds * 1000, 9))}ms"
    else:
        whole = int(seconds)
        hours, remainder = divmod(whole, 3600)
        minutes, secs = divmod(remainder, 60)
        fraction = seconds - whole
        parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
        if fraction:
            parts.append(f"{_plain(round(secs + fraction, 9))}s")
        elif secs:
            parts.append(f"{secs}s")
        pretty = "".join(parts)
    # Splitting off units is float arithmetic and can drift in the last bit; plain seconds
    # always read back exactly.
    return pretty if parse_duration(pretty) == seconds else f"{_plain(seconds)}s"


def _plain(value: float) -> str:
    # repr is the shortest exact form but may use an exponent, which durations do not accept.
    text = format(Decimal(repr(value)), "f")
    return text.removesuffix(".0") if "." in text else text


_DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": DURATION_PATTERN},
    ],
    "description": "seconds, or a string such as '90s', '15m', '1h30m', '500ms'",
}

Duration = Annotated[
    float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA, mode="validation")
]
"""A duration field: accepts a number of seconds or a string such as ``1h30m``; holds seconds."""

PositiveDuration = Annotated[Duration, Field(gt=0)]
"""A duration that must be more than zero (timeouts, intervals)."""
