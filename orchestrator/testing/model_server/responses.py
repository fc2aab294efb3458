"""OpenAI Responses (``POST /v1/responses``, SSE when ``stream`` is true): codex.

Codex offers ``apply_patch`` as a freeform ("custom") tool with some models and as a function
with others; a call to a custom tool is a ``custom_tool_call`` item carrying raw ``input``.
Tool results come back as ``function_call_output`` / ``custom_tool_call_output`` items.
An MCP server's tools come grouped in a ``namespace`` tool (``mcp__<server>``, its functions
in ``tools``); a call to one is a ``function_call`` naming the function and its ``namespace``.
"""

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
    sse,
    typed,
)

__all__ = ["OpenAIResponses", "openai_rate_limited", "openai_unauthorized"]

_RESULT_ITEMS = ("function_call_output", "custom_tool_call_output", "local_shell_call_output")
_CALL_ITEMS = ("function_call", "custom_tool_call", "local_shell_call")


class OpenAIResponses(WireProtocol):
    name = "responses"

    def conversation(self, body: dict[str, Any], path: str) -> Conversation:
        tools = {}
        for tool in dicts(body.get("tools")):
            name = str(tool.get("name", tool.get("type", "")))
            freeform = tool.get("type") == "custom"
            tools[name] = OfferedTool(name, *schema_fields(tool.get("parameters")), freeform)
            if tool.get("type") == "namespace":
                for member in dicts(tool.get("tools")):
                    local = str(member.get("name", ""))
                    full = f"{name}__{local}"
                    fields = schema_fields(member.get("parameters"))
                    tools[full] = OfferedTool(full, *fields, namespace=name, local=local)
        system = [str(body.get("instructions") or "")]
        said = list(system)
        items = dicts(body.get("input"))
        results = sum(item.get("type") in _RESULT_ITEMS for item in items)
        texts: list[str] = []
        for item in items:
            if item.get("type") != "message":
                continue
            content = item.get("content")
            content = content if isinstance(content, str) else _text(content)
            if item.get("role") == "assistant":
                texts.append(content)
                continue
            said.append(content)
            if item.get("role") in ("system", "developer"):
                system.append(content)
        return Conversation(
            model=str(body.get("model", "")),
            stream=body.get("stream") is True,
            tools=tools,
            tool_results=results,
            assistant_texts=tuple(texts),
            system="\n".join(system),
            text="\n".join(said),
        )

    def reply(self, reply: Reply, conversation: Conversation) -> WireResponse:
        item: dict[str, Any]
        if isinstance(reply, ToolCall) and reply.freeform:
            item = {
                "type": "custom_tool_call",
                "id": new_id("ctc_"),
                "call_id": reply.call_id,
                "name": reply.name,
                "input": reply.arguments,
                "status": "completed",
            }
        elif isinstance(reply, ToolCall):
            offered = conversation.tools.get(reply.name)
            member = offered is not None and offered.namespace is not None
            item = {
                "type": "function_call",
                "id": new_id("fc_"),
                "call_id": reply.call_id,
                "name": offered.local if offered is not None and member else reply.name,
                **({"namespace": offered.namespace} if offered is not None and member else {}),
                "arguments": json.dumps(reply.arguments),
                "status": "completed",
            }
        else:
            item = {
                "type": "message",
                "id": new_id("msg_"),
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
            }
        response = {
            "id": new_id("resp_"),
            "object": "response",
            "created_at": int(time.time()),
            "model": conversation.model,
            "status": "in_progress",
            "output": [],
        }
        done = {**response, "status": "completed", "output": [item], "usage": _usage()}
        if not conversation.stream:
            return json_response(200, done)
        events: list[tuple[str, dict[str, Any]]] = [
            typed("response.created", response=response),
            typed("response.in_progress", response=response),
            typed("response.output_item.added", output_index=0, item=item),
        ]
        if item["type"] == "message":
            text = item["content"][0]["text"]
            events.append(
                typed(
                    "response.output_text.delta",
                    item_id=item["id"],
                    output_index=0,
                    content_index=0,
                    delta=text,
                )
            )
        events += [
            typed("response.output_item.done", output_index=0, item=item),
            typed("response.completed", response=done),
        ]
        numbered: list[tuple[str | None, Any]] = [
            (name, {**data, "sequence_number": n}) for n, (name, data) in enumerate(events)
        ]
        return sse(numbered)

    def rate_limited(self, limit: RateLimited) -> WireResponse:
        return openai_rate_limited(limit)

    def unauthorized(self) -> WireResponse:
        return openai_unauthorized()


def openai_rate_limited(limit: RateLimited) -> WireResponse:
    """OpenAI's 429 (Responses and Chat Completions alike)."""
    headers = retry_after_headers(limit)
    if limit.reset_headers:
        reset = f"{limit.announced_seconds:g}s"
        headers |= {
            "x-ratelimit-limit-requests": "50",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": reset,
            "x-ratelimit-reset-tokens": reset,
        }
    error = {
        "message": "Rate limit reached for requests (fake model).",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    return json_response(429, {"error": error}, headers)


def openai_unauthorized() -> WireResponse:
    error = {
        "message": "Incorrect API key provided (fake model).",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    return json_response(401, {"error": error})


def _usage() -> dict[str, Any]:
    return {
        "input_tokens": USAGE_IN,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": USAGE_OUT,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": USAGE_IN + USAGE_OUT,
    }


def _text(content: Any) -> str:
    return "\n".join(str(part.get("text", "")) for part in dicts(content))
