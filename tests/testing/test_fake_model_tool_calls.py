"""The fake model's ``CallTool`` step (issue 34's real-CLI tier): an MCP server's tool called
as each CLI offers it, with the script's arguments: by the CLI's prefixed name (opencode's
``council_request_lock``), in codex's Responses ``namespace`` tool, and through the loaders of
deferred tools (claude's ``ToolSearch``, qwen's ``tool_search`` then ``tool_call``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.testing.fake_model import CallTool, FakeModel, FinalText
from tests.testing.test_fake_model import post

ARGS = {"path": "mcp-lock.txt"}
PATH_SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
SEARCH_SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}}


@pytest.fixture
def model() -> Iterator[FakeModel]:
    with FakeModel([CallTool("request_lock", ARGS), FinalText("Locked.")]) as server:
        yield server


def _answer(model: FakeModel, path: str, body: dict[str, Any]) -> dict[str, Any]:
    status, _, text = post(model, path, body)
    assert status == 200, text
    answer: dict[str, Any] = json.loads(text)
    return answer


def _chat(tools: list[dict[str, Any]], results: int = 0, system: str = "") -> dict[str, Any]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system or "You are a CLI."},
        {"role": "user", "content": "Take the lock."},
    ]
    for n in range(results):
        call = {"id": f"c{n}", "type": "function", "function": {"name": "x", "arguments": "{}"}}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"c{n}", "content": "ok"})
    functions = [{"type": "function", "function": tool} for tool in tools]
    return {"model": "m", "stream": False, "messages": messages, "tools": functions}


def _chat_call(answer: dict[str, Any]) -> tuple[str, Any]:
    call = answer["choices"][0]["message"]["tool_calls"][0]["function"]
    return call["name"], json.loads(call["arguments"])


def test_a_prefixed_mcp_tool_is_called_with_the_scripts_arguments(model: FakeModel) -> None:
    tools = [{"name": "council_request_lock", "parameters": PATH_SCHEMA}]
    answer = _answer(model, "/v1/chat/completions", _chat(tools))
    assert _chat_call(answer) == ("council_request_lock", ARGS)
    done = _answer(model, "/v1/chat/completions", _chat(tools, results=1))
    assert done["choices"][0]["message"]["content"] == "Locked."


def test_codex_gets_a_call_in_the_mcp_namespace(model: FakeModel) -> None:
    member = {"type": "function", "name": "request_lock", "parameters": PATH_SCHEMA}
    body = {
        "model": "council-fake-model",
        "stream": False,
        "instructions": "You are codex.",
        "tools": [{"type": "namespace", "name": "mcp__council", "tools": [member]}],
        "input": [{"type": "message", "role": "user", "content": "Take the lock."}],
    }
    (item,) = _answer(model, "/v1/responses", body)["output"]
    assert item["type"] == "function_call"
    assert (item["namespace"], item["name"]) == ("mcp__council", "request_lock")
    assert json.loads(item["arguments"]) == ARGS


def _anthropic(results: int) -> dict[str, Any]:
    deferred = "The following deferred tools are available:\nmcp__council__request_lock\n"
    messages: list[dict[str, Any]] = [{"role": "user", "content": deferred + "Take the lock."}]
    for n in range(results):
        messages.append(
            {"role": "assistant", "content": [{"type": "tool_use", "id": f"t{n}", "name": "x"}]}
        )
        result = {"type": "tool_result", "tool_use_id": f"t{n}", "content": "ok"}
        messages.append({"role": "user", "content": [result]})
    tools = [{"name": "ToolSearch", "input_schema": SEARCH_SCHEMA}]
    if results:  # loaded by the search
        tools.append({"name": "mcp__council__request_lock", "input_schema": PATH_SCHEMA})
    return {
        "model": "claude-x",
        "stream": False,
        "system": "",
        "tools": tools,
        "messages": messages,
    }


def test_claude_loads_a_deferred_tool_with_its_search_then_calls_it(model: FakeModel) -> None:
    (search,) = _answer(model, "/v1/messages", _anthropic(0))["content"]
    assert search["type"] == "tool_use" and search["name"] == "ToolSearch"
    assert search["input"] == {"query": "select:mcp__council__request_lock"}
    (call,) = _answer(model, "/v1/messages", _anthropic(1))["content"]
    assert (call["name"], call["input"]) == ("mcp__council__request_lock", ARGS)


def test_qwen_calls_a_deferred_tool_through_its_tool_call(model: FakeModel) -> None:
    tools = [
        {"name": "tool_search", "parameters": SEARCH_SCHEMA},
        {"name": "tool_call", "parameters": {"properties": {"name": {}, "arguments": {}}}},
    ]
    system = '### MCP servers\n- "mcp__council__request_lock": "Ask for a lock."'
    first = _chat_call(_answer(model, "/v1/chat/completions", _chat(tools, 0, system)))
    assert first == ("tool_search", {"query": "select:mcp__council__request_lock"})
    second = _chat_call(_answer(model, "/v1/chat/completions", _chat(tools, 1, system)))
    assert second == ("tool_call", {"name": "mcp__council__request_lock", "arguments": ARGS})
