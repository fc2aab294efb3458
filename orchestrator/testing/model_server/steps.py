"""The script a fake model answers from: what the "model" does, step by step.

File steps (``WriteFile``, ``EditFile``) become tool calls in the CLI's own tool names (or edit
blocks in the reply text for CLIs without tools, like aider); ``FinalText`` is the closing
answer. ``RateLimited`` and ``Unauthorized`` are gates: placed before a step, they answer the
requests that would carry that step with an HTTP error instead (429 or 401).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Action",
    "CallTool",
    "EditFile",
    "FinalText",
    "Gate",
    "RateLimited",
    "Step",
    "Unauthorized",
    "split_script",
]


@dataclass(frozen=True)
class WriteFile:
    """Create (or overwrite) ``path``, relative to the CLI's working directory."""

    path: str
    content: str


@dataclass(frozen=True)
class EditFile:
    """Replace ``old`` by ``new`` in the existing file ``path`` (read first where a CLI insists)."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class CallTool:
    """Call the offered tool ``name`` with ``arguments``: by its exact name, or by the end of
    it, as CLIs prefix an MCP server's tools (``mcp__council__name``, ``council_name``). Its
    result comes back to the model in the next request, where a test reads it."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FinalText:
    """The model's closing answer: no tool call, the turn ends."""

    text: str


@dataclass(frozen=True)
class RateLimited:
    """Answer 429 to the next ``count`` requests for the following step (``None``: every one).

    ``reset_after`` is how many seconds until the limit lifts; it is announced only when
    ``reset_headers`` is true: ``retry-after`` plus each protocol's own reset headers
    (``anthropic-ratelimit-*-reset``, ``x-ratelimit-reset-*``, Gemini's ``RetryInfo``). Without
    them the 429 says nothing about when to come back, as API-key 429s usually do.
    """

    count: int | None = 1
    reset_after: float | None = None
    reset_headers: bool = False

    @property
    def announced_seconds(self) -> float:
        return 1.0 if self.reset_after is None else self.reset_after


@dataclass(frozen=True)
class Unauthorized:
    """Answer 401 (a rejected key) to every request from here on."""


Action = WriteFile | EditFile | CallTool | FinalText
Gate = RateLimited | Unauthorized
Step = Action | Gate


def split_script(script: Sequence[Step]) -> tuple[list[Action], dict[int, list[tuple[int, Gate]]]]:
    """The actions in order, and the gates in front of each action (by action index), each
    gate with its position in the script (its identity for counting the 429s it served).

    A script always ends with a ``FinalText``: one is added when it does not.
    """
    actions: list[Action] = []
    gates: dict[int, list[tuple[int, Gate]]] = {}
    for position, step in enumerate(script):
        if isinstance(step, RateLimited | Unauthorized):
            gates.setdefault(len(actions), []).append((position, step))
        else:
            actions.append(step)
    if not actions or not isinstance(actions[-1], FinalText):
        actions.append(FinalText("done"))
    return actions, gates
