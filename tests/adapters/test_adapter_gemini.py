"""Gemini CLI adapter: golden tests on the real output of gemini 0.61.0, plus its command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.gemini import GeminiAdapter
from orchestrator.adapter import AdapterRequest, EventKind, OutcomeKind, ProcessResult
from orchestrator.errors import AdapterError
from orchestrator.runner.config_merge import render
from tests.support.adapter_replay import (
    cases,
    replay,
)

CLI = "gemini"
EXPECTED = {
    "auth_error": OutcomeKind.AUTH_REQUIRED,
    "json": OutcomeKind.SUCCEEDED,
    # Nothing was refused: the mode offered no write tool. The run "succeeds"; the adapter
    # cannot write with these options, so a build that changed nothing is permission_denied.
    "no_approval": OutcomeKind.SUCCEEDED,
    "ratelimit": OutcomeKind.RATE_LIMITED,
    "ratelimit_capped": OutcomeKind.RATE_LIMITED,
    "ratelimit_once": OutcomeKind.SUCCEEDED,
    "resume.run1": OutcomeKind.SUCCEEDED,
    "resume.run2": OutcomeKind.SUCCEEDED,
    "stream_success": OutcomeKind.SUCCEEDED,
}
# The options each case was recorded with (see its meta.json argv_tail).
OPTIONS: dict[str, dict[str, Any]] = {"no_approval": {"approval_mode": "default"}}
TRANSCRIPTS = Path(__file__).parents[1] / "support" / "transcripts" / CLI


def request(
    prompt: str = "Create the file hello.txt as scripted.", **extra: object
) -> AdapterRequest:
    return AdapterRequest(prompt=prompt, workdir=Path("/repo"), home=Path("/home/s1"), **extra)


def argv_tail(case: str) -> list[str]:
    meta = json.loads((TRANSCRIPTS / f"{case}.meta.json").read_text())
    return list(meta["argv_tail"])


def test_every_recorded_case_has_an_expectation() -> None:
    assert cases(CLI) == sorted(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_recorded_case_classifies(case: str) -> None:
    run = replay(GeminiAdapter(OPTIONS.get(case)), CLI, case)
    assert run.outcome.kind == EXPECTED[case], run.outcome
    assert run.outcome.native_session_id


@pytest.mark.parametrize("case", ["stream_success", "ratelimit_once", "json"])
def test_success_final_text(case: str) -> None:
    run = replay(GeminiAdapter(), CLI, case)
    assert run.outcome.message == "LOCALMODEL_DONE: wrote hello.txt"


def test_stream_success_events_and_usage() -> None:
    run = replay(GeminiAdapter(), CLI, "stream_success")
    assert run.outcome.native_session_id == "13e979cc-9913-44c0-89c2-32149baed612"
    (call,) = run.of(EventKind.TOOL_CALL)
    assert call.tool == "write_file" and call.text == "hello.txt"
    (result,) = run.of(EventKind.TOOL_RESULT)
    assert result.data["status"] == "success"
    usage = run.outcome.usage
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (200, 40)
    assert len(run.of(EventKind.USAGE)) == 1


def test_resume_keeps_the_session_id_and_builds_the_recorded_command() -> None:
    adapter = GeminiAdapter()
    first = replay(adapter, CLI, "resume.run1")
    second = replay(adapter, CLI, "resume.run2")
    assert first.session_ids == second.session_ids == {first.meta["session_id"]}
    spec = adapter.resume_command(
        request("SECOND: create second.txt", model="gemini-2.5-flash"), first.meta["session_id"]
    )
    assert spec.argv == ["gemini", *argv_tail("resume.run2")]
    assert second.outcome.message == "LOCALMODEL_DONE: second turn"


def test_build_command_is_the_recorded_one() -> None:
    spec = GeminiAdapter().build_command(request(model="gemini-2.5-flash"))
    assert spec.argv == ["gemini", *argv_tail("stream_success")]
    assert spec.env["GEMINI_CLI_TRUST_WORKSPACE"] == "true"
    default = GeminiAdapter({"approval_mode": "default"}).build_command(
        request(model="gemini-2.5-flash")
    )
    assert default.argv == ["gemini", *argv_tail("no_approval")]


def test_settings_file_pins_auth_and_turns_off_telemetry() -> None:
    spec = GeminiAdapter({"base_url": "http://127.0.0.1:7000"}).build_command(request())
    settings_json = json.loads(render(spec.config_files[".gemini/settings.json"]))
    assert settings_json["security"]["auth"]["selectedType"] == "gemini-api-key"
    assert settings_json["general"]["maxAttempts"] == 3
    assert settings_json["general"]["disableAutoUpdate"] is True
    assert settings_json["privacy"]["usageStatisticsEnabled"] is False
    assert settings_json["telemetry"]["enabled"] is False
    assert spec.env["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:7000"
    vertex = GeminiAdapter({"auth_type": None, "max_attempts": None}).build_command(request())
    assert "security" not in json.loads(render(vertex.config_files[".gemini/settings.json"]))


def test_no_approval_with_exit_0_cannot_write() -> None:
    adapter = GeminiAdapter({"approval_mode": "default"})
    run = replay(adapter, CLI, "no_approval")
    assert run.result.exit_code == 0 and not run.of(EventKind.ERROR)
    assert not adapter.can_write
    assert "approval mode 'default'" in (adapter.read_only_reason() or "")


def test_untrusted_folder_downgrade_is_denied() -> None:
    adapter = GeminiAdapter()
    line = 'Approval mode overridden to "default" because the current folder is not trusted.'
    events = adapter.parse_line(line, "stderr")
    outcome = adapter.classify(ProcessResult(exit_code=0), events)
    assert outcome.kind == OutcomeKind.PERMISSION_DENIED


def test_capped_rate_limit_exits_173() -> None:
    run = replay(GeminiAdapter(), CLI, "ratelimit_capped")
    assert run.result.exit_code == 173
    assert len(run.of(EventKind.RATE_LIMITED)) >= 2
    assert "rate limit exceeded" in run.outcome.message


def test_stopped_while_retrying_429_is_rate_limited() -> None:
    run = replay(GeminiAdapter(), CLI, "ratelimit")
    assert run.result.timed_out and run.result.exit_code is None
    assert [e.text for e in run.of(EventKind.RATE_LIMITED)][-1].startswith("Attempt 7 failed")
    assert run.outcome.message.startswith("still retrying a rate limit when stopped")


def test_auth_error_exit_145() -> None:
    run = replay(GeminiAdapter(), CLI, "auth_error")
    assert run.result.exit_code == 145 and "401" in run.outcome.message


def test_auth_error_names_its_cause_before_the_report_path() -> None:
    # Before: "Error when talking to Gemini API Full report available at: /var/tmp/...".
    run = replay(GeminiAdapter(), CLI, "auth_error")
    (error,) = [e for e in run.of(EventKind.ERROR) if e.text.startswith("Error when")]
    assert error.text.startswith(
        "Error when talking to Gemini API: HTTP 401 INTERNAL: localmodel: invalid API key"
    ), error.text
    assert error.text.endswith("(full report: /var/tmp/gemini-client-error-Turn.run-"
                               "sendMessageStream-2026-11-21T11-29-48-744Z.json)")  # fmt: skip


def test_a_line_without_its_cause_quotes_the_report_file(tmp_path: Path) -> None:
    # What gemini 0.61.0 wrote for a 401 of the fake model (the line may end at the path).
    report = tmp_path / "gemini-client-error-Turn.run-sendMessageStream.json"
    body = {"error": {"code": 401, "message": "API key not valid.", "status": "UNAUTHENTICATED"}}
    report.write_text(json.dumps({"error": {"message": json.dumps(body), "stack": "ApiError"}}))
    line = f"Error when talking to Gemini API Full report available at: {report}"

    (error,) = GeminiAdapter().parse_line(line, "stderr")

    assert error.error_kind == "auth"
    assert error.text == (
        "Error when talking to Gemini API: HTTP 401 UNAUTHENTICATED: API key not valid. "
        f"(full report: {report})"
    )


def test_a_report_that_cannot_be_read_says_so(tmp_path: Path) -> None:
    line = f"Error when talking to Gemini API Full report available at: {tmp_path}/gone.json"
    (error,) = GeminiAdapter().parse_line(line, "stderr")
    assert error.text == (
        f"Error when talking to Gemini API (no cause given; full report: {tmp_path}/gone.json)"
    )


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (41, OutcomeKind.AUTH_REQUIRED),
        (145, OutcomeKind.AUTH_REQUIRED),
        (173, OutcomeKind.RATE_LIMITED),
        (55, OutcomeKind.PERMISSION_DENIED),
        (52, OutcomeKind.FAILED),
        (53, OutcomeKind.FAILED),
        (1, OutcomeKind.FAILED),
    ],
)
def test_exit_codes_speak_when_the_output_does_not(code: int, kind: OutcomeKind) -> None:
    outcome = GeminiAdapter().classify(ProcessResult(exit_code=code, stderr_tail="boom"), [])
    assert outcome.kind == kind
    assert code == 1 or f"(exit {code})" in outcome.message


def test_stream_error_event_by_severity() -> None:
    adapter = GeminiAdapter()
    warning = {"type": "error", "severity": "warning", "message": "Loop detected"}
    assert [e.kind for e in adapter.parse_line(json.dumps(warning), "stdout")] == [EventKind.RAW]
    fatal = {"type": "error", "severity": "error", "message": "[API Error: 429 quota]"}
    kinds = [e.kind for e in adapter.parse_line(json.dumps(fatal), "stdout")]
    assert kinds == [EventKind.ERROR, EventKind.RATE_LIMITED]


def test_prompt_stays_one_argument() -> None:
    prompt = 'it\'s "quoted" $(whoami) `id`'
    argv = GeminiAdapter().build_command(request(prompt)).argv
    assert argv[1:3] == ["-p", prompt] and argv.count(prompt) == 1


def test_prompt_that_looks_like_a_flag_stays_a_value() -> None:
    argv = GeminiAdapter().build_command(request("--yolo is a flag")).argv
    assert argv[1] == "--prompt=--yolo is a flag" and "-p" not in argv


def test_config_refuses_unknown_and_bad_keys() -> None:
    with pytest.raises(AdapterError, match="yolo"):
        GeminiAdapter({"yolo": True})
    with pytest.raises(AdapterError):
        GeminiAdapter({"approval_mode": "auto-edit"})
    with pytest.raises(AdapterError):
        GeminiAdapter({"max_attempts": 0})


def test_only_a_report_of_gemini_s_own_is_read(tmp_path: Path) -> None:
    """The path comes from the CLI's output: a link or another file is never read."""
    body = {"error": {"message": '{"error": {"code": 401, "message": "leaked"}}'}}
    elsewhere = tmp_path / "secrets.json"
    elsewhere.write_text(json.dumps(body))
    link = tmp_path / "gemini-client-error-link.json"
    link.symlink_to(elsewhere)
    for path in (elsewhere, link):
        line = f"Error when talking to Gemini API Full report available at: {path}"
        (error,) = GeminiAdapter().parse_line(line, "stderr")
        assert "leaked" not in error.text and "no cause given" in error.text
