"""Replaying recorded CLI output through an adapter, for the golden adapter tests.

``tests/transcripts/<cli>/`` holds real output of the real CLIs (copied from the shared
reference recordings; see its README.md): ``<case>.stdout.txt``, ``<case>.stderr.txt`` and
``<case>.meta.json`` with the exit code (``"timeout"`` when the recorder had to stop the CLI).
Each line goes through ``parse_line`` with its stream, then ``classify`` sees the whole run,
exactly as the runner would drive the adapter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from orchestrator.adapter import Adapter, AgentEvent, EventKind, Outcome, ProcessResult

TRANSCRIPTS = Path(__file__).parent / "transcripts"


@dataclass(frozen=True)
class Replay:
    events: list[AgentEvent]
    outcome: Outcome
    meta: dict[str, Any]
    result: ProcessResult

    def of(self, kind: EventKind) -> list[AgentEvent]:
        return [e for e in self.events if e.kind == kind]

    @property
    def session_ids(self) -> set[str]:
        return {e.native_session_id for e in self.events if e.native_session_id}


def cases(cli: str) -> list[str]:
    return sorted(
        p.name.removesuffix(".meta.json") for p in (TRANSCRIPTS / cli).glob("*.meta.json")
    )


def process_result(meta: dict[str, Any], stderr: str) -> ProcessResult:
    code = meta["rc"]
    if code == "timeout":
        return ProcessResult(
            exit_code=None, timed_out=True, seconds=float(meta["secs"]), stderr_tail=stderr[-2000:]
        )
    return ProcessResult(
        exit_code=int(code), seconds=float(meta["secs"]), stderr_tail=stderr[-2000:]
    )


def replay(adapter: Adapter, cli: str, case: str) -> Replay:
    base = TRANSCRIPTS / cli / case
    meta = json.loads(base.with_name(f"{case}.meta.json").read_text(encoding="utf-8"))
    events: list[AgentEvent] = []
    stderr = base.with_name(f"{case}.stderr.txt").read_text(encoding="utf-8")
    for stream, body in (
        ("stdout", base.with_name(f"{case}.stdout.txt").read_text(encoding="utf-8")),
        ("stderr", stderr),
    ):
        for line in body.splitlines():
            produced = adapter.parse_line(line, stream)  # type: ignore[arg-type]
            assert isinstance(produced, list)
            events.extend(produced)
    result = process_result(meta, stderr)
    return Replay(events, adapter.classify(result, events), meta, result)


# Lines no CLI should print, but a parser must survive: cut JSON, wrong types, deep nesting.
GARBAGE = [
    "",
    " ",
    "\x00\x1b[31mred\x1b[0m",
    "{",
    "[",
    "{}",
    "[]",
    "null",
    "42",
    '"text"',
    '{"type": "result"',
    '{"type": null}',
    '{"type": 7, "message": []}',
    '{"type": "assistant", "message": {"content": "not a list"}}',
    '{"type": "assistant", "message": {"content": [null, 1, "x", {"type": "tool_use"}]}}',
    '{"type": "result", "usage": "lots", "total_cost_usd": "free", "is_error": "yes"}',
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


def mutated_lines(cli: str) -> list[str]:
    """Every recorded JSON line of ``cli`` with each field in turn set to a wrong-typed value."""
    lines: list[str] = []
    shapes: set[str] = set()
    for path in sorted((TRANSCRIPTS / cli).glob("*.stdout.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            shape = json.dumps(_shape(value), sort_keys=True)
            if shape in shapes:
                continue  # the same structure again (another case, another session id)
            shapes.add(shape)
            for field in _paths(value):
                lines += [json.dumps(_replaced(value, field, new)) for new in _WRONG_VALUES]
    return lines


def assert_mutated_recordings_never_raise(adapter: Adapter, cli: str) -> None:
    """Every recorded JSON line of ``cli``, with each field swapped for a wrong-typed value,
    goes through ``parse_line`` and ``classify`` without raising."""
    lines = mutated_lines(cli)
    assert len(lines) > 100
    for line in lines:
        adapter.classify(ProcessResult(exit_code=0), adapter.parse_line(line, "stdout"))


def json_lines(types: list[str], keys: list[str]) -> st.SearchStrategy[str]:
    """Random JSON objects with a known ``type`` and known keys holding random values."""
    return st.builds(
        lambda kind, fields, extra: json.dumps({"type": kind, **fields, **extra}),
        st.sampled_from(types),
        st.dictionaries(st.sampled_from(keys), _JSON_VALUES, max_size=6),
        st.dictionaries(st.text(max_size=8), _JSON_VALUES, max_size=2),
    )
