"""Anthropic Messages (``POST /v1/messages``, SSE when ``stream`` is true): claude, and qwen
with ``--auth-type anthropic``."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.testing.model_server.conversation import (
    Conversation,
    OfferedTool,
    Reply,
    ToolCall,
    new_id,
)
from orchestrator.testing.model_server.steps import RateLimited
from orchestrator.testing.model_server.wire import (
    USAGE_IN,
    USAGE_OUT,
    WireProtocol,
    WireResponse,
    dicts,
    json_response,
    reset_time,
    retry_after_headers,
    schema_fields,
    sse,
    typed,
)

__all__ = ["AnthropicMessages"]


class AnthropicMessages(WireProtocol):
    name = "anthropic"

    def conversation(self, body: dict[str, Any], path: str) -> Conversation:
        tools = {}
        for tool in dicts(body.get("tools")):
            name = str(tool.get("name", ""))
            tools[name] = OfferedTool(name, *schema_fields(tool.get("input_schema")))
        results = 0
        texts: list[str] = []
        system = _text(body.get("system"))
        said = [system]
        for message in dicts(body.get("messages")):
            content = message.get("content")
            blocks = dicts(content) if isinstance(content, list) else []
            if message.get("role") == "assistant":
                if not any(b.get("type") == "tool_use" for b in blocks):
                    texts.append(_text(content))
            else:
                results += sum(b.get("type") == "tool_result" for b in blocks)
                said.append(_text(content))
        return Conversation(
            model=str(body.get("model", "")),
            stream=body.get("stream") is True,
            tools=tools,
            tool_results=results,
            assistant_texts=tuple(texts),
            system=system,
            text="\n".join(said),
        )

    def reply(self, reply: Reply, conversation: Conversation) -> WireResponse:
        block: dict[str, Any]
        if isinstance(reply, ToolCall):
            block = {"type": "tool_use", "id": reply.call_id, "name": reply.name, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(reply.arguments)}
            stop = "tool_use"
            final = {**block, "input": reply.arguments}
        else:
            block = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": reply.text}
            stop = "end_turn"
            final = {"type": "text", "text": reply.text}
        message: dict[str, Any] = {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": conversation.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": USAGE_IN, "output_tokens": 1},
        }
        if not conversation.stream:
            done = {"content": [final], "stop_reason": stop, "usage": _usage()}
            return json_response(200, {**message, **done})
        return sse(
            [
                typed("message_start", message=message),
                typed("content_block_start", index=0, content_block=block),
                typed("content_block_delta", index=0, delta=delta),
                typed("content_block_stop", index=0),
                typed(
                    "message_delta",
                    delta={"stop_reason": stop, "stop_sequence": None},
                    usage={"output_tokens": USAGE_OUT},
                ),
                typed("message_stop"),
            ]
        )

    def rate_limited(self, limit: RateLimited) -> WireResponse:
        headers = retry_after_headers(limit)
        if limit.reset_headers:
            reset = reset_time(limit)
            headers |= {
                "anthropic-ratelimit-requests-limit": "50",
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": reset,
                "anthropic-ratelimit-tokens-reset": reset,
            }
        error = {
            "type": "rate_limit_error",
            "message": "Number of requests has exceeded your rate limit (fake model).",
        }
        return json_response(429, {"type": "error", "error": error}, headers)  # fmt: skip

    def unauthorized(self) -> WireResponse:
        error = {"type": "authentication_error", "message": "invalid x-api-key"}
        return json_response(401, {"type": "error", "error": error})


def _usage() -> dict[str, int]:
    return {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "\n".join(str(b.get("text", "")) for b in dicts(value) if b.get("type") == "text")
