"""The generic command adapter: presets checked, commands built, jsonl/json/text classified."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.command import CommandAdapter
from orchestrator.adapter import (
    Adapter,
    AdapterRequest,
    AgentEvent,
    EventKind,
    OutcomeKind,
    ProcessResult,
)
from orchestrator.config import adapter_entry
from orchestrator.errors import AdapterError
from orchestrator.plugins.host import load_plugins
from orchestrator.runner.cli_run import CliRun, run_cli


def request(tmp_path: Path, prompt: str = "do it", model: str | None = None) -> AdapterRequest:
    return AdapterRequest(
        prompt=prompt, workdir=tmp_path / "work", home=tmp_path / "home", model=model
    )


def python_cli(source: str, **preset: Any) -> CommandAdapter:
    """A preset whose CLI is a short Python program; it gets the prompt as its argument."""
    return CommandAdapter({"binary": sys.executable, "args": ["-c", source, "{prompt}"], **preset})


async def run(adapter: Adapter, tmp_path: Path, prompt: str = "do it") -> CliRun:
    (tmp_path / "work").mkdir(exist_ok=True)
    return await run_cli(adapter, request(tmp_path, prompt), log_dir=tmp_path / "logs")


def classify(adapter: CommandAdapter, lines: list[str], exit_code: int = 0) -> Any:
    events = [event for line in lines for event in adapter.parse_line(line, "stdout")]
    return adapter.classify(ProcessResult(exit_code=exit_code), events)


# -- presets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "problem"),
    [
        ({}, "option 'binary': Field required"),
        ({"binary": "x", "argz": []}, "unknown option 'argz'"),
        ({"binary": "x", "args": ["{promt}"]}, "unknown placeholder {promt}"),
        ({"binary": "x", "args": ["--go"]}, "args must contain {prompt}"),
        ({"binary": "x", "model_args": ["--model"]}, "model_args must contain {model}"),
        ({"binary": "x", "resume_args": ["{prompt}"]}, "resume_args must contain {session_id}"),
        ({"binary": "x", "args": ["{session_id}", "{prompt}"]}, "unknown placeholder"),
        ({"binary": "x", "output": "xml"}, "option 'output'"),
        ({"binary": "x", "success_pattern": "(unclosed"}, "option 'success_pattern'"),
        ({"binary": "x", "passthrough_env": ["NOT-A-NAME"]}, "not an environment variable"),
        ({"binary": "x", "result_key": "result"}, "need output jsonl or json"),
        ({"binary": "x", "output": "json", "result_key": "a..b"}, "not a dotted path"),
        ({"binary": " x"}, "not a usable binary name"),
    ],
)
def test_bad_presets_are_refused_naming_the_option(preset: dict[str, Any], problem: str) -> None:
    registry = load_plugins(builtins=("adapters.command",), entry_points=(), environ={}).registry
    config = adapter_entry.AdapterConfig(type="command", options=preset)
    with pytest.raises(AdapterError, match="adapter 'mycli' \\(type 'command'\\)") as caught:
        registry.create("mycli", config)
    assert problem in str(caught.value)


def test_placeholders_are_filled_in_one_pass(tmp_path: Path) -> None:
    adapter = CommandAdapter(
        {"binary": "cli", "args": ["--cwd={workdir}", "-p", "{prompt}"], "env": {"A": "1"}}
    )
    prompt = "literal {workdir} and {model} stay; $(rm -rf /)"
    spec = adapter.build_command(request(tmp_path, prompt))
    assert spec.argv == ["cli", f"--cwd={tmp_path / 'work'}", "-p", prompt]
    assert spec.env == {"A": "1"} and spec.stdin is None


def test_model_arguments_appear_only_with_a_model(tmp_path: Path) -> None:
    adapter = CommandAdapter({"binary": "cli", "model_args": ["-m", "{model}"]})
    assert adapter.build_command(request(tmp_path)).argv == ["cli", "do it"]
    assert adapter.build_command(request(tmp_path, model="big")).argv == [
        "cli",
        "-m",
        "big",
        "do it",
    ]
    positional = CommandAdapter({"binary": "ollama", "args": ["run", "{model}", "{prompt}"]})
    assert positional.can_choose_model
    with pytest.raises(AdapterError, match="uses \\{model\\} but no model is configured"):
        positional.build_command(request(tmp_path))


def test_capabilities_follow_the_preset_per_instance(tmp_path: Path) -> None:
    plain = CommandAdapter({"binary": "cli"})
    rich = CommandAdapter(
        {
            "binary": "cli",
            "output": "jsonl",
            "resume_args": ["--resume", "{session_id}", "{prompt}"],
            "passthrough_env": ["CLI_API_KEY"],
            "edits_files": False,
        }
    )
    assert (plain.streams_json, plain.can_resume, plain.passthrough_env) == (False, False, ())
    assert (rich.streams_json, rich.can_resume, rich.passthrough_env) == (
        True,
        True,
        ("CLI_API_KEY",),
    )
    assert not rich.edits_files and CommandAdapter.can_resume is False
    spec = rich.resume_command(request(tmp_path, "more"), "sess-9")
    assert spec.argv == ["cli", "--resume", "sess-9", "more"]
    with pytest.raises(AdapterError, match="cannot resume"):
        plain.resume_command(request(tmp_path), "sess-9")
    assert rich.version_command() == ["cli", "--version"]
    assert CommandAdapter({"binary": "cli"}, executable="/opt/cli").binary == "/opt/cli"


# -- text output -------------------------------------------------------------------------------


async def test_text_preset_runs_and_reports_what_it_said(tmp_path: Path) -> None:
    adapter = python_cli("import sys; print('thinking'); print('answer:', sys.argv[1])")
    result = await run(adapter, tmp_path, "two words")
    assert result.outcome.kind is OutcomeKind.SUCCEEDED
    assert result.outcome.message == "thinking\nanswer: two words"


async def test_text_success_pattern_is_required_when_set(tmp_path: Path) -> None:
    source = "import sys; print('working'); print(sys.argv[1])"
    adapter = python_cli(source, success_pattern="^DONE")
    done = await run(adapter, tmp_path, "DONE: shipped")
    assert done.outcome.kind is OutcomeKind.SUCCEEDED and done.outcome.message == "DONE: shipped"
    silent = await run(adapter, tmp_path, "gave up")
    assert (
        silent.outcome.kind is OutcomeKind.FAILED and "no output matched" in silent.outcome.message
    )


def test_text_error_and_auth_patterns_beat_exit_zero() -> None:
    adapter = CommandAdapter(
        {"binary": "aider", "auth_pattern": "AuthenticationError", "error_pattern": "^Error:"}
    )
    failed = classify(adapter, ["Error: model not found"])
    assert failed.kind is OutcomeKind.FAILED and failed.message == "Error: model not found"
    auth = classify(adapter, ["litellm.AuthenticationError: bad key"])
    assert auth.kind is OutcomeKind.AUTH_REQUIRED


@pytest.mark.parametrize(
    ("line", "retry_at", "retry_after"),
    [
        (
            "429 rate limited; resets at 2031-01-02T03:04:05Z",
            datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC),
            None,
        ),
        ("429 rate limited; resets at 1950000000", datetime.fromtimestamp(1950000000, UTC), None),
        ("429 rate limited; retry in 30 seconds", None, 30.0),
        ("429 rate limited", None, None),
    ],
)
def test_rate_limit_pattern_reads_when_to_retry(
    line: str, retry_at: datetime | None, retry_after: float | None
) -> None:
    adapter = CommandAdapter(
        {
            "binary": "cli",
            "rate_limit_pattern": r"429.*?(?:resets at (?P<reset>\S+)|retry in (?P<seconds>\d+)|$)",
        }
    )
    outcome = classify(adapter, [line], exit_code=1)
    assert outcome.kind is OutcomeKind.RATE_LIMITED
    assert (outcome.retry_at, outcome.retry_after) == (retry_at, retry_after)
    assert classify(adapter, [line], exit_code=0).kind is OutcomeKind.SUCCEEDED  # it recovered


# -- jsonl output ------------------------------------------------------------------------------

JSONL = {
    "output": "jsonl",
    "result_key": "result",
    "result_when": {"type": "result"},
    "session_key": "session_id",
    "error_key": "is_error",
}
CLAUDE_LIKE = """
import json, sys
say = lambda **fields: print(json.dumps({"session_id": "abc-123", **fields}))
say(type="system", subtype="init")
say(type="assistant", result="not the final one")
say(type="result", is_error=sys.argv[1] == "fail", result="final: " + sys.argv[1])
"""


async def test_jsonl_preset_finds_the_final_result_and_session(tmp_path: Path) -> None:
    adapter = python_cli(CLAUDE_LIKE, **JSONL)
    done = await run(adapter, tmp_path, "ok")
    assert done.outcome.kind is OutcomeKind.SUCCEEDED
    assert (done.outcome.message, done.native_session_id) == ("final: ok", "abc-123")
    failed = await run(adapter, tmp_path, "fail")
    assert failed.outcome.kind is OutcomeKind.FAILED and failed.outcome.message == "final: fail"


def test_jsonl_without_a_final_result_failed_even_with_exit_zero() -> None:
    adapter = CommandAdapter({"binary": "cli", **JSONL})
    outcome = classify(adapter, ['{"type": "system", "session_id": "s"}', "garbage"])
    assert outcome.kind is OutcomeKind.FAILED and "no final result" in outcome.message
    assert outcome.native_session_id == "s"


def test_jsonl_values_of_other_types_are_kept_as_json() -> None:
    adapter = CommandAdapter({"binary": "cli", "output": "jsonl", "result_key": "item.0.text"})
    outcome = classify(adapter, [json.dumps({"item": [{"text": {"parts": [1, 2]}}]})])
    assert outcome.kind is OutcomeKind.SUCCEEDED and outcome.message == '{"parts": [1, 2]}'


# -- json output -------------------------------------------------------------------------------

PRETTY = """
import json, sys
print("warming up")
print(json.dumps({"session_id": "g-1", "response": "answer to " + sys.argv[1],
                  "stats": {"tokens": 12}, "error": None}, indent=2))
