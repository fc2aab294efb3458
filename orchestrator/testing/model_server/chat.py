"""OpenAI Chat Completions (``POST /v1/chat/completions``, SSE when ``stream`` is true, one
JSON object otherwise): qwen, opencode (``@ai-sdk/openai-compatible``), aider (litellm)."""

from __future__ import annotations

import json
import time
from typing import Any

from orchestrator.testing.model_server.conversation import (
    Conversation,
    OfferedTool,
    Reply,
    ToolCall,
    new_id,
)
from orchestrator.testing.model_server.responses import openai_rate_limited, openai_unauthorized
from orchestrator.testing.model_server.steps import RateLimited
from orchestrator.testing.model_server.wire import (
    USAGE_IN,
    USAGE_OUT,
    WireProtocol,
    WireResponse,
    dicts,
    json_response,
    schema_fields,
    sse,
)

__all__ = ["ChatCompletions"]


class ChatCompletions(WireProtocol):
    name = "chat"

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
            if role == "tool":
                results += 1
                continue
            content = message.get("content")
            content = content if isinstance(content, str) else _text(content)
            if role == "assistant":
                if not message.get("tool_calls"):
                    texts.append(content)
                continue
            said.append(content)
            if role in ("system", "developer"):
                system.append(content)
        stream_options = body.get("stream_options")
        return Conversation(
            model=str(body.get("model", "")),
            stream=body.get("stream") is True,
            tools=tools,
            tool_results=results,
            assistant_texts=tuple(texts),
            system="\n".join(system),
            text="\n".join(said),
            usage_chunk=isinstance(stream_options, dict)
            and stream_options.get("include_usage") is True,
        )

    def reply(self, reply: Reply, conversation: Conversation) -> WireResponse:
        head = {
            "id": new_id("chatcmpl-"),
            "created": int(time.time()),
            "model": conversation.model,
        }
        message: dict[str, Any] = {"role": "assistant"}
        if isinstance(reply, ToolCall):
            call = {
                "id": reply.call_id,
                "type": "function",
                "function": {"name": reply.name, "arguments": json.dumps(reply.arguments)},
            }
            message |= {"content": None, "tool_calls": [call]}
            finish = "tool_calls"
        else:
            message["content"] = reply.text
            finish = "stop"
        if not conversation.stream:
            choice = {"index": 0, "message": message, "finish_reason": finish}
            body = {**head, "object": "chat.completion", "choices": [choice], "usage": _usage()}
            return json_response(200, body)
        chunk = {**head, "object": "chat.completion.chunk"}
        delta = dict(message)
        if "tool_calls" in delta:
            delta["tool_calls"] = [{"index": 0, **delta["tool_calls"][0]}]
        events: list[tuple[str | None, Any]] = [
            (None, {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}),
            (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}),
        ]
        if conversation.usage_chunk:
            events.append((None, {**chunk, "choices": [], "usage": _usage()}))
        events.append((None, "[DONE]"))
        return sse(events)

    def rate_limited(self, limit: RateLimited) -> WireResponse:
        return openai_rate_limited(limit)

    def unauthorized(self) -> WireResponse:
        return openai_unauthorized()


def _usage() -> dict[str, int]:
    return {
        "prompt_tokens": USAGE_IN,
        "completion_tokens": USAGE_OUT,
        "total_tokens": USAGE_IN + USAGE_OUT,
    }


def _text(content: Any) -> str:
    return "\n".join(str(part.get("text", "")) for part in dicts(content))
