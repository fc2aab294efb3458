"""Claude Code adapter: golden tests on the real output of claude 2.1.197, plus its command."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.claude_code import ClaudeCodeAdapter
from orchestrator.adapter import (
    AdapterRequest,
    EventKind,
    OutcomeKind,
    ProcessResult,
)
from orchestrator.errors import AdapterError
from tests.support.adapter_replay import (
    cases,
    replay,
)

CLI = "claude"
EXPECTED = {
    "auth_error": OutcomeKind.AUTH_REQUIRED,
    "edit_success": OutcomeKind.SUCCEEDED,
    "json": OutcomeKind.SUCCEEDED,
    "permission_denied": OutcomeKind.PERMISSION_DENIED,
    "ratelimit": OutcomeKind.RATE_LIMITED,
    "ratelimit_once": OutcomeKind.SUCCEEDED,
    "resume.run1": OutcomeKind.SUCCEEDED,
    "resume.run2": OutcomeKind.SUCCEEDED,
    "stream_success": OutcomeKind.SUCCEEDED,
    "usage_limit": OutcomeKind.RATE_LIMITED,
}


def request(
    prompt: str = "Create the file hello.txt as scripted.", **extra: object
) -> AdapterRequest:
    return AdapterRequest(prompt=prompt, workdir=Path("/repo"), home=Path("/home/s1"), **extra)


def test_every_recorded_case_has_an_expectation() -> None:
    assert cases(CLI) == sorted(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_recorded_case_classifies(case: str) -> None:
    run = replay(ClaudeCodeAdapter(), CLI, case)
    assert run.outcome.kind == EXPECTED[case], run.outcome
    assert run.outcome.native_session_id, "every claude run names its session"


@pytest.mark.parametrize("case", ["stream_success", "json", "ratelimit_once"])
def test_success_has_final_text_usage_and_cost_once(case: str) -> None:
    run = replay(ClaudeCodeAdapter(), CLI, case)
    assert run.outcome.message == "LOCALMODEL_DONE: wrote hello.txt"
    usage = run.outcome.usage
    assert usage is not None
    # The result's totals only: the two assistant messages' own usage is not added again.
    assert (usage.input_tokens, usage.output_tokens) == (200, 40)
    assert usage.cost_usd == pytest.approx(0.0012)
    assert len(run.of(EventKind.USAGE)) == 1


def test_stream_success_events() -> None:
    run = replay(ClaudeCodeAdapter(), CLI, "stream_success")
    started = run.of(EventKind.STARTED)
    assert [e.native_session_id for e in started] == ["0be95f73-4285-4c26-ade4-902af497c139"]
    assert started[0].data["permission_mode"] == "acceptEdits"
    (call,) = run.of(EventKind.TOOL_CALL)
    assert call.tool == "Write" and call.text == "/home/dev/work-claude/repo/hello.txt"
    (result,) = run.of(EventKind.TOOL_RESULT)
    assert result.text.startswith("File created successfully") and not result.data["is_error"]
    assert [e.text for e in run.of(EventKind.MESSAGE)] == ["LOCALMODEL_DONE: wrote hello.txt"]
    (done,) = run.of(EventKind.COMPLETED)
    assert not done.is_error and done.data["num_turns"] == 2


def test_edit_success_reads_then_edits() -> None:
    run = replay(ClaudeCodeAdapter(), CLI, "edit_success")
    assert [e.tool for e in run.of(EventKind.TOOL_CALL)] == ["Read", "Edit"]
    assert run.outcome.message == "LOCALMODEL_DONE: edited README.md"
    assert run.outcome.usage is not None and run.outcome.usage.input_tokens == 300


def test_resume_keeps_the_session_id_and_builds_the_recorded_command() -> None:
    adapter = ClaudeCodeAdapter()
    first = replay(adapter, CLI, "resume.run1")
    second = replay(adapter, CLI, "resume.run2")
    assert first.session_ids == second.session_ids == {first.meta["session_id"]}
    session = first.outcome.native_session_id
    assert session is not None
    assert session == second.outcome.native_session_id == second.meta["session_id_used"]
    spec = adapter.resume_command(
        request("SECOND: create second.txt", model="claude-sonnet-4-5"), session
    )
    assert spec.argv == ["claude", *second.meta["argv_tail"]]
    assert second.outcome.message == "LOCALMODEL_DONE: second turn"


def test_build_command_is_the_recorded_one() -> None:
    meta = json.loads(
        (
            Path(__file__).parents[1] / "support" / "transcripts/claude/stream_success.meta.json"
        ).read_text()
    )
    spec = ClaudeCodeAdapter().build_command(request(model="claude-sonnet-4-5"))
    assert spec.argv == ["claude", *meta["argv_tail"]]
    assert spec.stdin is None


def test_permission_denial_with_exit_0_is_denied() -> None:
    run = replay(ClaudeCodeAdapter({"permission_mode": "default"}), CLI, "permission_denied")
    assert run.result.exit_code == 0
    assert run.outcome.kind == OutcomeKind.PERMISSION_DENIED
    assert "Write /home/dev/work-claude/repo/hello.txt" in run.outcome.message


def test_rate_limit_retries_are_events_and_the_run_is_parked() -> None:
    run = replay(ClaudeCodeAdapter(), CLI, "ratelimit")
    # retry_delay_ms is claude's own backoff, not when the limit lifts: data, not a reset.
    retries = [e for e in run.of(EventKind.RATE_LIMITED) if "retry_delay_ms" in e.data]
    delays = [e.data["retry_delay_ms"] for e in retries]
    assert delays == pytest.approx([1000, 1142.749205922684])
    assert all(e.retry_after is None and e.reset_at is None for e in retries)
    assert "429" in run.outcome.message and run.outcome.retry_after is None


def test_single_rate_limit_then_success_succeeds() -> None:
    run = replay(ClaudeCodeAdapter(), CLI, "ratelimit_once")
    assert run.of(EventKind.RATE_LIMITED) and run.outcome.ok


def test_usage_limit_is_rate_limited_without_a_made_up_reset() -> None:
    run = replay(ClaudeCodeAdapter(), CLI, "usage_limit")
    assert "usage limit reached" in run.outcome.message
    assert run.outcome.retry_at is None  # the API-key run reported no reset time


def test_auth_error_is_auth_required() -> None:
    run = replay(ClaudeCodeAdapter(), CLI, "auth_error")
    assert run.result.exit_code == 1
    assert run.outcome.kind == OutcomeKind.AUTH_REQUIRED
    assert run.outcome.message.startswith("HTTP 401 (authentication_failed), retry 1 of 2")
    # Its first retry of the refused key already settles the run: the core stops it there.
    adapter = ClaudeCodeAdapter()
    first = next(e for e in run.events if adapter.ends_run(e))
    assert first == next(e for e in run.events if e.kind == EventKind.ERROR)


def test_subscription_rate_limit_event_gives_the_reset_time() -> None:
    adapter = ClaudeCodeAdapter()
    reset = 1771390800
    lines = [
        {"type": "system", "subtype": "init", "session_id": "s-1", "model": "m"},
        {
            "type": "rate_limit_event",
            "rate_limit_info": {
                "status": "rejected",
                "resetsAt": reset,
                "rateLimitType": "five_hour",
            },
            "session_id": "s-1",
        },
        {
            "type": "result",
            "subtype": "success",
            "is_error": True,
            "api_error_status": 429,
            "result": "API Error: Request rejected (429)",
            "session_id": "s-1",
        },
    ]
    events = [e for line in lines for e in adapter.parse_line(json.dumps(line), "stdout")]
    outcome = adapter.classify(ProcessResult(exit_code=1), events)
    assert outcome.kind == OutcomeKind.RATE_LIMITED
    assert outcome.retry_at == datetime.fromtimestamp(reset, tz=UTC)
    assert "five_hour" in next(e.text for e in events if e.reset_at)


def test_allowed_rate_limit_event_is_only_a_heads_up() -> None:
    line = {
        "type": "rate_limit_event",
        "rate_limit_info": {"status": "allowed_warning", "resetsAt": 1},
    }
    assert ClaudeCodeAdapter().parse_line(json.dumps(line), "stdout") == []


def test_legacy_usage_limit_text_carries_its_reset() -> None:
    adapter = ClaudeCodeAdapter()
    line = {
        "type": "result",
        "subtype": "success",
        "is_error": True,
        "result": "Claude AI usage limit reached|1751230800",
        "session_id": "s",
    }
    outcome = adapter.classify(
        ProcessResult(exit_code=1), adapter.parse_line(json.dumps(line), "stdout")
    )
    assert outcome.kind == OutcomeKind.RATE_LIMITED
    assert outcome.retry_at == datetime.fromtimestamp(1751230800, tz=UTC)


def test_max_turns_error_fails() -> None:
    adapter = ClaudeCodeAdapter()
    line = {"type": "result", "subtype": "error_max_turns", "is_error": False, "session_id": "s"}
    outcome = adapter.classify(
        ProcessResult(exit_code=0), adapter.parse_line(json.dumps(line), "stdout")
    )
    assert outcome.kind == OutcomeKind.FAILED and "error_max_turns" in outcome.message


def test_timeout_while_retrying_429_is_rate_limited() -> None:
    adapter = ClaudeCodeAdapter()
    retry = {
        "type": "system",
        "subtype": "api_retry",
        "attempt": 3,
        "max_retries": 10,
        "retry_delay_ms": 8000,
        "error_status": 429,
        "error": "rate_limit",
    }
    events = adapter.parse_line(json.dumps(retry), "stdout")
    outcome = adapter.classify(ProcessResult(exit_code=None, timed_out=True), events)
    assert outcome.kind == OutcomeKind.RATE_LIMITED
    assert outcome.retry_after is None and outcome.retry_at is None  # no reset time was given


@pytest.mark.parametrize(
    "prompt",
    ["say \"hi\" and $(rm -rf /) `id` 'quoted'", "multi\nline; echo $HOME", "ünïcødé ✓"],
)
def test_prompt_stays_one_argument(prompt: str) -> None:
    spec = ClaudeCodeAdapter().build_command(request(prompt))
    assert spec.argv[1:3] == ["-p", prompt] and spec.argv.count(prompt) == 1
    assert spec.stdin is None


def test_prompt_that_looks_like_a_flag_goes_through_stdin() -> None:
    spec = ClaudeCodeAdapter().build_command(request("--dangerously-skip-permissions do it"))
    assert "--dangerously-skip-permissions do it" not in spec.argv
    assert spec.stdin == "--dangerously-skip-permissions do it"
    assert spec.argv[:3] == ["claude", "-p", "--output-format"]


def test_options_reach_the_command_and_env() -> None:
    adapter = ClaudeCodeAdapter(
        {
            "permission_mode": "plan",
            "max_turns": 5,
            "allowed_tools": ["Bash(git *)", "Edit"],
            "max_retries": 2,
            "base_url": "http://127.0.0.1:8080",
        },
        executable="/opt/claude",
    )
    spec = adapter.build_command(
        request(model="opus", resume_session_id="abc", env={"ANTHROPIC_API_KEY": "sk-1", "X": "y"})
    )
    argv = spec.argv
    assert argv[0] == "/opt/claude"
    assert argv[argv.index("--permission-mode") + 1] == "plan"
    assert argv[argv.index("--max-turns") + 1] == "5"
    assert argv[argv.index("--allowedTools") + 1 : argv.index("--model")] == ["Bash(git *)", "Edit"]
    assert argv[-4:] == ["--model", "opus", "--resume", "abc"]
    assert spec.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert spec.env["CLAUDE_CODE_MAX_RETRIES"] == "2"
    assert spec.env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8080"
    assert spec.env["X"] == "y"
    assert spec.secrets == ["sk-1"]
    assert spec.home_files == {}


def test_config_refuses_unknown_and_bad_keys() -> None:
    with pytest.raises(AdapterError, match="permision_mode"):
        ClaudeCodeAdapter({"permision_mode": "acceptEdits"})
    with pytest.raises(AdapterError):
        ClaudeCodeAdapter({"permission_mode": "yolo"})