"""


async def test_json_preset_reads_a_pretty_printed_document(tmp_path: Path) -> None:
    adapter = python_cli(
        PRETTY, output="json", result_key="response", session_key="session_id", error_key="error"
    )
    result = await run(adapter, tmp_path, "everything")
    assert result.outcome.kind is OutcomeKind.SUCCEEDED
    assert result.outcome.message == "answer to everything"
    assert result.outcome.native_session_id == "g-1"


def test_json_document_on_one_line_and_its_error_key() -> None:
    adapter = CommandAdapter(
        {"binary": "cli", "output": "json", "result_key": "response", "error_key": "error"}
    )
    ok = classify(adapter, ['{"response": "fine", "error": null}'])
    assert ok.kind is OutcomeKind.SUCCEEDED and ok.message == "fine"
    failed = classify(adapter, ['{"response": "", "error": {"message": "quota"}}'])
    assert failed.kind is OutcomeKind.FAILED
    whole = CommandAdapter({"binary": "cli", "output": "json"})
    assert classify(whole, ['{"a": 1}']).message == '{"a": 1}'


async def test_prompt_through_stdin(tmp_path: Path) -> None:
    adapter = CommandAdapter(
        {
            "binary": sys.executable,
            "args": ["-c", "import sys; print('got ' + sys.stdin.read())"],
            "stdin_prompt": True,
        }
    )
    result = await run(adapter, tmp_path, "via stdin")
    assert result.outcome.message == "got via stdin"
    assert all("via stdin" not in arg for arg in result.argv)


def test_stderr_lines_are_raw_but_still_matched() -> None:
    adapter = CommandAdapter({"binary": "cli", "auth_pattern": "401"})
    events = adapter.parse_line("HTTP 401 Unauthorized", "stderr")
    assert [event.kind for event in events] == [EventKind.ERROR, EventKind.RAW]
    assert events[0].error_kind == "auth"
    assert adapter.parse_line("   ", "stdout") == []
    assert isinstance(adapter.parse_line("plain", "stdout")[0], AgentEvent)
