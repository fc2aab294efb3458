"""What an adapter is fed to prove it never breaks: prompts full of shell syntax, lines no CLI
should print (cut JSON, wrong types, deep nesting, huge lines), random lines shaped like its
CLI's (``LineHints``), and its CLI's own recorded lines with each field given a wrong type.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "GARBAGE_LINES",
    "HOSTILE_PROMPTS",
    "LineHints",
    "json_lines",
    "mutated_lines",
    "recorded_lines",
]

HOSTILE_PROMPTS = (
    "Add a README",
    "fix it $(rm -rf /) and `reboot` now",
    'it\'s "quoted" ; echo pwned | sh && exit 1',
    "-rf --dangerous-flag",
    "two\nlines with $HOME and * and ~ and > /etc/passwd",
    "unicode: Grüße, 日本語, emoji 🚀",
)

GARBAGE_LINES = (
    "",
    " ",
    "\t",
    "\r",
    "{",
    "}",
    "[]",
    "[",
    "null",
    "true",
    "123",
    '"a string"',
    "{}",
    "not json at all",
    "\x00\x01\x02\x1b[31m",
    "\ufffd\ufffd invalid bytes became this",
    "[" * 100_000,
    '{"a": ' * 20_000,
    "x" * (1024 * 1024),
    '{"type": "result", "result": "' + "x" * (1024 * 1024) + '"}',
    '{"type": null}',
    '{"type": ["not", "a", "string"], "session_id": 5}',
    '{"type": "result"}',
    '{"type": "result", "usage": "lots", "total_cost_usd": "free", "is_error": "yes"}',
    '{"type": "result", "usage": {"input_tokens": "many", "output_tokens": -1e400}}',
    '{"type": "assistant", "message": "text instead of an object"}',
    '{"type": "assistant", "message": {"content": [null, 5, {"type": "tool_use"}]}}',
    '{"type": "system", "subtype": "init", "session_id": {"nested": true}}',
    '{"type": "thread.started", "thread_id": 5}',
    '{"type": "item.completed", "item": null}',
    '{"type": "turn.failed", "error": "a string"}',
    '{"type": "init", "session_id": []}',
    '{"type": "message", "role": 7, "content": {"x": 1}, "delta": "yes"}',
    '{"type": "step_finish", "part": {"tokens": "many", "cost": "free"}}',
    '{"type": "error", "error": {"data": {"statusCode": "429"}}}',
    '{"type": "result", "status": "error", "error": {"message": null}}',
    '{"type": "rate_limit_event", "rate_limit_info": {"resetsAt": 1e300}}',
    "Error: 429 Too Many Requests; 401 Unauthorized; rate limit",
    "\x00\x1b[31mred\x1b[0m",
    "42",
    '"text"',
    '{"type": "result"',
    '{"type": 7, "message": []}',
    '{"type": "assistant", "message": {"content": "not a list"}}',
    '{"type": "assistant", "message": {"content": [null, 1, "x", {"type": "tool_use"}]}}',
    '{"type": "result", "usage": {"input_tokens": -5, "output_tokens": 1e400}}',
    '{"type": "system", "subtype": "api_retry", "retry_delay_ms": "soon", "error_status": "429"}',
    '{"type": "rate_limit_event", "rate_limit_info": {"status": "rejected", "resetsAt": 1e300}}',
    '{"type": "item.completed", "item": {"type": "command_execution", "exit_code": "x"}}',
    '{"type": "turn.completed", "usage": [1, 2]}',
    '{"type": "turn.failed", "error": "boom"}',
    '{"type": "step_finish", "part": {"tokens": {"cache": 3}, "cost": true}}',
    '{"type": "error", "error": {"data": {"statusCode": "429", "responseHeaders": []}}}',
    '{"type": "tool_use", "part": {"state": {"status": "error", "error": 5}}}',
    '{"type": "init", "session_id": 12}',
    '{"type": "message", "role": "assistant", "content": {"a": 1}}',
    '{"type": "result", "status": "error", "error": {"message": null}, "stats": null}',
    "[" * 5000 + "]" * 5000,
    '  "session_id": 5,',
    '  "response": "unterminated,',
    "Tokens: 1.2k sent, x received. Cost: $abc message, $ session.",
    "Tokens: 99999999999999999999999k sent, 1e9999 received.",
    "litellm.RateLimitError:",
    "Attempt x failed with status 429",
    "Error: ",
    "prompt eval count: many token(s)",
)


@dataclass(frozen=True)
class LineHints:
    """What lines of a CLI look like, so random ones come near its parser's branches: text
    prefixes it reacts to, and for JSON lines the ``type`` values and keys it reads."""

    prefixes: Sequence[str] = ()
    json_types: Sequence[str] = ()
    json_keys: Sequence[str] = ()

    def strategy(self) -> st.SearchStrategy[str]:
        text = st.text(max_size=200)
        if self.prefixes:
            prefixed = st.sampled_from([*self.prefixes, ""]).flatmap(
                lambda prefix: st.text(max_size=80).map(lambda rest: prefix + rest)
            )
            text = text | prefixed
        if self.json_types:
            return json_lines(list(self.json_types), list(self.json_keys) or ["type"]) | text
        return text


def recorded_lines(directory: Path | None) -> list[str]:
    """Every stdout line recorded under ``directory`` (``*.stdout.txt``)."""
    if directory is None:
        return []
    return [
        line
        for path in sorted(directory.glob("*.stdout.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
_JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=10,
)


_WRONG_VALUES: list[object] = [None, True, -1, 10**30, 1e308, "", "x", [], {}, [None], {"": 0}]


def _paths(value: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    children: list[tuple[str | int, object]] = []
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    found = [prefix] if prefix else []
    for key, child in children:
        found += _paths(child, (*prefix, key))
    return found


def _shape(value: object) -> object:
    if isinstance(value, dict):
        return {key: _shape(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_shape(child) for child in value[:1]]
    return type(value).__name__


def _replaced(value: Any, path: tuple[str | int, ...], new: object) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)  # type: ignore[index]
    return copy


def mutated_lines(lines: Iterable[str]) -> list[str]:
    """Every JSON object among ``lines`` (one of each structure) with each of its fields in turn
    set to a wrong-typed value."""
    mutated: list[str] = []
    shapes: set[str] = set()
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        shape = json.dumps(_shape(value), sort_keys=True)
        if shape in shapes:
            continue  # the same structure again (another case, another session id)
        shapes.add(shape)
        for field in _paths(value):
            mutated += [json.dumps(_replaced(value, field, new)) for new in _WRONG_VALUES]
    return mutated


def json_lines(types: list[str], keys: list[str]) -> st.SearchStrategy[str]:
    """Random JSON objects with a known ``type`` and known keys holding random values."""
    return st.builds(
        lambda kind, fields, extra: json.dumps({"type": kind, **fields, **extra}),
        st.sampled_from(types),
        st.dictionaries(st.sampled_from(keys), _JSON_VALUES, max_size=6),
        st.dictionaries(st.text(max_size=8), _JSON_VALUES, max_size=2),
    )
