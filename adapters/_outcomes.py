"""Classification helpers shared by the built-in adapters.

The CLIs report the same few failures in many wordings ("429 Too Many Requests",
"Request rejected (429)", "RetryableQuotaError", "rate limit exceeded"). These helpers turn such
text into one ``error_kind`` and the events the base ``Adapter.classify`` understands, and
finish an outcome with what only the whole event list tells (the final text, a reset time, a run
that was stopped while the CLI was still backing off from a rate limit).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from orchestrator.adapter import AgentEvent, EventKind, Outcome, OutcomeKind

__all__ = [
    "GEMINI_FAMILY_EXITS",
    "error_events",
    "error_kind",
    "final_text",
    "finish",
    "from_epoch",
    "http_status",
    "plain_line",
    "reclassify",
    "reset_in_text",
    "stalled_on_rate_limit",
]

_STATUS_PATTERNS = (
    re.compile(r"\b(?:status|code|error_status)\W{0,3}(\d{3})\b", re.IGNORECASE),
    re.compile(r"API Error:\s*(\d{3})\b"),
    re.compile(r"\((\d{3})\)"),
    re.compile(r"\b(\d{3}) (?:Too Many Requests|Unauthorized|Forbidden)\b", re.IGNORECASE),
)
_RATE_LIMIT = re.compile(
    r"rate.?limit|too many requests|quota|resource.?exhausted|usage limit", re.IGNORECASE
)
_AUTH = re.compile(
    r"unauthori[sz]ed|forbidden|invalid (?:x-)?api.?key|api.?key (?:is )?(?:invalid|not valid)"
    r"|incorrect api.?key|authenticat|not logged in|please run /login|credit balance is too low"
    # codex with a custom provider whose env_key is unset: a missing key, not a flaky failure
    r"|missing environment variable"
    # qwen 0.24 without its key, or logged in with the discontinued Qwen OAuth free tier
    r"|missing api.?key|run /auth\b",
    re.IGNORECASE,
)
_USAGE_LIMIT_RESET = re.compile(r"usage limit reached\|(\d{9,13})", re.IGNORECASE)

# Exit codes of Gemini CLI's FatalError classes, shared by its fork Qwen Code; 145 and 173 are
# HTTP 401 and 429 cut to 8 bits, because gemini exits with the API error's status.
GEMINI_FAMILY_EXITS: dict[int, tuple[OutcomeKind, str]] = {
    41: (OutcomeKind.AUTH_REQUIRED, "authentication failed or the auth method was rejected"),
    42: (OutcomeKind.FAILED, "bad input"),
    44: (OutcomeKind.FAILED, "sandbox error"),
    52: (OutcomeKind.FAILED, "configuration error"),
    53: (OutcomeKind.FAILED, "turn limit reached"),
    54: (OutcomeKind.FAILED, "tool execution failed"),
    55: (OutcomeKind.PERMISSION_DENIED, "workspace not trusted"),
    145: (OutcomeKind.AUTH_REQUIRED, "HTTP 401 from the model API"),
    147: (OutcomeKind.AUTH_REQUIRED, "HTTP 403 from the model API"),
    173: (OutcomeKind.RATE_LIMITED, "HTTP 429 from the model API"),
}

_PROGRESS = (EventKind.MESSAGE, EventKind.TOOL_CALL, EventKind.TOOL_RESULT, EventKind.COMPLETED)


def http_status(message: str) -> int | None:
    """The HTTP status an error message names, if it names one."""
    for pattern in _STATUS_PATTERNS:
        for match in pattern.finditer(message):
            if 400 <= int(match.group(1)) <= 599:
                return int(match.group(1))
    return None


def error_kind(message: str, status: int | None = None) -> str:
    """``rate_limit``, ``auth`` or ``api`` for an API error, from its status or its wording."""
    status = status if status is not None else http_status(message)
    if status == 429:
        return "rate_limit"
    if status in (401, 403):
        return "auth"
    if _AUTH.search(message):
        return "auth"
    if _RATE_LIMIT.search(message):
        return "rate_limit"
    return "api"


def from_epoch(value: object) -> datetime | None:
    """A reset time given as Unix seconds (or milliseconds) or an ISO 8601 string."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return from_epoch(int(value)) if value.isdigit() else None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    seconds = value / 1000 if value > 1e11 else value  # a 12+ digit number is milliseconds
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def reset_in_text(message: str) -> datetime | None:
    """The reset time in Claude's "usage limit reached|<epoch>" text, when present."""
    match = _USAGE_LIMIT_RESET.search(message)
    return from_epoch(int(match.group(1))) if match else None


