"""Ollama's native API: ``POST /api/chat`` and ``POST /api/generate`` (NDJSON streams by
default, one JSON object with ``"stream": false``), plus what a client asks around them:
``HEAD /`` (``ollama run``'s heartbeat), ``GET /api/version``, ``GET /api/tags``,
``POST /api/show``.

Shapes follow the Ollama server and its Go client (``api/types.go``, ``server/routes.go``,
v0.33): token counts and durations (nanoseconds) in the last, ``"done": true`` object; tool
call arguments as a JSON object, not a string; errors as ``{"error": "..."}`` with the HTTP
status. ``ollama run MODEL PROMPT`` is a client of this API: heartbeat, ``/api/show``, then a
streamed ``/api/generate``.

Neither endpoint is ever a CLI's side call: a request without tools is the conversation itself
(``ollama run`` offers none).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from orchestrator.testing.model_server.conversation import (
    Conversation,
    OfferedTool,
    Reply,
    ToolCall,
)
from orchestrator.testing.model_server.steps import RateLimited
from orchestrator.testing.model_server.wire import (
    USAGE_IN,
    USAGE_OUT,
    WireProtocol,
    WireResponse,
    dicts,
    json_response,
    retry_after_headers,
    schema_fields,
)

__all__ = ["FAKE_VERSION", "OllamaChat", "OllamaGenerate", "heartbeat", "show", "tags", "version"]

FAKE_VERSION = "0.0.0-fake-model"
RUNNING = "Ollama is running"
NDJSON = "application/x-ndjson"
# Durations in nanoseconds (Go's time.Duration), as the server reports them.
_METRICS = {
    "total_duration": 30_000_000,
    "load_duration": 1_000_000,
    "prompt_eval_count": USAGE_IN,
    "prompt_eval_duration": 10_000_000,
    "eval_count": USAGE_OUT,
    "eval_duration": 19_000_000,
}
_DETAILS = {
    "parent_model": "",
    "format": "gguf",
    "family": "fake",
    "families": ["fake"],
    "parameter_size": "1B",
    "quantization_level": "Q4_0",
}


class _OllamaProtocol(WireProtocol):
    name = "ollama"

    def rate_limited(self, limit: RateLimited) -> WireResponse:
        # Ollama's cloud models answer a spent quota with its usage-limit message.
        error = "you've reached your session usage limit, please wait or upgrade to continue"
        return json_response(429, {"error": error}, retry_after_headers(limit))

    def unauthorized(self) -> WireResponse:
        return json_response(401, {"error": "unauthorized"})

    def _stream(
        self, conversation: Conversation, first: dict[str, Any], last: dict[str, Any]
    ) -> WireResponse:
        """The answer ``first``, then the closing object ``last`` with the counts: two NDJSON
        lines, or (``"stream": false``) one object holding both, the answer kept."""
        head = {"model": conversation.model, "created_at": _now()}
        done = {"done": True, "done_reason": "stop", **_METRICS}
        if not conversation.stream:
            whole = json.dumps({**head, **last, **first, **done}).encode()
            return WireResponse(200, whole, "application/json; charset=utf-8")
        lines = [{**head, **first, "done": False}, {**head, **last, **done}]
        return WireResponse(200, "".join(json.dumps(x) + "\n" for x in lines).encode(), NDJSON)


class OllamaChat(_OllamaProtocol):
    """``POST /api/chat``: messages, optional tools (OpenAI's function shape)."""

    def conversation(self, body: dict[str, Any], path: str) -> Conversation:
        tools = {}
        for tool in dicts(body.get("tools")):
            function = tool.get("function")
            function = function if isinstance(function, dict) else {}
            name = str(function.get("name", ""))
            tools[name] = OfferedTool(name, *schema_fields(function.get("parameters")))
        results = 0
        texts: list[str] = []
        system: list[str] = []
        said = []
        for message in dicts(body.get("messages")):
            role = message.get("role")
            content = str(message.get("content") or "")
            if role == "tool":
                results += 1
            elif role == "assistant":
                if not message.get("tool_calls"):
                    texts.append(content)
            else:
                said.append(content)
                if role == "system":
                    system.append(content)
        return Conversation(
            model=str(body.get("model", "")),
            stream=body.get("stream") is not False,  # Ollama streams unless told not to
            tools=tools,
            tool_results=results,
            assistant_texts=tuple(texts),
            system="\n".join(system),
            text="\n".join(said),
            plain_chat=True,
        )

    def reply(self, reply: Reply, conversation: Conversation) -> WireResponse:
        if isinstance(reply, ToolCall):
            arguments = reply.arguments if isinstance(reply.arguments, dict) else {}
            call = {
                "id": reply.call_id,
                "function": {"index": 0, "name": reply.name, "arguments": arguments},
            }
            message = {"role": "assistant", "content": "", "tool_calls": [call]}
        else:
            message = {"role": "assistant", "content": reply.text}
        closing = {"message": {"role": "assistant", "content": ""}}
        return self._stream(conversation, {"message": message}, closing)


class OllamaGenerate(_OllamaProtocol):
    """``POST /api/generate``: one prompt (and system), no tools, no history but ``context``."""

    def conversation(self, body: dict[str, Any], path: str) -> Conversation:
        system = str(body.get("system") or "")
        prompt = str(body.get("prompt") or "")
        return Conversation(
            model=str(body.get("model", "")),
            stream=body.get("stream") is not False,
            tools={},
            tool_results=0,
            assistant_texts=(),
            system=system,
            text="\n".join(part for part in (system, prompt) if part),
            plain_chat=True,
        )

    def reply(self, reply: Reply, conversation: Conversation) -> WireResponse:
        text = reply.text if not isinstance(reply, ToolCall) else ""
        # ``context`` carries the conversation into the next /api/generate (token ids).
        return self._stream(
            conversation, {"response": text}, {"response": "", "context": [1, 2, 3]}
        )


def heartbeat() -> WireResponse:
    """``HEAD /`` and ``GET /``: what ``ollama run`` checks before anything else."""
    return WireResponse(200, RUNNING.encode(), "text/plain; charset=utf-8")


def version() -> WireResponse:
    return json_response(200, {"version": FAKE_VERSION})


def tags(model: str = "fake-model:latest") -> WireResponse:
    """``GET /api/tags``: the one model the fake serves (any name is answered anyway)."""
    listed = {
        "name": model,
        "model": model,
        "modified_at": _now(),
        "size": 1_000_000,
        "digest": "0" * 64,
        "details": _DETAILS,
    }
    return json_response(200, {"models": [listed]})


def show(body: Any) -> WireResponse:
    """``POST /api/show``: any model exists; it completes text and calls tools."""
    name = (body.get("model") or body.get("name")) if isinstance(body, dict) else None
    if not name:
        return json_response(400, {"error": "model is required"})
    return json_response(
        200,
        {
            "modelfile": f"FROM {name}\n",
            "parameters": "",
            "template": "{{ .Prompt }}",
            "details": _DETAILS,
            "model_info": {"general.architecture": "fake", "fake.context_length": 8192},
            "capabilities": ["completion", "tools"],
            "modified_at": _now(),
        },
    )


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
