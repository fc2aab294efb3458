"""One request or answer on a session's socket: a line of JSON, bounded.

A request names the session the relay was started for, the tool and its arguments; the
answer its outcome and text. The session a request names is only checked against the
socket's own (a relay started for another session is refused): the socket is what decides
who is asking.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["LINE_LIMIT", "Request", "decode_answer", "decode_request", "encode"]

LINE_LIMIT = 256 * 1024  # bytes of one line, either way


class WireError(ValueError):
    """A line that is not a request or an answer."""


@dataclass(frozen=True)
class Request:
    session: str | None
    tool: str
    args: dict[str, Any]


def encode(value: dict[str, Any]) -> bytes:
    line = json.dumps(value, ensure_ascii=False).encode() + b"\n"
    if len(line) > LINE_LIMIT:
        raise WireError(f"a message of {len(line)} bytes is over the {LINE_LIMIT}-byte limit")
    return line


def decode_request(line: bytes) -> Request:
    data = _object(line)
    session, tool, args = data.get("session"), data.get("tool"), data.get("args", {})
    if not isinstance(tool, str) or not isinstance(args, dict):
        raise WireError("a request is {session, tool, args}")
    return Request(session if isinstance(session, str) else None, tool, args)


def decode_answer(line: bytes) -> tuple[str, str]:
    data = _object(line)
    outcome, text = data.get("outcome"), data.get("text")
    if not isinstance(outcome, str) or not isinstance(text, str):
        raise WireError("an answer is {outcome, text}")
    return outcome, text


def _object(line: bytes) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise WireError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WireError("not a JSON object")
    return data
