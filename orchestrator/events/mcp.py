"""The council's MCP server (``orchestrator.coordination``): one event per tool call a CLI (or
a user's own client) made, whatever came of it."""

from __future__ import annotations

from typing import Literal

from orchestrator.events.base import TypedEvent

__all__ = ["McpCall"]


class McpCall(TypedEvent):
    """``tool`` was called by ``session`` (None: the read-only server a user attached by
    hand); ``outcome`` is ``ok``, ``refused`` (a rule said no: the answer says why) or
    ``error``. What was asked for is kept only where it names a place (``path``, ``task``,
    ``to``), never a note's text."""

    type: Literal["mcp.call"] = "mcp.call"
    tool: str
    session: str | None = None
    task_id: str | None = None
    outcome: Literal["ok", "refused", "error"] = "ok"
    subject: str | None = None  # the path, session, task or addressee the call was about
    detail: str = ""  # a refusal's or an error's reason, cut short
