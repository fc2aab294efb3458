"""``${NAME}`` in a run config's ``env:`` values: secrets stay in the environment, not in YAML.

``OPENAI_API_KEY: ${TEAM_GATEWAY_KEY}`` gives the CLI the value of ``TEAM_GATEWAY_KEY`` from the
environment ``council`` runs in; ``$${`` stands for a literal ``${``. The run config keeps the
reference, never the value: a reference is expanded only when a CLI starts, and every value it
brings in is masked in everything stored under ``.council/`` (it came from the environment for a
reason). A reference to an unset variable is an error before the run starts, naming the file,
the line and the variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["UnsetVariable", "expand", "references"]

_REFERENCE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


class UnsetVariable(KeyError):
    """A ``${NAME}`` whose variable is not set."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def references(value: str) -> list[str]:
    """The variable names ``value`` refers to, in order (escaped ``$${`` ones excluded)."""
    return [match[2] for match in _REFERENCE.finditer(value) if not match[1]]


def expand(value: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """``value`` with each ``${NAME}`` replaced, and the values brought in (to mask).

    Raises ``UnsetVariable`` for the first reference to a variable ``environ`` lacks.
    """
    brought: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match[1]:
            return "${" + match[2] + "}"
        name = match[2]
        if name not in environ:
            raise UnsetVariable(name)
        brought.append(environ[name])
        return environ[name]

    return _REFERENCE.sub(replace, value), brought