def error_events(
    message: str,
    kind: str,
    *,
    retry_after: float | None = None,
    reset_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> list[AgentEvent]:
    """An ERROR of ``kind``, plus the RATE_LIMITED event the base classifier keys on."""
    events = [AgentEvent(kind=EventKind.ERROR, text=message, error_kind=kind, data=data or {})]
    if kind == "rate_limit":
        events.append(
            AgentEvent(
                kind=EventKind.RATE_LIMITED,
                text=message,
                retry_after=retry_after,
                reset_at=reset_at or reset_in_text(message),
            )
        )
    return events


def plain_line(line: str) -> list[AgentEvent]:
    """A line no parser rule matched: kept for the log unless it is blank."""
    return [AgentEvent(kind=EventKind.RAW, text=line)] if line.strip() else []


def final_text(events: Sequence[AgentEvent]) -> str:
    """The CLI's final answer: the last successful COMPLETED text, else the last message.

    Messages marked ``data["delta"]`` are pieces of one answer (gemini streams them), so the
    trailing run of them is joined; a tool call or result ends the search.
    """
    done = next((e for e in reversed(events) if e.kind == EventKind.COMPLETED), None)
    if done is not None and done.text and not done.is_error:
        return done.text
    parts: list[str] = []
    for event in reversed(events):
        if event.kind == EventKind.MESSAGE:
            parts.append(event.text)
            if not event.data.get("delta"):
                break
        elif event.kind in (EventKind.TOOL_CALL, EventKind.TOOL_RESULT):
            break
    return "".join(reversed(parts)).strip()


def stalled_on_rate_limit(events: Sequence[AgentEvent]) -> bool:
    """Was the CLI still backing off from a rate limit when its output stopped?"""
    for event in reversed(events):
        if event.kind == EventKind.RATE_LIMITED:
            return True
        if event.kind in _PROGRESS:
            return False
    return False


def reclassify(outcome: Outcome, kind: OutcomeKind, message: str, **extra: Any) -> Outcome:
    """``outcome`` with another kind, keeping the session id and usage the base computed."""
    return outcome.model_copy(update={"kind": kind, "message": message, **extra})


def finish(outcome: Outcome, events: Sequence[AgentEvent]) -> Outcome:
    """Complete the base classifier's outcome with what only the whole event list tells."""
    limits = [e for e in events if e.kind == EventKind.RATE_LIMITED]
    if outcome.kind == OutcomeKind.TIMED_OUT and stalled_on_rate_limit(events):
        # The time limit cut a CLI that was waiting out 429s (gemini retries for minutes,
        # silently on stdout): the cause is the rate limit, so park the adapter, not the task.
        outcome = reclassify(
            outcome,
            OutcomeKind.RATE_LIMITED,
            f"still retrying a rate limit when stopped ({outcome.message}): {limits[-1].text}",
            retry_after=limits[-1].retry_after,
        )
    if outcome.kind == OutcomeKind.RATE_LIMITED and outcome.retry_at is None:
        reset = next((e.reset_at for e in reversed(limits) if e.reset_at is not None), None)
        if reset is not None:
            outcome = outcome.model_copy(update={"retry_at": reset})
    if outcome.kind == OutcomeKind.SUCCEEDED and not outcome.message:
        outcome = outcome.model_copy(update={"message": final_text(events)})
    return outcome
