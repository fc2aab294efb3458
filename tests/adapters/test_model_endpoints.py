"""Where each built-in adapter's model is (``Adapter.model_endpoints`` read by
``orchestrator.runner.endpoints``): what ``network: model`` allows, and which endpoint on
the machine's loopback is relayed into the CLI's own network."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.aider import AiderAdapter
from adapters.claude_code import ClaudeCodeAdapter
from adapters.codex import CodexAdapter
from adapters.gemini import GeminiAdapter
from adapters.ollama import OllamaAdapter
from adapters.opencode import OpencodeAdapter
from adapters.qwen import QwenAdapter
from orchestrator.adapter import Adapter, AdapterRequest
from orchestrator.runner.endpoints import Endpoint, model_endpoints, parse_endpoint


def request(model: str | None = None) -> AdapterRequest:
    return AdapterRequest(prompt="p", workdir=Path("/w"), home=Path("/h"), model=model)


def pairs(
    adapter: Adapter, model: str | None = None, env: dict[str, str] | None = None
) -> set[tuple[str, int, bool]]:
    return {(e.host, e.port, e.local) for e in model_endpoints(adapter, request(model), env)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "https://api.anthropic.com",
            Endpoint("https://api.anthropic.com", "api.anthropic.com", 443, False),
        ),
        ("http://127.0.0.1:8080/v1", Endpoint("http://127.0.0.1:8080/v1", "127.0.0.1", 8080, True)),
        ("http://LOCALHOST:9", Endpoint("http://LOCALHOST:9", "localhost", 9, True)),
        ("[::1]:11434", Endpoint("[::1]:11434", "::1", 11434, True)),
        ("0.0.0.0:11434", Endpoint("0.0.0.0:11434", "0.0.0.0", 11434, True)),
        ("gpu-box:11434", Endpoint("gpu-box:11434", "gpu-box", 11434, False)),
        ("http://192.0.2.7", Endpoint("http://192.0.2.7", "192.0.2.7", 80, False)),
        ("api.openai.com", Endpoint("api.openai.com", "api.openai.com", 443, False)),
    ],
)
def test_an_endpoint_is_read_as_host_port_and_whether_it_is_loopback(
    value: str, expected: Endpoint
) -> None:
    assert parse_endpoint(value) == expected


@pytest.mark.parametrize("value", ["", "  ", "http://", "http://host:notaport"])
def test_what_names_no_host_is_no_endpoint(value: str) -> None:
    assert parse_endpoint(value) is None


def test_each_cli_reaches_its_vendors_api() -> None:
    assert pairs(ClaudeCodeAdapter()) == {
        ("api.anthropic.com", 443, False),
        ("platform.claude.com", 443, False),
    }
    assert ("chatgpt.com", 443, False) in pairs(CodexAdapter())
    assert ("generativelanguage.googleapis.com", 443, False) in pairs(GeminiAdapter())
    assert pairs(QwenAdapter()) == {("api.openai.com", 443, False)}
    assert pairs(QwenAdapter({"auth_type": "anthropic"})) == {("api.anthropic.com", 443, False)}
    assert pairs(OpencodeAdapter(), "anthropic/claude-sonnet-4-5") == {
        ("api.anthropic.com", 443, False)
    }
    assert pairs(AiderAdapter(), "deepseek/deepseek-chat") == {("api.deepseek.com", 443, False)}
    unnamed = pairs(AiderAdapter(), "gpt-4o")  # aider picks the provider from its keys
    assert ("api.openai.com", 443, False) in unnamed and (
        "api.anthropic.com",
        443,
        False,
    ) in unnamed


def test_an_endpoint_of_the_options_or_the_environment_joins_them() -> None:
    local = pairs(ClaudeCodeAdapter({"base_url": "http://127.0.0.1:8080"}))
    assert ("127.0.0.1", 8080, True) in local
    env = {"ANTHROPIC_BASE_URL": "http://localhost:9000", "PATH": "/bin", "OLLAMA_HOST": "gpu:1"}
    found = pairs(ClaudeCodeAdapter(), env=env)
    assert {("localhost", 9000, True), ("gpu", 1, False)} <= found
    assert ("bin", 443, False) not in found
    assert pairs(OpencodeAdapter({"provider": "lab", "base_url": "http://10.1.2.3:8000/v1"})) == {
        ("10.1.2.3", 8000, False)
    }


def test_ollama_is_on_this_machine_unless_its_host_says_otherwise() -> None:
    assert pairs(OllamaAdapter()) == {("127.0.0.1", 11434, True)}
    assert pairs(OllamaAdapter({"host": "gpu-box"})) == {("gpu-box", 11434, False)}
    assert pairs(OllamaAdapter({"host": "http://[::1]:5"})) == {("::1", 5, True)}
