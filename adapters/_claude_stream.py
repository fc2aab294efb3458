"""The Claude-Code-shaped stream-json, spoken by Claude Code and by Qwen Code.

One JSON object per line: ``system`` (``init`` carries the session id), ``assistant`` and
``user`` (Anthropic message content blocks), ``system/permission_denied`` (Claude 2.1.330: a
tool call refused by the permission mode), ``result`` (the authoritative end: final text,
``is_error``, usage and cost for the whole run, ``permission_denials``), and from Claude alone
``system/api_retry`` and ``rate_limit_event``. ``-o json`` of Qwen prints the same objects as
one JSON array, which :func:`parse_value` also takes.

The call's usage is read from ``result`` only: ``assistant`` messages repeat per-request usage
that the result already sums, and counting both would double the run's tokens. That
per-request usage is said as it comes, as a ``running_usage`` event (``EventKind.RUNNING_USAGE``,
never counted into the outcome) whose ``data["step"]`` is the message id: claude prints one
``assistant`` line per content block of a message, each with the message's usage so far, so a
later line of the same message replaces the earlier one. Claude's messages carry no cost (the
price table's is taken); a call stopped before its ``result`` has only these.
"""

from __future__ import annotations

import re
from typing import Any

from adapters._jsonl import count, dig, items, money, obj, text
from adapters._outcomes import error_events, error_kind, from_epoch
from orchestrator.adapter import AgentEvent, EventKind, Usage

__all__ = ["parse_value"]

# Qwen reports API failures only as text ("[API Error: 429 ...]") in a "successful" result.
API_ERROR = re.compile(r"^\s*\[?API Error:")

# Claude's synthetic assistant message names its failure in a top-level "error" field.
_ERROR_FIELD_KINDS = {
    "rate_limit": "rate_limit",
    "authentication_failed": "auth",
    "billing_error": "auth",  # needs a person to fix the account, like a bad key
}
_TOOL_TARGETS = ("file_path", "filePath", "path", "command", "pattern", "url", "description")
_MAX_TOOL_TEXT = 4000


def parse_value(value: object) -> list[AgentEvent]:
    """Events in one decoded line: an object, or (qwen ``-o json``) an array of them."""
    if isinstance(value, list):
        return [event for element in value for event in _parse_object(obj(element))]
    return _parse_object(obj(value))


def _parse_object(line: dict[str, Any]) -> list[AgentEvent]:
    kind = text(line.get("type"))
    session = text(line.get("session_id")) or None
    if kind == "system":
        return _system(line, session)
    if kind == "assistant":
        return _assistant(line)
    if kind == "user":
        return _user(line)
    if kind == "result":
        return _result(line, session)
    if kind == "rate_limit_event":
        return _rate_limit_event(line)
    return [AgentEvent(kind=EventKind.RAW, text=kind or "unknown object", data={"type": kind})]


def _system(line: dict[str, Any], session: str | None) -> list[AgentEvent]:
    subtype = text(line.get("subtype"))
    if subtype == "init":
        model = text(line.get("model"))
        return [
            AgentEvent(
                kind=EventKind.STARTED,
                text=f"model {model}" if model else "started",
                native_session_id=session,
                data={
                    "model": model,
                    "permission_mode": text(line.get("permissionMode"))
                    or text(line.get("permission_mode")),
                    "tools": [t for t in items(line.get("tools")) if isinstance(t, str)],
                    "version": text(line.get("claude_code_version"))
                    or text(line.get("qwen_code_version")),
                },
            )
        ]
    if subtype == "permission_denied":
        # Claude 2.1.330 says each denial as it happens (the result lists them again).
        tool = text(line.get("tool_name")) or "a tool"
        why = text(line.get("message")) or f"{tool} was denied"
        return [
            AgentEvent(
                kind=EventKind.ERROR,
                text=f"permission denied: {why}",
                error_kind="permission",
                data={"tool": tool, "tool_use_id": text(line.get("tool_use_id"))},
            )
        ]
    if subtype == "api_retry":
        return _api_retry(line)
    return []


def _api_retry(line: dict[str, Any]) -> list[AgentEvent]:
    """One retry claude is about to make. A refused key (401, 403, ``authentication_failed``)
    is an auth error at once: claude retries it ten times (~3 minutes) before it gives up, and
    the core stops it at this event. A 429 is a rate-limit event; its ``retry_delay_ms`` is
    claude's own backoff, not when the limit lifts, so it is kept as data, not as a reset."""
    status = count(line.get("error_status"))
    error = text(line.get("error"))
    attempt = f"retry {count(line.get('attempt'))} of {count(line.get('max_retries'))}"
    if status in (401, 403) or _ERROR_FIELD_KINDS.get(error) == "auth":
        message = f"HTTP {status or '?'} ({error or 'refused'}), {attempt}: the API key was refused"
        return error_events(message, "auth", data={"error_status": status, "error": error})
    if status != 429 and error != "rate_limit":
        return []  # other retried errors surface in the result if they persist
    return [
        AgentEvent(
            kind=EventKind.RATE_LIMITED,
            text=f"HTTP 429, {attempt}",
            data={"retry_delay_ms": money(line.get("retry_delay_ms"))},
        )
    ]


