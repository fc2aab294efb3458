"""Gemini (``POST /v1beta/models/MODEL:streamGenerateContent?alt=sse``, ``:generateContent``,
``:countTokens``): gemini, and qwen with ``--auth-type gemini``.

The model is in the path; tool results are ``functionResponse`` parts of user contents.
"""

from __future__ import annotations

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
    sse,
)

__all__ = ["GeminiGenerateContent"]


class GeminiGenerateContent(WireProtocol):
    name = "gemini"

    def conversation(self, body: dict[str, Any], path: str) -> Conversation:
        tools = {}
        for group in dicts(body.get("tools")):
            for function in dicts(group.get("functionDeclarations")):
                name = str(function.get("name", ""))
                schema = function.get("parametersJsonSchema") or function.get("parameters")
                tools[name] = OfferedTool(name, *schema_fields(schema))
        system = _text(body.get("systemInstruction"))
        said = [system]
        results = 0
        texts: list[str] = []
        for content in dicts(body.get("contents")):
            parts = dicts(content.get("parts"))
            if content.get("role") == "model":
                if not any("functionCall" in part for part in parts):
                    texts.append(_text(content))
            else:
                results += sum("functionResponse" in part for part in parts)
                said.append(_text(content))
        return Conversation(
            model=_model(path),
            stream=":streamGenerateContent" in path,
            tools=tools,
            tool_results=results,
            assistant_texts=tuple(texts),
            system=system,
            text="\n".join(said),
        )

    def reply(self, reply: Reply, conversation: Conversation) -> WireResponse:
        part = (
            {"functionCall": {"name": reply.name, "args": reply.arguments}}
            if isinstance(reply, ToolCall)
            else {"text": reply.text}
        )
        chunk = {
            "candidates": [
                {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": USAGE_IN,
                "candidatesTokenCount": USAGE_OUT,
                "totalTokenCount": USAGE_IN + USAGE_OUT,
            },
            "modelVersion": conversation.model,
        }
        return sse([(None, chunk)]) if conversation.stream else json_response(200, chunk)

    def rate_limited(self, limit: RateLimited) -> WireResponse:
        details = []
        if limit.reset_headers:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{limit.announced_seconds:g}s",
                }
            )
        error = {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota). (fake model)",
            "status": "RESOURCE_EXHAUSTED",
            "details": details,
        }
        return json_response(429, {"error": error}, retry_after_headers(limit))

    def unauthorized(self) -> WireResponse:
        error = {
            "code": 401,
            "message": "API key not valid. Please pass a valid API key. (fake model)",
            "status": "UNAUTHENTICATED",
        }
        return json_response(401, {"error": error})

    def count_tokens(self) -> WireResponse:
        return json_response(200, {"totalTokens": USAGE_IN})


def _model(path: str) -> str:
    name = path.split("?", 1)[0].rsplit("/models/", 1)[-1]
    return name.split(":", 1)[0]


def _text(content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    return "\n".join(str(part.get("text", "")) for part in dicts(content.get("parts")))
