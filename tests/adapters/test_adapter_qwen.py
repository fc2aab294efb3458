"""Qwen Code adapter: golden tests on the real output of qwen 0.15.10, plus its command."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from adapters.qwen import QwenAdapter
from orchestrator.adapter import AdapterRequest, EventKind, OutcomeKind, ProcessResult
from orchestrator.errors import AdapterError
from orchestrator.runner.config_merge import render
from tests.support.adapter_replay import (
    cases,
    replay,
)

CLI = "qwen"
EXPECTED = {
    "auth_error": OutcomeKind.AUTH_REQUIRED,
    "json": OutcomeKind.SUCCEEDED,
    # qwen 0.24.4 without OPENAI_API_KEY, and with --auth-type qwen-oauth (the free tier is
    # gone): exit 1 before any request, the cause only in the result's "error.message".
    "missing_key": OutcomeKind.AUTH_REQUIRED,
    "oauth_refused": OutcomeKind.AUTH_REQUIRED,
    # Nothing was refused (the model never tried): the init event's tool list is the
    # evidence, reported by ``denials`` for the workflow, not failing a read-only phase.
    "no_approval": OutcomeKind.SUCCEEDED,
    # Stopped by the recorder after 150 s of silent 429 retries: stdout holds only the init
    # line and stderr nothing, so no 429 is visible to classify. See the test below.
    "ratelimit": OutcomeKind.TIMED_OUT,
    "ratelimit_capped": OutcomeKind.RATE_LIMITED,
    "ratelimit_once": OutcomeKind.SUCCEEDED,
    "resume.run1": OutcomeKind.SUCCEEDED,
    "resume.run2": OutcomeKind.SUCCEEDED,
    "stream_success": OutcomeKind.SUCCEEDED,
}
TRANSCRIPTS = Path(__file__).parents[1] / "support" / "transcripts" / CLI


def request(
    prompt: str = "Create the file hello.txt as scripted.", **extra: object
) -> AdapterRequest:
    return AdapterRequest(prompt=prompt, workdir=Path("/repo"), home=Path("/home/s1"), **extra)


def argv_tail(case: str) -> list[str]:
    """The recorded command (qwen 0.15), with the approval mode as the adapter now passes it:
    always explicit, since 0.24 starts in "auto" (declining edits) when none is given."""
    tail = list(json.loads((TRANSCRIPTS / f"{case}.meta.json").read_text())["argv_tail"])
    if "--yolo" in tail:
        at = tail.index("--yolo")
        return [*tail[:at], "--approval-mode", "yolo", *tail[at + 1 :]]
    at = tail.index("stream-json") + 1
    return [*tail[:at], "--approval-mode", "default", *tail[at:]]


def named(argv: list[str]) -> list[str]:
    """``argv`` without the ``--session-id`` the adapter adds to a new session (after these
    were recorded: it names the debug log joined to stderr), checked to be a new UUID."""
    at = argv.index("--session-id")
    assert uuid.UUID(argv[at + 1]).version == 4
    return [*argv[:at], *argv[at + 2 :]]


def test_every_recorded_case_has_an_expectation() -> None:
    assert cases(CLI) == sorted(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_recorded_case_classifies(case: str) -> None:
    run = replay(QwenAdapter(), CLI, case)
    assert run.outcome.kind == EXPECTED[case], run.outcome
    assert run.outcome.native_session_id


@pytest.mark.parametrize("case", ["stream_success", "json", "ratelimit_once"])
def test_success_final_text_and_usage(case: str) -> None:
    run = replay(QwenAdapter(), CLI, case)
    assert run.outcome.message == "LOCALMODEL_DONE: wrote hello.txt"
    usage = run.outcome.usage
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (200, 40)
    assert len(run.of(EventKind.USAGE)) == 1  # from the result, not the assistant messages
    (call,) = run.of(EventKind.TOOL_CALL)
    assert call.tool == "write_file"


@pytest.mark.parametrize(
    ("case", "kind", "text"),
    [
        ("auth_error", OutcomeKind.AUTH_REQUIRED, "[API Error: 401"),
        ("ratelimit_capped", OutcomeKind.RATE_LIMITED, "[API Error: 429"),
    ],
)
def test_api_error_text_with_exit_0_and_is_error_false(
    case: str, kind: OutcomeKind, text: str
) -> None:
    run = replay(QwenAdapter(), CLI, case)
    assert run.result.exit_code == 0
    (done,) = run.of(EventKind.COMPLETED)
    assert done.data["cli_is_error"] is False and done.is_error
    assert run.outcome.kind == kind and run.outcome.message.startswith(text)


@pytest.mark.parametrize(
    ("case", "words"),
    [("missing_key", "Missing API key"), ("oauth_refused", "Run /auth")],
)
def test_a_missing_or_refused_login_names_itself(case: str, words: str) -> None:
    # Before: "error_during_execution", failed and retried; the cause was in error.message.
    run = replay(QwenAdapter(), CLI, case)
    assert run.result.exit_code == 1
    assert run.outcome.kind == OutcomeKind.AUTH_REQUIRED and words in run.outcome.message


def test_other_api_errors_fail() -> None:
    adapter = QwenAdapter()
    line = {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "session_id": "s",
        "result": "[API Error: 500 upstream exploded]",
    }
    outcome = adapter.classify(
        ProcessResult(exit_code=0), adapter.parse_line(json.dumps(line), "stdout")
    )
    assert outcome.kind == OutcomeKind.FAILED and "500" in outcome.message


def test_silent_retries_until_stopped_stay_timed_out() -> None:
    run = replay(QwenAdapter(), CLI, "ratelimit")
    assert run.result.timed_out
    assert [e.kind for e in run.events] == [EventKind.STARTED]  # nothing names the 429


def test_no_approval_with_exit_0_cannot_write() -> None:
    adapter = QwenAdapter({"approval_mode": "default"})
    run = replay(adapter, CLI, "no_approval")
    assert run.result.exit_code == 0
    assert not adapter.can_write and "'default'" in (adapter.read_only_reason() or "")
    # The evidence is in the output itself, whatever the adapter was configured with.
    yolo = QwenAdapter()
    assert yolo.denials(replay(yolo, CLI, "no_approval").events) == [
        "qwen started in approval mode 'default' without edit or shell tools"
    ]


def test_plan_mode_without_edit_tools_is_not_a_denial() -> None:
    adapter = QwenAdapter()
    init = {
        "type": "system",
        "subtype": "init",
        "session_id": "s",
        "permission_mode": "plan",
        "tools": ["read_file", "glob"],
    }
    assert [e.kind for e in adapter.parse_line(json.dumps(init), "stdout")] == [EventKind.STARTED]


def test_resume_keeps_the_session_id_and_builds_the_recorded_command() -> None:
    adapter = QwenAdapter()
    first = replay(adapter, CLI, "resume.run1")
    second = replay(adapter, CLI, "resume.run2")
    assert first.session_ids == second.session_ids == {first.meta["session_id"]}
    spec = adapter.resume_command(request("SECOND: create second.txt"), first.meta["session_id"])
    assert spec.argv == ["qwen", *argv_tail("resume.run2")]


def test_build_command_is_the_recorded_one() -> None:
    built = QwenAdapter().build_command(request()).argv
    assert named(built) == ["qwen", *argv_tail("stream_success")]
    spec = QwenAdapter({"approval_mode": "default"}).build_command(request())
    assert named(spec.argv) == ["qwen", *argv_tail("no_approval")]


def test_settings_file_caps_retries_and_turns_off_telemetry() -> None:
    spec = QwenAdapter({"base_url": "http://127.0.0.1:9/v1"}).build_command(request(model="m1"))
    settings_json = json.loads(render(spec.config_files[".qwen/settings.json"]))
    assert settings_json["model"]["generationConfig"]["maxRetries"] == 0
    assert settings_json["privacy"]["usageStatisticsEnabled"] is False
    assert settings_json["telemetry"]["enabled"] is False
    assert spec.env["OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1"
    assert named(spec.argv)[-2:] == ["-m", "m1"]
    anthropic = QwenAdapter({"auth_type": "anthropic", "base_url": "http://h"}).build_command(
        request()
    )
    assert anthropic.env["ANTHROPIC_BASE_URL"] == "http://h"


def test_prompt_stays_one_argument() -> None:
    prompt = 'fix "it" && $(curl evil) \\n'
    argv = QwenAdapter().build_command(request(prompt)).argv
    assert argv[1] == prompt and argv.count(prompt) == 1


def test_prompt_that_looks_like_a_flag_stays_a_value() -> None:
    argv = QwenAdapter().build_command(request("-i interactive please")).argv
    assert argv[1] == "--prompt=-i interactive please"


def test_exit_codes() -> None:
    outcome = QwenAdapter().classify(ProcessResult(exit_code=41), [])
    assert outcome.kind == OutcomeKind.AUTH_REQUIRED and "(exit 41)" in outcome.message


def test_config_refuses_unknown_and_bad_keys() -> None:
    with pytest.raises(AdapterError, match="openai_api_key"):
        QwenAdapter({"openai_api_key": "sk"})
    with pytest.raises(AdapterError):
        QwenAdapter({"approval_mode": "auto_edit"})  # gemini spells it with "_", qwen with "-"


def test_openai_responses_is_an_auth_type_with_the_openai_endpoint() -> None:
    adapter = QwenAdapter({"auth_type": "openai-responses", "base_url": "http://127.0.0.1:9/v1"})
    spec = adapter.build_command(request())
    at = spec.argv.index("--auth-type")
    assert spec.argv[at + 1] == "openai-responses"
    assert spec.env["OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1"


def test_the_discontinued_qwen_oauth_is_refused_with_the_way_to_log_in() -> None:
    with pytest.raises(AdapterError) as refused:
        QwenAdapter({"auth_type": "qwen-oauth"})
    words = str(refused.value)
    assert "adapter 'qwen'" in words and "auth_type" in words
    assert "discontinued on 2026-04-15" in words
    assert "OPENAI_API_KEY" in words and "~/.qwen/.env" in words
    schema = QwenAdapter.Config.model_json_schema()
    assert "qwen-oauth" not in json.dumps(schema)  # not offered by the config's schema either


# qwen 0.24.4's debug log on its stderr, as it printed it against a model that answered 429
# (no Retry-After, then one with "Retry-After: 0.2"); the other lines of a run are like the
# first two.
_DEBUG_LOG = [
    "2026-11-26T20:23:58.752Z [DEBUG] [HOOK_REGISTRY] Hook registry initialized",
    "2026-11-26T20:23:58.740Z [INFO] Config initialization started",
    "2026-11-26T20:23:46.331Z [ERROR] [OPENAI_ERROR] OpenAI API Error: 429 Rate limit reached {",
]
_RETRY = (
    "2026-11-26T20:23:46.331Z [WARN] [RETRY] Attempt 2 failed with status 429. "
    "Retrying with backoff in 3s... {"
)
_RETRY_AFTER = (
    "2026-11-26T20:23:46.331Z [WARN] [RETRY] Attempt 1 failed with status 429. "
    "Retrying after explicit delay of 200ms... {"
)


def test_a_new_session_is_named_and_its_debug_log_is_its_stderr() -> None:
    spec = QwenAdapter().build_command(request())
    session = spec.argv[spec.argv.index("--session-id") + 1]
    assert spec.stderr_files == [f".qwen/debug/{session}.txt"]
    assert spec.env["QWEN_DEBUG_LOG_FILE"] == "1"
    again = QwenAdapter().build_command(request()).argv
    assert again[again.index("--session-id") + 1] != session  # a new one each time
    resumed = QwenAdapter().resume_command(request(), "6f0c-run1")
    assert "--session-id" not in resumed.argv and resumed.argv.count("6f0c-run1") == 1
    assert resumed.stderr_files == [".qwen/debug/6f0c-run1.txt"]
    with pytest.raises(AdapterError):  # a resumed id came from the CLI: never a path or flag
        QwenAdapter().resume_command(request(), "../../.ssh/id")


def test_the_first_429_in_the_debug_log_is_a_rate_limit_that_ends_the_run() -> None:
    adapter = QwenAdapter()
    for line in _DEBUG_LOG:
        assert adapter.parse_line(line, "stderr") == []  # the log's, not events
    events = adapter.parse_line(_RETRY, "stderr")
    assert [e.kind for e in events] == [EventKind.ERROR, EventKind.RATE_LIMITED]
    assert events[1].retry_after == 3.0 and adapter.ends_run(events[1])
    assert adapter.parse_line(_RETRY_AFTER, "stderr")[1].retry_after == 0.2
    # The same words on stdout, or not at a debug line's head, are not the log.
    assert all(e.kind is EventKind.RAW for e in adapter.parse_line(_RETRY[25:], "stderr"))
    stopped = adapter.classify(ProcessResult(exit_code=None, signal=15, ended_early=True), events)
    assert stopped.kind is OutcomeKind.RATE_LIMITED and stopped.retry_after == 3.0


def test_a_failure_says_its_own_stderr_not_the_debug_log() -> None:
    tail = "\n".join(
        [
            "Error: cannot read /repo/x: EACCES",
            _DEBUG_LOG[2],
            "  model: 'fake-model',",
            "} Error: 429",
            "    at APIError.generate (file:///x.js:147:14)",
            _DEBUG_LOG[0],
        ]
    )
    outcome = QwenAdapter().classify(ProcessResult(exit_code=1, stderr_tail=tail), [])
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.message == "exit code 1: Error: cannot read /repo/x: EACCES"


def test_the_debug_log_link_is_made_in_place_of_what_the_cli_left(tmp_path: Path) -> None:
    from orchestrator.errors import PathEscapeError
    from orchestrator.process.env import prepare_home

    home = tmp_path / "home"
    (home / ".qwen" / "debug").mkdir(parents=True)
    planted = home / ".qwen" / "debug" / "s.txt"
    planted.symlink_to(tmp_path / "elsewhere")
    prepare_home(home, {}, [".qwen/debug/s.txt"])
    assert os.readlink(planted) == "/dev/stderr"
    with pytest.raises(PathEscapeError):
        prepare_home(home, {}, ["../outside.txt"])
