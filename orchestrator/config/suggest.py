""" "Did you mean" hints: the one rule for suggesting a known name for a misspelt one.

``did_you_mean(word, choices)`` is `` (did you mean 'x'?)`` for the closest of ``choices`` when
one is close enough (difflib's ratio of at least 0.6, the cutoff the config loader's unknown-key
hint uses too), else ``""``, so callers append it to a message unconditionally.
``literal_choices(annotation)`` are the choices of a field that takes one of a closed set of
strings (a ``Literal``, also under ``| None`` or ``Annotated``).
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable

__all__ = ["did_you_mean", "literal_choices"]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def literal_choices(annotation: object) -> list[str]:
    found: list[str] = []
    pending: list[object] = [annotation]
    while pending:  # through ``X | None`` and ``Annotated[X, ...]`` to the literals
        here = pending.pop()
        if typing.get_origin(here) is typing.Literal:
            found += [value for value in typing.get_args(here) if isinstance(value, str)]
        else:
            pending += typing.get_args(here)
    return found
