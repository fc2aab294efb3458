"""What every protocol module shares: the response it hands back, SSE framing, the 429 and 401
answers' headers, and the interface a protocol implements."""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from orchestrator.testing.model_server.conversation import Conversation, Reply
from orchestrator.testing.model_server.steps import RateLimited

__all__ = [
    "WireProtocol",
    "WireResponse",
    "dicts",
    "json_response",
    "reset_time",
    "retry_after_headers",
    "schema_fields",
    "sse",
    "typed",
]

USAGE_IN = 100  # token counts every reply reports: small, constant, non-zero
USAGE_OUT = 20


@dataclass(frozen=True)
class WireResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class WireProtocol(ABC):
    """One wire protocol: reads its request bodies, writes its replies and errors."""

    name: ClassVar[str]

    @abstractmethod
    def conversation(self, body: dict[str, Any], path: str) -> Conversation:
        """The request as far as choosing the answer goes."""

    @abstractmethod
    def reply(self, reply: Reply, conversation: Conversation) -> WireResponse:
        """The answer, streamed (SSE) when the request asked for a stream."""

    @abstractmethod
    def rate_limited(self, limit: RateLimited) -> WireResponse:
        """A 429, with reset headers only when ``limit.reset_headers``."""

    @abstractmethod
    def unauthorized(self) -> WireResponse:
        """A 401: the key was refused."""

    def count_tokens(self) -> WireResponse:
        return json_response(200, {"input_tokens": USAGE_IN})


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> WireResponse:
    return WireResponse(status, json.dumps(data).encode(), headers=dict(headers or {}))


def sse(events: list[tuple[str | None, Any]]) -> WireResponse:
    """A complete ``text/event-stream`` body: ``event:`` lines where the protocol names them."""
    parts = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        head = f"event: {name}\n" if name else ""
        parts.append(f"{head}data: {payload}\n\n")
    return WireResponse(200, "".join(parts).encode(), content_type="text/event-stream")


def typed(kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    """An SSE event whose data repeats its name as ``type`` (Anthropic's and OpenAI's style)."""
    return kind, {"type": kind, **fields}


def retry_after_headers(limit: RateLimited) -> dict[str, str]:
    """``retry-after`` (whole seconds, rounded up) and ``retry-after-ms``, or nothing."""
    if not limit.reset_headers:
        return {}
    seconds = max(limit.announced_seconds, 0.0)
    return {
        "retry-after": str(math.ceil(seconds)),
        "retry-after-ms": str(round(seconds * 1000)),
    }


def reset_time(limit: RateLimited) -> str:
    """When the limit lifts, as RFC 3339 (what Anthropic's reset headers carry)."""
    moment = datetime.now(UTC) + timedelta(seconds=max(limit.announced_seconds, 0.0))
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def dicts(value: Any) -> list[dict[str, Any]]:
    """The objects in a JSON list (anything else in it, or a non-list, is ignored)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def schema_fields(schema: Any) -> tuple[dict[str, str], tuple[str, ...]]:
    """A JSON schema's parameters (name -> type) and its required names."""
    schema = schema if isinstance(schema, dict) else {}
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    kinds = {
        str(name): str(spec.get("type", "string")).lower() if isinstance(spec, dict) else "string"
        for name, spec in properties.items()
    }
    required = schema.get("required")
    return kinds, tuple(str(r) for r in required) if isinstance(required, list) else ()
