"""The fake model's Ollama API, spoken to by Ollama's own Python client (``ollama``, an
independent implementation of the wire format: NDJSON streams, pydantic response models, its
error handling) and the Ollama adapter's ``OLLAMA_HOST`` reaching it.

What this proves and what it does not: the fake answers ``/api/chat``, ``/api/generate``,
``/api/tags``, ``/api/show``, ``/api/version`` and ``HEAD /`` the way a real Ollama client
parses them, and the adapter's ``host`` option is an ``OLLAMA_HOST`` a client resolves to that
server. The ``ollama`` binary itself is not installable here, so ``ollama run`` against the
fake (its heartbeat, ``/api/show``, streamed ``/api/generate``, the text it prints) is not run;
the adapter's parsing of that text is tested on the shapes its Go source prints
(``tests/adapters/test_adapter_ollama.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import ollama
import pytest

from adapters.ollama import OllamaAdapter
from orchestrator.adapter import AdapterRequest
from orchestrator.testing.fake_model import (
    FakeModel,
    FinalText,
    RateLimited,
    Unauthorized,
    WriteFile,
)
from tests.support.timing import patience

ANSWER = "The diff renames one function."
WRITE_TOOL = {
    "type": "function",
    "function": {
        "name": "write_file",
        "description": "Write a file.",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
    },
}


@pytest.fixture
def model() -> Iterator[FakeModel]:
    with FakeModel([FinalText(ANSWER)]) as server:
        yield server


@pytest.fixture
def api(model: FakeModel) -> Iterator[ollama.Client]:
    with closing(ollama.Client(host=model.base_url)) as talking:
        yield talking


def client(model: FakeModel) -> closing[ollama.Client]:
    return closing(ollama.Client(host=model.base_url))


def test_ollama_run_s_calls_heartbeat_show_and_a_streamed_generate(
    model: FakeModel, api: ollama.Client
) -> None:
    # What `ollama run MODEL PROMPT` asks, in order (cmd/cmd.go: checkServerHeartbeat,
    # showOrPullModel, generate).
    with urllib.request.urlopen(urllib.request.Request(model.base_url, method="HEAD")) as head:
        assert head.status == 200
    shown = api.show("llama3.2")
    assert shown.capabilities is not None and "completion" in shown.capabilities

    chunks = list(api.generate(model="llama3.2", prompt="Explain it.", stream=True))

    assert "".join(chunk.response for chunk in chunks) == ANSWER
    last = chunks[-1]
    assert last.done and not any(chunk.done for chunk in chunks[:-1])
    assert (last.prompt_eval_count, last.eval_count) == (100, 20)
    assert last.eval_duration and last.context
    assert [r.answer for r in model.requests] == ["heartbeat", "show", "text"]
    assert {r.protocol for r in model.requests} == {"ollama"}


def test_generate_and_chat_without_streaming(model: FakeModel, api: ollama.Client) -> None:
    generated = api.generate(model="llama3.2", prompt="Explain it.", stream=False)
    chatted = api.chat(
        model="llama3.2", messages=[{"role": "user", "content": "Explain it."}], stream=False
    )

    assert generated.response == ANSWER and generated.done
    assert chatted.message.content == ANSWER and chatted.message.role == "assistant"
    assert chatted.eval_count == 20
    # A request without tools is Ollama's conversation, never a side call.
    assert [r.side for r in model.requests] == [False, False]


def test_chat_streams_a_tool_call_then_the_final_text() -> None:
    script = [WriteFile("hello.txt", "hi\n"), FinalText("Wrote it.")]
    asked = [{"role": "user", "content": "Working directory: /work/repo\nWrite hello.txt."}]
    with FakeModel(script) as model, client(model) as api:
        first = list(api.chat(model="qwen3", messages=asked, tools=[WRITE_TOOL], stream=True))
        calls = [call for chunk in first for call in chunk.message.tool_calls or []]
        assert [call.function.name for call in calls] == ["write_file"]
        assert calls[0].function.arguments == {"path": "/work/repo/hello.txt", "content": "hi\n"}

        history = [
            *asked,
            {"role": "assistant", "content": "", "tool_calls": [calls[0].model_dump()]},
            {"role": "tool", "content": "written", "tool_name": "write_file"},
        ]
        second = list(api.chat(model="qwen3", messages=history, tools=[WRITE_TOOL], stream=True))

    assert "".join(chunk.message.content or "" for chunk in second) == "Wrote it."
    assert [r.answer for r in model.requests] == ["tool write_file", "text"]
    assert [r.turn for r in model.requests] == [0, 1]


def test_tags_and_version(model: FakeModel, api: ollama.Client) -> None:
    listed = api.list()
    assert [m.model for m in listed.models] == ["fake-model:latest"]
    with urllib.request.urlopen(model.base_url + "/api/version") as answered:
        assert b'"version"' in answered.read()
    with urllib.request.urlopen(model.base_url) as running:
        assert running.read() == b"Ollama is running"


def test_a_429_and_a_401_are_the_clients_response_errors() -> None:
    limit = RateLimited(1, reset_after=3, reset_headers=True)
    with FakeModel([limit, FinalText("ok")]) as model, client(model) as api:
        with pytest.raises(ollama.ResponseError) as limited:
            list(api.generate(model="m", prompt="hi", stream=True))
        assert limited.value.status_code == 429 and "usage limit" in limited.value.error
        # The gate served its one 429: the retry is answered.
        assert api.generate(model="m", prompt="hi", stream=False).response == "ok"

    with (
        FakeModel([Unauthorized()]) as model,
        client(model) as api,
        pytest.raises(ollama.ResponseError) as refused,
    ):
        api.chat(model="m", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 401 and refused.value.error == "unauthorized"


def test_the_adapters_host_option_is_an_ollama_host_that_reaches_the_fake(
    model: FakeModel, tmp_path: Path
) -> None:
    # The adapter hands its `host` to `ollama run` as OLLAMA_HOST (host:port, no scheme).
    host = f"127.0.0.1:{model.port}"
    spec = OllamaAdapter({"model": "llama3.2", "host": host}).build_command(
        AdapterRequest(prompt="Explain it.", workdir=tmp_path, home=tmp_path)
    )
    assert spec.env["OLLAMA_HOST"] == host

    # A separate process with exactly that OLLAMA_HOST, whose Ollama client reads it the way
    # Ollama's own tools do (no host given in code), reaches the fake.
    program = "import ollama; print(ollama.generate(model='llama3.2', prompt='hi').response)"
    env = {**os.environ, **spec.env}
    done = subprocess.run(
        [sys.executable, "-c", program],
        env=env,
        capture_output=True,
        text=True,
        timeout=patience(30),
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ANSWER
    assert [r.path for r in model.requests] == ["/api/generate"]
