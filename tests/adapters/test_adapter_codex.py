"""Codex adapter: golden tests on the real output of codex-cli 0.169.0, plus its command."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from adapters.codex import CodexAdapter
from orchestrator.adapter import AdapterRequest, EventKind, OutcomeKind
from orchestrator.errors import AdapterError
from orchestrator.runner.config_merge import render
from tests.support.adapter_replay import (
    cases,
    replay,
)

CLI = "codex"
EXPECTED = {
    "auth_error": OutcomeKind.AUTH_REQUIRED,
    "edit_success": OutcomeKind.SUCCEEDED,
    "json": OutcomeKind.SUCCEEDED,
    "ratelimit": OutcomeKind.RATE_LIMITED,
    "ratelimit_once": OutcomeKind.SUCCEEDED,
    "readonly_sandbox": OutcomeKind.PERMISSION_DENIED,
    "resume.run1": OutcomeKind.SUCCEEDED,
    "resume.run2": OutcomeKind.SUCCEEDED,
}
BYPASS = {"sandbox": "bypass"}


def request(
    prompt: str = "Create the file hello.txt as scripted.", **extra: object
) -> AdapterRequest:
    return AdapterRequest(prompt=prompt, workdir=Path("/repo"), home=Path("/home/s1"), **extra)


def test_every_recorded_case_has_an_expectation() -> None:
    assert cases(CLI) == sorted(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_recorded_case_classifies(case: str) -> None:
    run = replay(CodexAdapter(), CLI, case)
    assert run.outcome.kind == EXPECTED[case], run.outcome
    assert run.outcome.native_session_id


def test_edit_success_events_and_usage() -> None:
    run = replay(CodexAdapter(BYPASS), CLI, "edit_success")
    assert run.outcome.native_session_id == "01a1fe08-3f36-7651-b020-c517a5f24bbe"
    assert [(e.tool, e.text) for e in run.of(EventKind.TOOL_CALL)] == [
        ("exec", "/bin/bash -lc 'cat README.md'"),
        ("apply_patch", "update /home/dev/work-codex/repo/README.md"),
    ]
    results = run.of(EventKind.TOOL_RESULT)
    assert results[0].text == "# Demo\nhello world\n" and results[0].data["exit_code"] == 0
    assert results[1].data["status"] == "completed"
    assert run.outcome.message == "LOCALMODEL_DONE: edited README.md"
    usage = run.outcome.usage
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (300, 60)
    assert usage.cost_usd is None  # codex reports no cost
    assert len(run.of(EventKind.USAGE)) == 1


def test_plain_text_mode_is_understood() -> None:
    run = replay(CodexAdapter(), CLI, "json")  # recorded without --json
    assert run.outcome.message == "LOCALMODEL_DONE: wrote hello.txt"
    assert run.outcome.native_session_id == "01a1fdd5-a5f2-7a80-9a87-68969816efdf"


def test_readonly_sandbox_rejection_with_exit_0_is_denied() -> None:
    run = replay(CodexAdapter({"sandbox": "read-only"}), CLI, "readonly_sandbox")
    assert run.result.exit_code == 0
    assert "blocked by read-only sandbox" in run.outcome.message
    # The JSON stream claims success (turn.completed); the rejection is only on stderr.
    assert not run.of(EventKind.COMPLETED)[-1].is_error
    assert [e.error_kind for e in run.of(EventKind.ERROR)] == ["sandbox"]


def test_rate_limit_reconnects_then_fails() -> None:
    run = replay(CodexAdapter(), CLI, "ratelimit")
    assert run.result.exit_code == 1
    assert "429 Too Many Requests" in run.outcome.message
    assert run.of(EventKind.COMPLETED)[-1].is_error


def test_one_429_reconnect_then_success_succeeds() -> None:
    run = replay(CodexAdapter(), CLI, "ratelimit_once")
    assert run.of(EventKind.RATE_LIMITED)
    assert not run.of(EventKind.ERROR)  # a reconnect is not an error of the run
    assert run.outcome.message == "LOCALMODEL_DONE: wrote hello.txt"


def test_auth_error() -> None:
    run = replay(CodexAdapter(), CLI, "auth_error")
    assert "401 Unauthorized" in run.outcome.message


def test_resume_keeps_the_thread_id_and_builds_the_recorded_command() -> None:
    adapter = CodexAdapter(BYPASS)
    first = replay(adapter, CLI, "resume.run1")
    second = replay(adapter, CLI, "resume.run2")
    assert first.session_ids == second.session_ids == {first.meta["session_id"]}
    spec = adapter.resume_command(request("SECOND: create second.txt"), first.meta["session_id"])
    assert spec.argv == ["codex", *second.meta["argv_tail"]]
    assert spec.stdin is None
    assert second.outcome.usage is not None and second.outcome.usage.input_tokens == 400


def test_build_command_is_the_recorded_one() -> None:
    meta = json.loads(
        (
            Path(__file__).parents[1] / "support" / "transcripts/codex/edit_success.meta.json"
        ).read_text()
    )
    spec = CodexAdapter(BYPASS).build_command(request("Edit README.md as scripted."))
    assert spec.argv == ["codex", *meta["argv_tail"]]


def test_default_is_the_workspace_write_sandbox() -> None:
    spec = CodexAdapter().build_command(request(model="gpt-5.5"))
    assert spec.argv == [
        "codex",
        "exec",
        "--json",
        "--skip-git-repo-check",
        "-s",
        "workspace-write",
        "-m",
        "gpt-5.5",
        "Create the file hello.txt as scripted.",
    ]
    assert spec.env["CODEX_HOME"] == "/home/s1/.codex"
    assert spec.stdin is None and list(spec.config_files) == [".codex/config.toml"]
    config = tomllib.loads(render(spec.config_files[".codex/config.toml"]))
    # Off the network but for the model: no plugin sync from GitHub, no analytics; the model
    # and sandbox the flags set are named too, so a user's own value they beat is said.
    assert config == {
        "features": {"plugins": False},
        "analytics": {"enabled": False},
        "model": "gpt-5.5",
        "sandbox_mode": "workspace-write",
    }


def test_resume_has_no_sandbox_flag_so_it_uses_a_config_override() -> None:
    spec = CodexAdapter().build_command(request("again", resume_session_id="t-1"))
    assert spec.argv == [
        "codex",
        "exec",
        "resume",
        "--json",
        "--skip-git-repo-check",
        "-c",
        'sandbox_mode="workspace-write"',
        "t-1",
        "again",
    ]


@pytest.mark.parametrize("prompt", ['write "x" then $(reboot)', "a;b|c && d > /etc/passwd"])
def test_prompt_stays_one_argument(prompt: str) -> None:
    spec = CodexAdapter().build_command(request(prompt))
    assert spec.argv[-1] == prompt and spec.argv.count(prompt) == 1


def test_prompt_that_looks_like_a_flag_is_read_from_stdin() -> None:
    spec = CodexAdapter().build_command(request("--help me"))
    assert spec.argv[-1] == "-" and spec.stdin == "--help me"


def test_custom_endpoint_config_is_valid_toml() -> None:
    adapter = CodexAdapter(
        {
            "base_url": 'http://127.0.0.1:9/v1?x="y"',
            "env_key": "LOCAL_KEY",
            "request_max_retries": 1,
            "stream_max_retries": 0,
        }
    )
    spec = adapter.build_command(request(env={"LOCAL_KEY": "secret-1"}))
    config = tomllib.loads(render(spec.config_files[".codex/config.toml"]))
    assert config["model_provider"] == "council"
    provider = config["model_providers"]["council"]
    assert provider == {
        "name": "council",
        "base_url": 'http://127.0.0.1:9/v1?x="y"',
        "env_key": "LOCAL_KEY",
        "wire_api": "responses",
        "request_max_retries": 1,
        "stream_max_retries": 0,
    }
    assert spec.secrets == ["secret-1"]


def test_config_refuses_unknown_and_bad_keys() -> None:
    with pytest.raises(AdapterError, match="approval"):
        CodexAdapter({"approval": "never"})
    with pytest.raises(AdapterError):
        CodexAdapter({"sandbox": "none"})
    with pytest.raises(AdapterError):
        CodexAdapter({"provider_name": "bad name]"})
