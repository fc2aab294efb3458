"""opencode adapter: golden tests on the real output of opencode 1.18.33, plus its command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.opencode import OpencodeAdapter
from orchestrator.adapter import AdapterRequest, EventKind, OutcomeKind, ProcessResult
from orchestrator.errors import AdapterError
from orchestrator.runner.config_merge import render
from tests.support.adapter_replay import (
    cases,
    replay,
)

CLI = "opencode"
EXPECTED = {
    "auth_error": OutcomeKind.AUTH_REQUIRED,
    "ratelimit": OutcomeKind.RATE_LIMITED,
    "ratelimit_once": OutcomeKind.SUCCEEDED,
    "resume.run1": OutcomeKind.SUCCEEDED,
    "resume.run2": OutcomeKind.SUCCEEDED,
    "stream_success": OutcomeKind.SUCCEEDED,
}
TRANSCRIPTS = Path(__file__).parents[1] / "support" / "transcripts" / CLI
LOCAL = {"provider": "localmodel"}


def request(
    prompt: str = "Create the file hello.txt as scripted.", **extra: object
) -> AdapterRequest:
    return AdapterRequest(prompt=prompt, workdir=Path("/repo"), home=Path("/home/s1"), **extra)


# Added after these recordings were made: the log on stderr, where opencode says each failed
# request (its own 429 retries); it changes nothing on stdout.
LOG_FLAGS = ["--print-logs", "--log-level", "ERROR"]


def argv_tail(case: str) -> list[str]:
    """The recorded argv after the binary, with the log flags the adapter now adds."""
    tail = list(json.loads((TRANSCRIPTS / f"{case}.meta.json").read_text())["argv_tail"])
    return [tail[0], *LOG_FLAGS, *tail[1:]]


def test_every_recorded_case_has_an_expectation() -> None:
    assert cases(CLI) == sorted(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_recorded_case_classifies(case: str) -> None:
    run = replay(OpencodeAdapter(), CLI, case)
    assert run.outcome.kind == EXPECTED[case], run.outcome
    assert run.outcome.native_session_id and run.outcome.native_session_id.startswith("ses_")


@pytest.mark.parametrize("case", ["stream_success", "ratelimit_once", "resume.run1"])
def test_success_text_tools_and_summed_step_usage(case: str) -> None:
    run = replay(OpencodeAdapter(), CLI, case)
    assert run.outcome.message == "LOCALMODEL_DONE: wrote hello.txt"
    (call,) = run.of(EventKind.TOOL_CALL)
    assert call.tool == "write" and call.text == "/home/dev/work-opencode/repo/hello.txt"
    (result,) = run.of(EventKind.TOOL_RESULT)
    assert result.text == "Wrote file successfully."
    # Two model requests, two step_finish events, each counted once.
    assert len(run.of(EventKind.USAGE)) == 2
    usage = run.outcome.usage
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (200, 40)
    assert usage.cost_usd == 0.0
    assert len(run.of(EventKind.COMPLETED)) == 1  # only the "stop" step ends the run


def test_rate_limit_error_carries_retry_after() -> None:
    run = replay(OpencodeAdapter(), CLI, "ratelimit")
    assert run.result.exit_code == 1
    assert run.outcome.retry_after == 1.0
    assert run.outcome.message == "APIError: localmodel: rate limit exceeded (scripted)"


def test_auth_error() -> None:
    run = replay(OpencodeAdapter(), CLI, "auth_error")
    assert "invalid API key" in run.outcome.message
    (error,) = run.of(EventKind.ERROR)
    assert error.data == {"status": 401, "retryable": False}


def test_error_with_exit_0_of_older_releases_still_fails() -> None:
    adapter = OpencodeAdapter()
    line = (TRANSCRIPTS / "ratelimit.stdout.txt").read_text().splitlines()[0]
    outcome = adapter.classify(ProcessResult(exit_code=0), adapter.parse_line(line, "stdout"))
    assert outcome.kind == OutcomeKind.RATE_LIMITED
    unknown = {
        "type": "error",
        "sessionID": "ses_x",
        "error": {"name": "UnknownError", "data": {"message": "no model"}},
    }
    outcome = adapter.classify(
        ProcessResult(exit_code=0), adapter.parse_line(json.dumps(unknown), "stdout")
    )
    assert outcome.kind == OutcomeKind.FAILED and "no model" in outcome.message


def test_resume_keeps_the_session_id_and_builds_the_recorded_command() -> None:
    adapter = OpencodeAdapter(LOCAL)
    first = replay(adapter, CLI, "resume.run1")
    second = replay(adapter, CLI, "resume.run2")
    assert first.session_ids == second.session_ids == {first.meta["session_id"]}
    spec = adapter.resume_command(
        request("SECOND: create second.txt", model="fake-model"), first.meta["session_id"]
    )
    assert spec.argv == ["opencode", *argv_tail("resume.run2")]
    assert second.outcome.message == "LOCALMODEL_DONE: second turn"


def test_build_command_is_the_recorded_one() -> None:
    spec = OpencodeAdapter(LOCAL).build_command(request(model="fake-model"))
    assert spec.argv == ["opencode", *argv_tail("stream_success")]
    assert spec.env["OPENCODE_DISABLE_AUTOUPDATE"] == "true"
    assert spec.env["OPENCODE_DISABLE_MODELS_FETCH"] == "true"
    assert spec.env["OPENCODE_CONFIG"] == "/home/s1/.config/opencode/council.json"


def test_config_file_is_json_with_the_custom_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_KEY", "sk-local-0123456789")
    adapter = OpencodeAdapter(
        {
            "provider": "localmodel",
            "model": "fake-model",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key_env": "LOCAL_KEY",
        }
    )
    spec = adapter.build_command(request())
    assert spec.argv[spec.argv.index("-m") + 1] == "localmodel/fake-model"
    config = json.loads(render(spec.config_files[".config/opencode/council.json"]))
    assert config["autoupdate"] is False and config["share"] == "disabled"
    assert config["snapshot"] is False  # its undo snapshots ran git after it exited
    provider = config["provider"]["localmodel"]
    assert provider["npm"] == "@ai-sdk/openai-compatible"
    assert provider["options"] == {"baseURL": "http://127.0.0.1:9/v1", "apiKey": "{env:LOCAL_KEY}"}
    assert provider["models"] == {"fake-model": {"name": "fake-model"}}
    plain = json.loads(
        render(
            OpencodeAdapter().build_command(request()).config_files[".config/opencode/council.json"]
        )
    )
    assert "provider" not in plain and "-m" not in OpencodeAdapter().build_command(request()).argv


def test_without_its_key_variable_the_provider_takes_the_users_login(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # opencode reads `opencode auth login`'s key for a provider only when the config names
    # none: an apiKey naming an unset variable would send no key at all (401).
    monkeypatch.delenv("LOCAL_KEY", raising=False)
    options = {"provider": "localmodel", "model": "m", "base_url": "http://127.0.0.1:9/v1"}
    adapter = OpencodeAdapter({**options, "api_key_env": "LOCAL_KEY"})
    config = json.loads(
        render(adapter.build_command(request()).config_files[".config/opencode/council.json"])
    )
    assert config["provider"]["localmodel"]["options"] == {"baseURL": "http://127.0.0.1:9/v1"}


def test_prompt_stays_one_argument() -> None:
    prompt = "echo \"$(cat ~/.ssh/id_rsa)\" 'and' `this`"
    argv = OpencodeAdapter().build_command(request(prompt)).argv
    assert argv[-1] == prompt and argv.count(prompt) == 1


def test_prompt_that_looks_like_a_flag_follows_a_separator() -> None:
    argv = OpencodeAdapter().build_command(request("--session ses_other")).argv
    assert argv[-2:] == ["--", "--session ses_other"]


def test_config_refuses_unknown_and_bad_keys() -> None:
    with pytest.raises(AdapterError, match="permissions"):
        OpencodeAdapter({"permissions": {}})
    with pytest.raises(AdapterError, match="base_url needs provider"):
        OpencodeAdapter({"base_url": "http://x/v1"})
