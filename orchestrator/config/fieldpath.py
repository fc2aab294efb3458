"""Field paths: where in a config a value sits, as pydantic reports it and as users read it.

A path is a tuple of mapping keys and sequence indexes, ``("tasks", 2, "id")``, shown as
``tasks[2].id``. The YAML reader turns a path back into a line; messages show its text form.
"""

from __future__ import annotations

import json
import re

__all__ = ["Loc", "format_loc"]

Loc = tuple[str | int, ...]
"""A field path: mapping keys (``str``) and sequence indexes (``int``)."""

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def format_loc(loc: Loc) -> str:
    """``("tasks", 2, "id")`` as ``tasks[2].id``; other keys are quoted: ``env["A B"]``."""
    text = ""
    for step in loc:
        if isinstance(step, int):
            text += f"[{step}]"
        elif _PLAIN_KEY.fullmatch(step):
            text += f".{step}" if text else step
        else:
            text += f"[{json.dumps(step, ensure_ascii=False)}]"
    return text
