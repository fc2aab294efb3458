"""The checks between fields on a config pydantic refused: one pass finds every problem.

When some values of a run config are refused (a wrong type, an unknown key), the config cannot
be built, yet a user fixing the file wants every other problem now too: a dependency on a task
that does not exist, a phase naming no adapter, an option the adapter refuses. ``beyond_refused``
sets each refused value aside (a mapping's key removed, a list's item taken out, a required key
that then goes missing given a stand-in) until the rest builds, then runs the later checks on
it and keeps the problems that are not about what was set aside, at their places in the file
as written: an item taken out of a list does not move the items after it.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from orchestrator.config.checks.problems import Problem
from orchestrator.config.fieldpath import Loc
from orchestrator.config.run import RunConfig

__all__ = ["LaterChecks", "beyond_refused"]

LaterChecks = Callable[[RunConfig], list[Problem]]
"""The checks to run on the config once it builds (the loader's: between fields, options,
references)."""

_ROUNDS = 4  # rounds of setting refused values aside before giving the later checks up

# A required key set aside is given a stand-in the later checks accept: its name, numbered.
_STAND_INS = {"id": "set-aside", "name": "set-aside", "prompt": "set aside"}


def beyond_refused(
    data: Any,
    context: dict[str, Any],
    errors: list[ErrorDetails],
    checks: LaterChecks,
    advice: LaterChecks,
) -> tuple[list[Problem], list[Problem]]:
    """The problems ``checks`` find on ``data`` (a config's parsed YAML) once every refused
    value is set aside, and what ``advice`` finds (warnings), at their paths in ``data``,
    except those about what was set aside. None when the config cannot be made whole that
    way."""
    data = copy.deepcopy(data)
    aside: list[Loc] = []  # paths in ``data`` as written
    taken: list[tuple[Loc, int]] = []  # list items taken out, in order: (list's path, index)
    stand_ins = itertools.count(1)
    for _ in range(_ROUNDS):
        # Deepest first, and a list's later items before its earlier ones: taking an item out
        # then never moves a path still to be set aside this round.
        for loc in sorted({tuple(error["loc"]) for error in errors}, key=_deepest_last_first):
            written = _as_written(loc, taken)
            if written in aside and written and written[-1] in _STAND_INS:
                _put(data, loc, f"{_STAND_INS[str(written[-1])]}-{next(stand_ins)}")
            elif not _set_aside(data, loc, taken):
                return [], []  # the whole document, or a shape this cannot set aside
            aside.append(written)
        try:
            config = RunConfig.model_validate(data, context=context)
        except ValidationError as exc:
            errors = [*exc.errors()]
            continue
        return _kept(checks(config), taken, aside), _kept(advice(config), taken, aside)
    return [], []


def _kept(problems: list[Problem], taken: list[tuple[Loc, int]], aside: list[Loc]) -> list[Problem]:
    """``problems`` at their paths as written, but those about a value set aside."""
    written = [(_as_written(loc, taken), message) for loc, message in problems]
    return [
        (loc, message)
        for loc, message in written
        if not any(loc[: len(gone)] == gone for gone in aside)
    ]


def _deepest_last_first(loc: Loc) -> tuple[int, int]:
    last = loc[-1] if loc else 0
    return (-len(loc), -last if isinstance(last, int) else 0)


def _as_written(loc: Loc, taken: list[tuple[Loc, int]]) -> Loc:
    """``loc`` in the data with the ``taken`` items out, as a path in the data as written."""
    path = list(loc)
    for where, index in reversed(taken):
        depth = len(where)
        if tuple(path[:depth]) == where and len(path) > depth:
            step = path[depth]
            if isinstance(step, int) and step >= index:
                path[depth] = step + 1
    return tuple(path)


def _set_aside(data: Any, loc: Loc, taken: list[tuple[Loc, int]]) -> bool:
    """Remove the value at ``loc``: a mapping's key, or a list's item (recorded in ``taken``);
    False where there is nothing to remove (the whole document, a path no longer there)."""
    loc = loc[:-1] if loc and loc[-1] == "[key]" else loc
    if not loc:
        return False
    *path, last = loc
    here = data
    for part in path:
        try:
            here = here[part]
        except (KeyError, IndexError, TypeError):
            return False
    if isinstance(here, dict) and last in here:
        del here[last]
        return True
    if isinstance(here, list) and isinstance(last, int) and 0 <= last < len(here):
        del here[last]
        taken.append((tuple(path), last))
        return True
    return False


def _put(data: Any, loc: Loc, value: str) -> None:
    *path, last = loc
    here = data
    for part in path:
        here = here[part]
    here[last] = value
