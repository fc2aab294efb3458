"""What a fake-model request says and what it is answered, independent of the wire protocol.

Each protocol module turns a request body into a ``Conversation`` (the tools the CLI offers,
how far the exchange has come) and a ``Reply`` back into its own response format.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Conversation", "OfferedTool", "Reply", "TextReply", "ToolCall", "new_id"]


@dataclass(frozen=True)
class OfferedTool:
    """A tool the CLI offers the model, with its parameters as its JSON schema names them."""

    name: str
    properties: dict[str, str] = field(default_factory=dict)  # parameter -> JSON type
    required: tuple[str, ...] = ()
    freeform: bool = False  # an OpenAI "custom" tool that takes raw text (codex apply_patch)
    # A Responses "namespace" tool's member (codex groups an MCP server's tools so): offered
    # as ``<namespace>__<local>``, called as ``local`` in ``namespace``.
    namespace: str | None = None
    local: str | None = None


@dataclass(frozen=True)
class Conversation:
    """One request, as far as choosing the answer goes."""

    model: str
    stream: bool
    tools: dict[str, OfferedTool]
    tool_results: int  # tool results already in the history
    assistant_texts: tuple[str, ...]  # the history's assistant turns that called no tool
    system: str  # the system prompt
    text: str  # the system and user text, where a CLI states its working directory
    usage_chunk: bool = False  # Chat Completions: stream_options.include_usage
    plain_chat: bool = False  # Ollama's API: a request without tools is no side call


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] | str  # a string for a freeform tool
    call_id: str
    freeform: bool = False


@dataclass(frozen=True)
class TextReply:
    text: str


Reply = ToolCall | TextReply


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"
