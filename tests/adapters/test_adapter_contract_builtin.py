"""The shared adapter contract, run over command presets, scripted, the fake and the example plugin.

The example plugin (``examples/custom_adapter``) is loaded the way an installed plugin is,
through an entry point handed to ``load_plugins``, without installing anything: the entry
point's ``load`` imports the module from its file.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tomllib
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.command import CommandAdapter
from adapters.scripted import Scripted
from orchestrator.adapter import (
    Adapter,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    EventKind,
    Outcome,
    OutcomeKind,
    ProcessResult,
    Stream,
)
from orchestrator.config import adapter_entry
from orchestrator.plugins import host as plugins
from orchestrator.runner.cli_run import run_cli
from orchestrator.testing.adapter_contract import AdapterContract, LineHints
from orchestrator.testing.fake_cli import FakeAdapter
from tests.support.adapter_replay import TRANSCRIPTS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_adapter"


@dataclass
class FileEntryPoint:
    """An entry point whose module is loaded from a file, as if its distribution were installed."""

    name: str
    value: str
    path: Path

    def load(self) -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(self.value, self.path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[self.value] = module
        spec.loader.exec_module(module)
        return module


def example_entry_point() -> FileEntryPoint:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    ((name, value),) = project["project"]["entry-points"]["cli_council"].items()
    return FileEntryPoint(name, value, EXAMPLE / f"{value}.py")


@pytest.fixture
def example_plugins(monkeypatch: pytest.MonkeyPatch) -> plugins.PluginHost:
    entry_point = example_entry_point()
    monkeypatch.delitem(sys.modules, entry_point.value, raising=False)
    return plugins.load_plugins(
        builtins=("adapters.command", "adapters.scripted"), entry_points=[entry_point], environ={}
    )


class TestCommandText(AdapterContract):
    @pytest.fixture
    def adapter(self) -> Adapter:
        preset = {
            "binary": "mycli",
            "args": ["--print", "{prompt}", "--cwd={workdir}"],
            "success_pattern": "^DONE",
            "rate_limit_pattern": "429",
            "auth_pattern": "401",
        }
        return CommandAdapter(preset)


class TestCommandJsonl(AdapterContract):
    @pytest.fixture
    def adapter(self) -> Adapter:
        preset = {
            "binary": "/opt/cli/bin/agent",
            "args": ["-p", "{prompt}", "--output-format", "stream-json"],
            "model_args": ["--model", "{model}"],
            "resume_args": ["--resume", "{session_id}", "-p", "{prompt}"],
            "output": "jsonl",
            "result_key": "result",
            "result_when": {"type": "result"},
            "session_key": "session_id",
            "error_key": "is_error",
            "passthrough_env": ["AGENT_API_KEY"],
        }
        return CommandAdapter(preset)


class TestCommandJsonStdin(AdapterContract):
    @pytest.fixture
    def adapter(self) -> Adapter:
        preset = {
            "binary": "tool",
            "args": ["run", "--json"],
            "stdin_prompt": True,
            "output": "json",
            "result_key": "response",
        }
        return CommandAdapter(preset)


class TestScripted(AdapterContract):
    @pytest.fixture
    def adapter(self) -> Adapter:
        return Scripted({"persona": "careful", "delay": 0})


class TestFakeAdapter(AdapterContract):
    @pytest.fixture
    def adapter(self) -> Adapter:
        return FakeAdapter()


class TestExamplePlugin(AdapterContract):
    @pytest.fixture
    def adapter(self, example_plugins: plugins.PluginHost) -> Adapter:
        config = adapter_entry.AdapterConfig(type="echo-cli", options={"prefix": "parrot: "})
        return example_plugins.registry.create("parrot", config)


def test_the_example_plugin_registers_through_its_entry_point(
    example_plugins: plugins.PluginHost,
) -> None:
    registry = example_plugins.registry
    assert registry.names() == ["command", "echo-cli", "scripted"]
    info = registry.plugin_of("echo-cli")
    assert (info.name, info.origin) == ("echo_cli", "entry point council_echo_adapter")


async def test_the_example_plugin_runs_for_real(
    example_plugins: plugins.PluginHost, tmp_path: Path
) -> None:
    config = adapter_entry.AdapterConfig(type="echo-cli", options={"prefix": "parrot: "})
    adapter = example_plugins.registry.create("parrot", config)
    request = AdapterRequest(prompt="hello $(whoami)", workdir=tmp_path, home=tmp_path / "home")
    run = await run_cli(adapter, request, log_dir=tmp_path / "logs")
    assert run.outcome.kind is OutcomeKind.SUCCEEDED
    assert run.outcome.message == "parrot: hello $(whoami)"


class Sloppy(Adapter):
    """Everything the contract exists to catch."""

    name = "sloppy"
    executable = "cli"

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        return CommandSpec(argv=["sh", "-c", f"cli --print {request.prompt}"])

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        message = json.loads(line)  # raises on garbage, recursion errors on deep nesting
        return [AgentEvent(kind=EventKind.MESSAGE, text=message["text"])]

    def classify(self, result: ProcessResult, events: Sequence[AgentEvent]) -> Outcome:
        return Outcome(kind=OutcomeKind.SUCCEEDED if result.exit_code == 0 else OutcomeKind.FAILED)


def test_the_contract_catches_a_sloppy_adapter(tmp_path: Path) -> None:
    contract, adapter = AdapterContract(), Sloppy()

    def make_request(prompt: str = "x", **changes: object) -> AdapterRequest:
        return AdapterRequest(prompt=prompt, workdir=tmp_path / "w", home=tmp_path / "h")

    with pytest.raises(AssertionError, match="a shell"):
        contract.test_build_command_keeps_the_prompt_whole(adapter, make_request, "a; b")
    with pytest.raises(json.JSONDecodeError):
        contract.test_parse_line_never_raises(adapter, "{", "stdout")
    with pytest.raises(RecursionError):
        contract.test_parse_line_never_raises(adapter, "[" * 100_000, "stdout")
    with pytest.raises(AssertionError):
        contract.test_killed_by_a_signal_is_crashed(adapter, [])
    with pytest.raises(AssertionError):
        contract.test_exit_zero_is_not_success_when_the_cli_reported_an_error(adapter)
    with pytest.raises(AssertionError):
        contract.test_limits_and_cancellation_win_over_output(adapter)


def _registered_builtin_names() -> list[str]:
    registry = plugins.load_plugins(entry_points=[], environ={}).registry
    return [name for name in registry.names() if name != "command"]  # command needs a preset


def test_every_built_in_adapter_is_registered() -> None:
    assert set(_registered_builtin_names()) >= {
        "aider",
        "claude_code",
        "codex",
        "gemini",
        "ollama",
        "opencode",
        "qwen",
        "scripted",
    }


class TestEveryRegisteredBuiltin(AdapterContract):
    """Every built-in adapter the plugin host registers, with its default options, fed random
    lines shaped like its CLI's and its CLI's recorded output with wrong-typed fields."""

    @pytest.fixture(params=_registered_builtin_names())
    def builtin(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def adapter(self, builtin: str) -> Adapter:
        registry = plugins.load_plugins(entry_points=[], environ={}).registry
        return registry.create(builtin)

    @pytest.fixture
    def line_hints(self, builtin: str) -> LineHints:
        return LINE_HINTS.get(builtin, LineHints())

    @pytest.fixture
    def recordings(self, builtin: str) -> Path | None:
        cli = RECORDED.get(builtin)
        return TRANSCRIPTS / cli if cli is not None else None


_CLAUDE_KEYS = [
    "subtype", "message", "result", "usage", "is_error", "session_id", "permission_denials",
    "api_error_status", "total_cost_usd", "rate_limit_info", "error", "error_status",
    "retry_delay_ms", "tools", "permission_mode",
]  # fmt: skip
LINE_HINTS = {
    "aider": LineHints(
        prefixes=["Tokens: ", "litellm.", "Applied edit to ", "Aider v", "Retrying in "]
    ),
    "claude_code": LineHints(
        json_types=["system", "assistant", "user", "result", "rate_limit_event"],
        json_keys=_CLAUDE_KEYS,
    ),
    "qwen": LineHints(json_types=["system", "assistant", "user", "result"], json_keys=_CLAUDE_KEYS),
    "codex": LineHints(
        json_types=[
            "thread.started", "turn.started", "item.started", "item.completed",
            "turn.completed", "turn.failed", "error",
        ],
        json_keys=["thread_id", "item", "usage", "error", "message"],
    ),
    "gemini": LineHints(
        json_types=["init", "message", "tool_use", "tool_result", "error", "result"],
        json_keys=[
            "session_id", "role", "content", "delta", "tool_name", "parameters", "status",
            "output", "error", "stats", "severity", "message",
        ],
    ),
    "opencode": LineHints(
        json_types=["step_start", "text", "tool_use", "step_finish", "error"],
        json_keys=["sessionID", "part", "error", "timestamp"],
    ),
    "ollama": LineHints(
        prefixes=["Error: ", "prompt eval count: ", "eval count: ", "total duration: "]
    ),
}  # fmt: skip
# The recorded output of the real CLIs (tests/support/transcripts/<cli>), by adapter.
RECORDED = {
    "aider": "aider",
    "claude_code": "claude",
    "codex": "codex",
    "gemini": "gemini",
    "opencode": "opencode",
    "qwen": "qwen",
}
