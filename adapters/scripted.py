"""The ``scripted`` adapter: drives scripted-cli, the offline stand-in CLI (``scripted_cli.py``).

It needs no network and no key, edits files for real, and can be told (in its prompt) to hit a
rate limit, fail, hang, ignore SIGTERM or crash, which makes it the CLI of the offline demo and
of the tests. Options (``adapters.<name>.options`` in a run config)::

    persona: careful        # careful | quick | reviewer | default (sets the defaults below)
    delay: 0.2              # seconds between steps
    personality: "Hmm."     # text that prefixes each message

Its output is Claude Code's stream-json, so this parser reads the same shapes (init, assistant
text and tool_use, tool_result, api_retry, rate_limit_event, result with usage, cost, 429/401
status and permission denials; each assistant message's usage as a ``running_usage`` event, the
result's as the call's). Resuming passes ``--resume <session id>``. Like claude, the
stand-in reads its prompt from stdin when ``-p`` has none: a prompt that starts with ``-`` or
is too long for an argument goes in that way.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from adapters._build import stdin_prompt
from orchestrator.adapter import (
    Adapter,
    AdapterConfig,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    EventKind,
    Outcome,
    OutcomeKind,
    ProcessResult,
    Stream,
    Usage,
    native_id,
)
from orchestrator.plugins.hookspecs import hookimpl

__all__ = ["SCRIPT", "Scripted", "register_adapters"]

SCRIPT = str(Path(__file__).with_name("scripted_cli.py"))


class Scripted(Adapter):
    name = "scripted"
    executable = sys.executable
    streams_json = True
    can_resume = True

    class Config(AdapterConfig):
        # The stand-in's personas (``scripted_cli.PERSONAS``) and ``default``: a misspelt one
        # (``carefull``) is refused with "did you mean", never run as the default silently.
        persona: Literal["default", "careful", "quick", "reviewer"] = "default"
        delay: float | None = Field(default=None, ge=0, le=60)
        personality: str | None = Field(default=None, max_length=500)

    config: Config

    def _argv(self, request: AdapterRequest) -> list[str]:
        # -I -S: the stand-in uses only the standard library; isolated mode keeps the caller's
        # PYTHON* variables and site-packages out, and starts faster.
        argv = [self.binary, "-I", "-S", SCRIPT, "--output-format", "stream-json"]
        argv += ["--persona", self.config.persona]
        if self.config.delay is not None:
            argv += ["--delay", str(self.config.delay)]
        if self.config.personality is not None:
            argv += ["--personality", self.config.personality]
        if request.model:
            argv += ["--model", request.model]
        return argv

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        return self._command(self._argv(request), request.prompt)

    def resume_command(self, request: AdapterRequest, native_session_id: str) -> CommandSpec:
        session = native_id(self.name, native_session_id)
        return self._command([*self._argv(request), "--resume", session], request.prompt)

    def _command(self, argv: list[str], prompt: str) -> CommandSpec:
        stdin = stdin_prompt(prompt)
        return CommandSpec(argv=argv if stdin is not None else [*argv, "-p", prompt], stdin=stdin)

    def version_command(self) -> list[str]:
        return [self.binary, "-I", "-S", SCRIPT, "--version"]

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        if not line.strip():
            return []
        raw = [AgentEvent(kind=EventKind.RAW, text=line[:4096])]
        if stream == "stderr":
            return raw
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            return raw
        if not isinstance(message, dict):
            return raw
        session = _text(message.get("session_id")) or None
        events = _parse(message, session)
        return events if events is not None else raw

    def classify(self, result: ProcessResult, events: Sequence[AgentEvent]) -> Outcome:
        outcome = super().classify(result, events)
        if outcome.kind is OutcomeKind.RATE_LIMITED and outcome.retry_at is None:
            # The result line says 429 without a time; the rate_limit_event before it has one.
            reset = next((e.reset_at for e in reversed(events) if e.reset_at), None)
            outcome = outcome.model_copy(update={"retry_at": reset})
        return outcome


def _parse(message: dict[str, Any], session: str | None) -> list[AgentEvent] | None:
    kind = message.get("type")
    if kind == "system" and message.get("subtype") == "init":
        data = {"model": _text(message.get("model")), "resumed": message.get("resumed") is True}
        return [AgentEvent(kind=EventKind.STARTED, native_session_id=session, data=data)]
    if kind == "system" and message.get("subtype") == "api_retry":
        if message.get("error_status") != 429:
            return None
        delay = _number(message.get("retry_delay_ms"))
        return [
            AgentEvent(
                kind=EventKind.RATE_LIMITED,
                text="rate limited; the CLI is retrying",
                retry_after=delay / 1000 if delay is not None else None,
                native_session_id=session,
            )
        ]
    if kind == "rate_limit_event":
        info = _mapping(message.get("rate_limit_info"))
        resets = _number(info.get("resetsAt"))
        reset_at = _timestamp(resets)
        text = f"rate limit {_text(info.get('status')) or 'reached'}"
        return [AgentEvent(kind=EventKind.RATE_LIMITED, text=text, reset_at=reset_at)]
    if kind == "assistant":
        return _assistant(_mapping(message.get("message")), session)
    if kind == "user":
        return _tool_results(_mapping(message.get("message")), session)
    if kind == "result":
        return _result(message, session)
    return None


def _assistant(message: dict[str, Any], session: str | None) -> list[AgentEvent]:
    events = []
    usage = _mapping(message.get("usage"))
    if usage:  # this request's usage, said as it comes (claude's shape: no cost)
        events.append(
            AgentEvent(
                kind=EventKind.RUNNING_USAGE,
                native_session_id=session,
                usage=_usage(usage),
                data={"step": _text(message.get("id"))} if message.get("id") else {},
            )
        )
    for block in _blocks(message.get("content")):
        if block.get("type") == "text":
            text = _text(block.get("text"))
            events.append(AgentEvent(kind=EventKind.MESSAGE, text=text, native_session_id=session))
        elif block.get("type") == "tool_use":
            tool = _text(block.get("name")) or "tool"
            summary = json.dumps(block.get("input"), default=str)[:500]
            events.append(
                AgentEvent(
                    kind=EventKind.TOOL_CALL, tool=tool, text=summary, native_session_id=session
                )
            )
    return events


def _tool_results(message: dict[str, Any], session: str | None) -> list[AgentEvent]:
    return [
        AgentEvent(
            kind=EventKind.TOOL_RESULT,
            text=_text(block.get("content"))[:2000],
            native_session_id=session,
            data={"is_error": block.get("is_error") is True},
        )
        for block in _blocks(message.get("content"))
        if block.get("type") == "tool_result"
    ]


def _result(message: dict[str, Any], session: str | None) -> list[AgentEvent]:
    text = _text(message.get("result"))
    status = message.get("api_error_status")
    is_error = message.get("is_error") is True or message.get("subtype") not in ("success", None)
    events: list[AgentEvent] = []
    if status == 429:
        events.append(AgentEvent(kind=EventKind.RATE_LIMITED, text=text, error_kind="rate_limit"))
    elif status == 401:
        events.append(AgentEvent(kind=EventKind.ERROR, text=text, error_kind="auth"))
    denials = message.get("permission_denials")
    if isinstance(denials, list) and denials:
        paths = [_text(_mapping(_mapping(d).get("tool_input")).get("file_path")) for d in denials]
        events.append(
            AgentEvent(
                kind=EventKind.ERROR,
                text=f"permission denied for {len(denials)} tool calls: {', '.join(paths)}"[:500],
                error_kind="permission",
            )
        )
    usage = _mapping(message.get("usage"))
    events.append(
        AgentEvent(
            kind=EventKind.COMPLETED,
            text=text,
            is_error=is_error,
            native_session_id=session,
            usage=_usage(usage, _number(message.get("total_cost_usd"))),
        )
    )
    return events


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _blocks(value: Any) -> list[dict[str, Any]]:
    return [block for block in value if isinstance(block, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


def _count(value: Any) -> int:
    number = _number(value)
    return max(0, int(number)) if number is not None else 0


def _timestamp(seconds: float | None) -> datetime | None:
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


@hookimpl
def register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(Scripted)


def _usage(usage: dict[str, Any], cost: float | None = None) -> Usage:
    """A usage object of claude's shape (a message's or the result's) as a ``Usage``."""
    return Usage(
        input_tokens=_count(usage.get("input_tokens")),
        output_tokens=_count(usage.get("output_tokens")),
        cache_read_tokens=_count(usage.get("cache_read_input_tokens")),
        cache_write_tokens=_count(usage.get("cache_creation_input_tokens")),
        cost_usd=cost,
    )
