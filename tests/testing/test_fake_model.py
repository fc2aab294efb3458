"""The fake model over real HTTP: each wire protocol's replies (streamed and not), the step read
from the conversation, 429s with and without reset headers, 401s, key checks, the records."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.testing.fake_model import (
    EditFile,
    FakeModel,
    FinalText,
    RateLimited,
    Unauthorized,
    WriteFile,
)
from tests.support.timing import patience

WRITE_SCRIPT = [WriteFile("hello.txt", "hi\n"), FinalText("Wrote it.")]
CWD = "/work/repo"


@pytest.fixture
def model() -> Iterator[FakeModel]:
    with FakeModel(WRITE_SCRIPT) as server:
        yield server


def post(
    model: FakeModel, path: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(
        model.base_url + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=patience(10)) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read().decode()


def sse_data(body: str) -> list[Any]:
    """The ``data:`` payloads of an event stream, JSON-decoded (``[DONE]`` kept as text)."""
    found = []
    for line in body.splitlines():
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            found.append(payload if payload == "[DONE]" else json.loads(payload))
    return found


# -- one request body per protocol, at a given point of the conversation ---------------------


def anthropic_body(results: int = 0, stream: bool = True) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Create hello.txt"}]
    for n in range(results):
        call = {"type": "tool_use", "id": f"t{n}", "name": "Write", "input": {}}
        messages.append({"role": "assistant", "content": [call]})
        result = {"type": "tool_result", "tool_use_id": f"t{n}", "content": "ok"}
        messages.append({"role": "user", "content": [result]})
    schema = {
        "type": "object",
        "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["file_path", "content"],
    }
    return {
        "model": "claude-sonnet-4-5",
        "stream": stream,
        "system": [{"type": "text", "text": f"Primary working directory: {CWD}"}],
        "tools": [
            {"name": "Write", "input_schema": schema},
            {"name": "Read", "input_schema": {"properties": {"file_path": {"type": "string"}}}},
            {"name": "Edit", "input_schema": {"properties": {"file_path": {}, "old_string": {}}}},
        ],
        "messages": messages,
    }


def chat_body(results: int = 0, stream: bool = True, tools: bool = True) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": f"I'm currently working in the directory: {CWD}"},
        {"role": "user", "content": "Create hello.txt"},
    ]
    for n in range(results):
        call = {"id": f"c{n}", "type": "function", "function": {"name": "write_file"}}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"c{n}", "content": "ok"})
    parameters = {"properties": {"file_path": {"type": "string"}, "content": {"type": "string"}}}
    body: dict[str, Any] = {
        "model": "fake-model",
        "stream": stream,
        "stream_options": {"include_usage": True},
        "messages": messages,
    }
    if tools:
        function = {"name": "write_file", "parameters": parameters}
        body["tools"] = [{"type": "function", "function": function}]
    return body


def responses_body(results: int = 0) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}
    ]
    for n in range(results):
        items.append({"type": "custom_tool_call", "call_id": f"c{n}", "name": "apply_patch"})
        items.append({"type": "custom_tool_call_output", "call_id": f"c{n}", "output": "ok"})
    return {
        "model": "gpt-5.5",
        "stream": True,
        "instructions": "You are codex.",
        "tools": [
            {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}},
            {"type": "function", "name": "exec_command", "parameters": {"properties": {"cmd": {}}}},
        ],
        "input": items,
    }


def gemini_body(results: int = 0) -> dict[str, Any]:
    contents: list[dict[str, Any]] = [{"role": "user", "parts": [{"text": "Create hello.txt"}]}]
    for _ in range(results):
        contents.append({"role": "model", "parts": [{"functionCall": {"name": "write_file"}}]})
        response = {"functionResponse": {"name": "write_file", "response": {"output": "ok"}}}
        contents.append({"role": "user", "parts": [response]})
    declaration = {
        "name": "write_file",
        "parametersJsonSchema": {"properties": {"file_path": {}, "content": {}}},
    }
    return {
        "contents": contents,
        "systemInstruction": {"parts": [{"text": "You are gemini."}]},
        "tools": [{"functionDeclarations": [declaration]}],
    }


GEMINI_STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"


# -- each protocol ---------------------------------------------------------------------------


def test_anthropic_streams_the_write_as_a_write_tool_call_with_an_absolute_path(
    model: FakeModel,
) -> None:
    status, headers, body = post(model, "/v1/messages?beta=true", anthropic_body())

    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = sse_data(body)
    assert [e["type"] for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[1]["content_block"]["name"] == "Write"
    arguments = json.loads(events[2]["delta"]["partial_json"])
    assert arguments == {"file_path": f"{CWD}/hello.txt", "content": "hi\n"}
    assert events[4]["delta"]["stop_reason"] == "tool_use"


def test_anthropic_answers_the_final_text_once_the_tool_result_is_in_the_history(
    model: FakeModel,
) -> None:
    status, _, body = post(model, "/v1/messages", anthropic_body(results=1, stream=False))

    assert status == 200
    message = json.loads(body)
    assert message["content"] == [{"type": "text", "text": "Wrote it."}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["output_tokens"] > 0


def test_an_edit_reads_first_where_a_read_tool_is_offered(model: FakeModel) -> None:
    model.set_script([EditFile("notes.txt", "old", "new"), FinalText("Edited.")])

    first = sse_data(post(model, "/v1/messages", anthropic_body(results=0))[2])
    second = sse_data(post(model, "/v1/messages", anthropic_body(results=1))[2])

    assert first[1]["content_block"]["name"] == "Read"
    assert second[1]["content_block"]["name"] == "Edit"
    assert json.loads(second[2]["delta"]["partial_json"])["old_string"] == "old"


def test_responses_sends_codex_a_freeform_apply_patch(model: FakeModel) -> None:
    status, _, body = post(model, "/v1/responses", responses_body())

    assert status == 200
    events = sse_data(body)
    assert events[-1]["type"] == "response.completed"
    item = next(e["item"] for e in events if e["type"] == "response.output_item.done")
    assert item["type"] == "custom_tool_call" and item["name"] == "apply_patch"
    assert item["input"] == "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n"

    after = sse_data(post(model, "/v1/responses", responses_body(results=1))[2])
    done = next(e["item"] for e in after if e["type"] == "response.output_item.done")
    assert done["type"] == "message" and done["content"][0]["text"] == "Wrote it."


def test_chat_completions_streams_a_tool_call_then_usage_then_done(model: FakeModel) -> None:
    status, _, body = post(model, "/v1/chat/completions", chat_body())

    assert status == 200
    chunks = sse_data(body)
    call = chunks[0]["choices"][0]["delta"]["tool_calls"][0]
    assert call["function"]["name"] == "write_file"
    assert json.loads(call["function"]["arguments"])["file_path"] == f"{CWD}/hello.txt"
    assert chunks[1]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[2]["usage"]["completion_tokens"] > 0  # include_usage was asked for
    assert chunks[-1] == "[DONE]"


def test_chat_completions_answers_in_one_object_when_not_streamed(model: FakeModel) -> None:
    status, headers, body = post(model, "/v1/chat/completions", chat_body(1, stream=False))

    assert status == 200 and headers["Content-Type"] == "application/json"
    reply = json.loads(body)
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"]["content"] == "Wrote it."
    assert reply["choices"][0]["finish_reason"] == "stop"


def test_gemini_streams_a_function_call_and_counts_tokens(model: FakeModel) -> None:
    status, _, body = post(model, GEMINI_STREAM, gemini_body())

    assert status == 200
    (chunk,) = sse_data(body)
    part = chunk["candidates"][0]["content"]["parts"][0]
    assert part["functionCall"]["name"] == "write_file"
    assert part["functionCall"]["args"]["content"] == "hi\n"
    assert chunk["modelVersion"] == "gemini-2.5-flash"

    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    reply = json.loads(post(model, path, gemini_body(results=1))[2])
    assert reply["candidates"][0]["content"]["parts"] == [{"text": "Wrote it."}]
    counted = post(model, "/v1beta/models/gemini-2.5-flash:countTokens", {"contents": []})
    assert counted[0] == 200 and json.loads(counted[2])["totalTokens"] > 0


def test_a_cli_without_tools_gets_search_replace_blocks_in_its_reply(model: FakeModel) -> None:
    model.set_script([WriteFile("hello.txt", "hi\n"), EditFile("a.py", "x = 1", "x = 2")])
    body = chat_body(stream=False, tools=False)
    body["messages"][0]["content"] = "Use SEARCH/REPLACE blocks. Act as an expert developer."
    # aider's few-shot examples are assistant turns too, but none is a scripted answer
    body["messages"].insert(1, {"role": "assistant", "content": "an example reply"})

    reply = json.loads(post(model, "/v1/chat/completions", body)[2])

    text = reply["choices"][0]["message"]["content"]
    assert "hello.txt\n```\n<<<<<<< SEARCH\n=======\nhi\n>>>>>>> REPLACE\n```" in text
    assert "a.py\n```\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n```" in text
    assert text.endswith("done")  # the script had no final text: one is added
    assert model.requests[-1].turn == 0 and not model.requests[-1].side


def test_a_title_request_without_tools_is_a_side_call_outside_the_script(
    model: FakeModel,
) -> None:
    model.set_script([RateLimited(None), *WRITE_SCRIPT])  # even a persistent 429 spares it
    body = chat_body(stream=False, tools=False)
    body["messages"][0]["content"] = "Generate a short title for this conversation."

    status, _, reply = post(model, "/v1/chat/completions", body)

    assert status == 200
    assert json.loads(reply)["choices"][0]["message"]["content"] == "Fake model session"
    assert model.requests[-1].side and model.requests[-1].answer == "side"


def test_the_step_comes_from_the_history_so_a_relaunch_repeats_nothing(model: FakeModel) -> None:
    for _ in range(2):
        assert sse_data(post(model, GEMINI_STREAM, gemini_body(results=0))[2])
    post(model, GEMINI_STREAM, gemini_body(results=1))
    post(model, GEMINI_STREAM, gemini_body(results=5))  # past the end: the final text again

    assert [r.answer for r in model.requests] == [
        "tool write_file",
        "tool write_file",
        "text",
        "text",
    ]
    assert [r.turn for r in model.requests] == [0, 0, 1, 5]


# -- rate limits and auth ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", anthropic_body()),
        ("/v1/responses", responses_body()),
        ("/v1/chat/completions", chat_body()),
        (GEMINI_STREAM, gemini_body()),
    ],
    ids=["anthropic", "responses", "chat", "gemini"],
)
def test_a_429_without_reset_headers_says_nothing_about_when(
    model: FakeModel, path: str, body: dict[str, Any]
) -> None:
    model.set_script([RateLimited(1), *WRITE_SCRIPT])

    status, headers, error = post(model, path, body)
    again = post(model, path, body)

    assert status == 429
    lowered = {name.lower() for name in headers}
    assert not {name for name in lowered if "retry" in name or "reset" in name}
    assert "error" in json.loads(error)
    assert again[0] == 200  # count=1: the retry goes through
    assert [r.answer for r in model.requests] == ["429", model.requests[1].answer]
    assert model.requests[1].answer.startswith("tool ")


def test_a_429_with_reset_headers_announces_when_in_each_protocols_terms(
    model: FakeModel,
) -> None:
    model.set_script([RateLimited(None, reset_after=3, reset_headers=True), *WRITE_SCRIPT])

    _, anthropic, _ = post(model, "/v1/messages", anthropic_body())
    _, openai, _ = post(model, "/v1/chat/completions", chat_body())
    _, google, google_body = post(model, GEMINI_STREAM, gemini_body())

    assert anthropic["retry-after"] == "3" and anthropic["retry-after-ms"] == "3000"
    assert anthropic["anthropic-ratelimit-requests-remaining"] == "0"
    assert anthropic["anthropic-ratelimit-requests-reset"].endswith("Z")
    assert openai["x-ratelimit-reset-requests"] == "3s"
    details = json.loads(google_body)["error"]["details"]
    assert details == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}]
    assert google["retry-after"] == "3"


def test_a_persistent_429_never_lets_the_step_through_until_the_script_changes(
    model: FakeModel,
) -> None:
    model.set_script([RateLimited(None), *WRITE_SCRIPT])
    statuses = [post(model, "/v1/chat/completions", chat_body())[0] for _ in range(4)]
    model.set_script(WRITE_SCRIPT)

    assert statuses == [429, 429, 429, 429]
    assert post(model, "/v1/chat/completions", chat_body())[0] == 200


def test_a_rate_limit_placed_later_gates_only_its_own_step(model: FakeModel) -> None:
    model.set_script([WriteFile("hello.txt", "hi\n"), RateLimited(2), FinalText("Wrote it.")])

    first = post(model, "/v1/chat/completions", chat_body(results=0))[0]
    later = [post(model, "/v1/chat/completions", chat_body(results=1))[0] for _ in range(3)]

    assert (first, later) == (200, [429, 429, 200])


@pytest.mark.parametrize(
    ("path", "body", "shape"),
    [
        ("/v1/messages", anthropic_body(), "authentication_error"),
        ("/v1/responses", responses_body(), "invalid_api_key"),
        ("/v1/chat/completions", chat_body(), "invalid_api_key"),
        (GEMINI_STREAM, gemini_body(), "UNAUTHENTICATED"),
    ],
    ids=["anthropic", "responses", "chat", "gemini"],
)
def test_unauthorized_answers_401_in_the_protocols_error_shape(
    model: FakeModel, path: str, body: dict[str, Any], shape: str
) -> None:
    model.set_script([Unauthorized(), *WRITE_SCRIPT])

    status, _, error = post(model, path, body)

    assert status == 401
    assert shape in error
    assert post(model, path, body)[0] == 401  # every time: a bad key stays bad


def test_with_an_api_key_any_other_key_gets_401_and_keys_are_masked_in_the_records() -> None:
    with FakeModel(WRITE_SCRIPT, api_key="right-key") as model:
        wrong = post(model, "/v1/messages", anthropic_body(), {"x-api-key": "wrong-key"})
        bearer = post(
            model, "/v1/chat/completions", chat_body(), {"Authorization": "Bearer right-key"}
        )
        query = post(model, GEMINI_STREAM + "&key=right-key", gemini_body())
        missing = post(model, "/v1/responses", responses_body())
        records = model.requests

    assert [wrong[0], bearer[0], query[0], missing[0]] == [401, 200, 200, 401]
    assert records[0].headers["x-api-key"] == "***"
    assert records[1].headers["authorization"] == "***"
    assert records[2].path.endswith("key=***")
    assert "right-key" not in repr(records) and "wrong-key" not in repr(records)


def test_requests_are_recorded_with_their_protocol_tools_and_answer(model: FakeModel) -> None:
    post(model, "/v1/chat/completions", chat_body())
    status, _, _ = post(model, "/v2/unknown", {})

    first, unknown = model.requests
    assert (first.method, first.protocol, first.status) == ("POST", "chat", 200)
    assert first.tools == ("write_file",)
    assert first.answer == "tool write_file" and first.turn == 0
    assert first.body["model"] == "fake-model"
    assert (status, unknown.protocol, unknown.answer) == (404, None, "not found")
    assert model.conversation_requests() == [first]
