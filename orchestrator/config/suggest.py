""" "Did you mean" hints: the one rule for suggesting a known name for a misspelt one.

``did_you_mean(word, choices)`` is `` (did you mean 'x'?)`` for the closest of ``choices`` when
one is close enough (difflib's ratio of at least 0.6, the cutoff the config loader's unknown-key
hint uses too), else ``""``, so callers append it to a message unconditionally.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
