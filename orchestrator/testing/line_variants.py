"""Variants of a CLI's own lines: random ones shaped like them (``LineHints``, Hypothesis
strategies), and recorded ones with each field in turn given a wrong type (``mutated_lines``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

__all__ = ["LineHints", "json_lines", "mutated_lines", "recorded_lines"]


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