def _assistant(line: dict[str, Any]) -> list[AgentEvent]:
    failure = text(line.get("error"))
    events: list[AgentEvent] = []
    usage = obj(dig(line, "message", "usage"))
    if usage:
        events.append(_running(usage, text(dig(line, "message", "id"))))
    for block in items(dig(line, "message", "content")):
        block = obj(block)
        kind = text(block.get("type"))
        if kind == "text":
            body = text(block.get("text"))
            if failure or API_ERROR.match(body):
                events += error_events(body, _ERROR_FIELD_KINDS.get(failure) or error_kind(body))
            elif body:
                events.append(AgentEvent(kind=EventKind.MESSAGE, text=body))
        elif kind == "tool_use":
            arguments = obj(block.get("input"))
            target = next((text(arguments.get(k)) for k in _TOOL_TARGETS if arguments.get(k)), "")
            events.append(
                AgentEvent(
                    kind=EventKind.TOOL_CALL,
                    tool=text(block.get("name")) or None,
                    text=target[:_MAX_TOOL_TEXT],
                    data={"id": text(block.get("id")), "input": arguments},
                )
            )
    return events


def _running(usage: dict[str, Any], step: str) -> AgentEvent:
    """One request's usage so far, as an ``assistant`` message says it (no cost)."""
    return AgentEvent(
        kind=EventKind.RUNNING_USAGE, usage=_usage(usage), data={"step": step} if step else {}
    )


def _usage(usage: dict[str, Any], cost: float | None = None) -> Usage:
    """Claude's ``usage`` object (a message's or the result's) as a ``Usage``."""
    return Usage(
        input_tokens=count(usage.get("input_tokens")),
        output_tokens=count(usage.get("output_tokens")),
        cache_read_tokens=count(usage.get("cache_read_input_tokens")),
        cache_write_tokens=count(usage.get("cache_creation_input_tokens")),
        cost_usd=cost,
    )


def _user(line: dict[str, Any]) -> list[AgentEvent]:
    events: list[AgentEvent] = []
    for block in items(dig(line, "message", "content")):
        block = obj(block)
        if text(block.get("type")) != "tool_result":
            continue
        content = block.get("content")
        body = text(content) or "\n".join(text(obj(part).get("text")) for part in items(content))
        events.append(
            AgentEvent(
                kind=EventKind.TOOL_RESULT,
                text=body[:_MAX_TOOL_TEXT],
                data={
                    "tool_use_id": text(block.get("tool_use_id")),
                    "is_error": block.get("is_error") is True,
                },
            )
        )
    return events


def _result(line: dict[str, Any], session: str | None) -> list[AgentEvent]:
    # Qwen 0.24 names a failure before any request (no key, a refused login) only in
    # "error.message", with no "result" text.
    body = text(line.get("result")) or text(dig(line, "error", "message"))
    subtype = text(line.get("subtype"))
    status = count(line.get("api_error_status")) or None
    api_error = status is not None or bool(API_ERROR.match(body))
    failed = line.get("is_error") is True or subtype.startswith("error") or api_error
    events: list[AgentEvent] = []
    usage = obj(line.get("usage"))
    cost = money(line.get("total_cost_usd"))
    if usage or cost is not None:
        events.append(AgentEvent(kind=EventKind.USAGE, usage=_usage(usage, cost)))
    denials = [obj(d) for d in items(line.get("permission_denials"))]
    if denials:
        # Denied tools exit 0 with a "success" result: the only trace is this list.
        what = ", ".join(_denial(d) for d in denials)
        events.append(
            AgentEvent(
                kind=EventKind.ERROR,
                text=f"permission denied: {what}",
                error_kind="permission",
                data={"permission_denials": denials},
            )
        )
    kind = error_kind(body, status)
    if failed and (api_error or kind != "api"):
        events += error_events(body, kind)
    events.append(
        AgentEvent(
            kind=EventKind.COMPLETED,
            text=body or subtype,
            native_session_id=session,
            is_error=failed,
            data={
                "subtype": subtype,
                "cli_is_error": line.get("is_error") is True,
                "api_error_status": status,
                "num_turns": count(line.get("num_turns")),
                "duration_ms": count(line.get("duration_ms")),
            },
        )
    )
    return events


def _denial(denial: dict[str, Any]) -> str:
    arguments = obj(denial.get("tool_input"))
    target = next((text(arguments.get(k)) for k in _TOOL_TARGETS if arguments.get(k)), "")
    tool = text(denial.get("tool_name")) or "tool"
    return f"{tool} {target}".strip()


def _rate_limit_event(line: dict[str, Any]) -> list[AgentEvent]:
    # Subscription sessions report their quota here; "allowed" and "allowed_warning" are
    # heads-ups, only "rejected" means the run is blocked until resetsAt.
    info = obj(line.get("rate_limit_info"))
    which = text(info.get("rateLimitType")) or "usage"
    if text(info.get("status")) != "rejected":
        share = info.get("utilization")
        reset = from_epoch(info.get("resetsAt"))
        if not isinstance(share, int | float) or isinstance(share, bool) or reset is None:
            return []
        return [
            AgentEvent(
                kind=EventKind.QUOTA,
                text=f"{which} limit",
                reset_at=reset,
                # A share (0.97); a percentage (97) is read as one too.
                data={
                    "utilization": share / 100 if share > 1 else float(share),
                    "rate_limit_info": info,
                },
            )
        ]
    return [
        AgentEvent(
            kind=EventKind.RATE_LIMITED,
            text=f"{which} limit reached",
            reset_at=from_epoch(info.get("resetsAt")),
            data={"rate_limit_info": info},
        )
    ]
