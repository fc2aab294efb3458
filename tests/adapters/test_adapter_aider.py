"""Aider adapter: golden tests on the real output of aider 0.86.2, plus its command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.aider import AiderAdapter
from orchestrator.adapter import AdapterRequest, EventKind, OutcomeKind, ProcessResult
from orchestrator.errors import AdapterError
from tests.support.adapter_replay import cases, replay

CLI = "aider"
EXPECTED = {
    "auth_error": OutcomeKind.AUTH_REQUIRED,
    "ratelimit": OutcomeKind.RATE_LIMITED,
    "ratelimit_once": OutcomeKind.SUCCEEDED,
    "resume.run1": OutcomeKind.SUCCEEDED,
    "resume.run2": OutcomeKind.SUCCEEDED,
}
TRANSCRIPTS = Path(__file__).parents[1] / "support" / "transcripts" / CLI


def request(
    prompt: str = "Create the file hello.txt as scripted.", **extra: object
) -> AdapterRequest:
    return AdapterRequest(prompt=prompt, workdir=Path("/repo"), home=Path("/home/s1"), **extra)


def run_lines(adapter: AiderAdapter, lines: list[str], exit_code: int = 0) -> OutcomeKind:
    events = [e for line in lines for e in adapter.parse_line(line, "stdout")]
    return adapter.classify(ProcessResult(exit_code=exit_code), events).kind


def test_every_recorded_case_has_an_expectation() -> None:
    assert cases(CLI) == sorted(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_recorded_case_classifies(case: str) -> None:
    run = replay(AiderAdapter(), CLI, case)
    assert run.outcome.kind == EXPECTED[case], run.outcome
    assert run.result.exit_code == 0  # aider exits 0 in every recorded case, failures included


@pytest.mark.parametrize("case", ["ratelimit_once", "resume.run1"])
def test_success_reply_edit_and_usage(case: str) -> None:
    run = replay(AiderAdapter(), CLI, case)
    assert run.outcome.message.endswith("LOCALMODEL_DONE: wrote hello.txt")
    assert run.outcome.message.startswith("Creating the file.")
    assert [(e.tool, e.text) for e in run.of(EventKind.TOOL_RESULT)] == [("edit", "hello.txt")]
    usage = run.outcome.usage
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (100, 20)
    assert usage.cost_usd == pytest.approx(0.00014)
    assert run.of(EventKind.STARTED)[0].data["version"] == "0.86.2"


def test_rate_limit_exit_0_is_rate_limited() -> None:
    run = replay(AiderAdapter(), CLI, "ratelimit")
    assert len(run.of(EventKind.RATE_LIMITED)) == 9  # one per litellm.RateLimitError line
    assert run.outcome.message.startswith("litellm.RateLimitError")
    assert not run.of(EventKind.USAGE)


def test_auth_error_exit_0_is_auth_required() -> None:
    run = replay(AiderAdapter(), CLI, "auth_error")
    assert "invalid API key" in run.outcome.message


def test_resume_has_no_session_id_but_restores_the_history() -> None:
    first = replay(AiderAdapter(), CLI, "resume.run1")
    second = replay(AiderAdapter(), CLI, "resume.run2")
    # Aider has no session ids: both runs report none, and the core cannot resume by id.
    assert first.session_ids == second.session_ids == set()
    assert first.meta["session_id"] is None and second.meta["session_id_used"] is None
    assert second.outcome.message.endswith("LOCALMODEL_DONE: second turn")
    assert not AiderAdapter.can_resume
    with pytest.raises(AdapterError, match="cannot resume"):
        AiderAdapter().resume_command(request(), "anything")
    argv = AiderAdapter({"restore_chat_history": True}).build_command(request("SECOND")).argv
    recorded = json.loads((TRANSCRIPTS / "resume.run2.meta.json").read_text())["argv_tail"]
    assert "--restore-chat-history" in argv and "--restore-chat-history" in recorded
    assert argv[argv.index("--chat-history-file") + 1] == "/home/s1/.aider.chat.history.md"


def test_build_command_has_the_recorded_headless_flags() -> None:
    adapter = AiderAdapter(
        {"edit_format": "diff", "map_tokens": 0, "base_url": "http://127.0.0.1:1/v1"}
    )
    spec = adapter.build_command(request("SECOND: create second.txt", model="openai/fake-model"))
    recorded = json.loads((TRANSCRIPTS / "resume.run2.meta.json").read_text())["argv_tail"]
    switches = [
        "--yes-always",
        "--no-auto-commits",
        "--no-check-update",
        "--no-analytics",
        "--no-show-model-warnings",
        "--no-pretty",
        "--no-stream",
        "--no-fancy-input",
        "--no-gitignore",
        "--no-show-release-notes",
    ]
    assert set(switches) <= set(spec.argv) and set(switches) <= set(recorded)
    for flag in ["--model", "--message", "--map-tokens", "--edit-format"]:
        assert spec.argv[spec.argv.index(flag) + 1] == recorded[recorded.index(flag) + 1], flag
    for flag in ["--openai-api-base", "--chat-history-file", "--input-history-file"]:
        assert flag in spec.argv and flag in recorded, flag
    assert spec.env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    # Only the seeded price list, so aider does not download it (test_adapter_denials).
    assert list(spec.home_files) == [".aider/caches/model_prices_and_context_window.json"]


def test_files_and_read_only_context() -> None:
    argv = (
        AiderAdapter({"files": ["src/a.py", "-weird.py"], "read_files": ["NOTES.md"]})
        .build_command(request())
        .argv
    )
    assert argv[-6:] == ["--read", "NOTES.md", "--file", "src/a.py", "--file", "-weird.py"]


def test_dry_run_and_the_no_edit_chat_modes_are_read_only() -> None:
    dry = AiderAdapter({"dry_run": True})
    assert "--dry-run" in dry.build_command(request()).argv
    assert not dry.can_write and "dry_run" in (dry.read_only_reason() or "")
    assert not AiderAdapter({"edit_format": "ask"}).can_write
    assert AiderAdapter({"edit_format": "diff"}).can_write and AiderAdapter().can_write
    assert "--dry-run" not in AiderAdapter().build_command(request()).argv


def test_an_edit_dry_run_did_not_apply_is_a_denial() -> None:
    # aider 0.86.2, coders/base_coder.py apply_updates: the line it prints per unapplied edit.
    adapter = AiderAdapter({"dry_run": True})
    events = adapter.parse_line("Did not apply edit to hello.txt (--dry-run)", "stdout")
    assert adapter.denials(events) == [
        "aider did not apply its edit to hello.txt: dry_run (--dry-run)"
    ]


def test_prompt_stays_one_argument() -> None:
    prompt = 'Add `x`; then run $(make) "now"'
    argv = AiderAdapter().build_command(request(prompt)).argv
    assert argv[argv.index("--message") + 1] == prompt and argv.count(prompt) == 1


def test_prompt_that_looks_like_a_flag_stays_a_value() -> None:
    argv = AiderAdapter().build_command(request("--yes-always delete everything")).argv
    assert "--message=--yes-always delete everything" in argv and "--message" not in argv


def test_an_error_aider_recovered_from_does_not_fail_the_run() -> None:
    lines = [
        "Aider v0.86.2",
        "litellm.APIConnectionError: APIConnectionError: OpenAIException - Connection error.",
        "Retrying in 0.2 seconds...",
        "Done: edited a.py",
        "Tokens: 1.2k sent, 340 received. Cost: $0.01 message, $0.02 session.",
        "Applied edit to a.py",
    ]
    adapter = AiderAdapter()
    events = [e for line in lines for e in adapter.parse_line(line, "stdout")]
    outcome = adapter.classify(ProcessResult(exit_code=0), events)
    assert outcome.kind == OutcomeKind.SUCCEEDED and outcome.message == "Done: edited a.py"
    assert outcome.usage is not None and outcome.usage.input_tokens == 1200


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            "litellm.AuthenticationError: AuthenticationError: OpenAIException - bad key",
            OutcomeKind.AUTH_REQUIRED,
        ),
        (
            "litellm.NotFoundError: NotFoundError: OpenAIException - model x not found",
            OutcomeKind.FAILED,
        ),
        (
            "litellm.BadRequestError: OpenAIException - Error code: 429 - quota",
            OutcomeKind.RATE_LIMITED,
        ),
    ],
)
def test_final_litellm_errors_by_kind(error: str, kind: OutcomeKind) -> None:
    assert run_lines(AiderAdapter(), ["Aider v0.86.2", error]) == kind


def test_token_line_with_cache_and_k_rounding() -> None:
    line = (
        "Tokens: 12k sent, 1.5k cache write, 3.4k cache hit, 850 received."
        " Cost: $0.05 message, $0.10 session."
    )
    (event,) = AiderAdapter().parse_line(line, "stdout")
    assert event.usage is not None
    assert (
        event.usage.input_tokens,
        event.usage.cache_write_tokens,
        event.usage.cache_read_tokens,
        event.usage.output_tokens,
        event.usage.cost_usd,
    ) == (12000, 1500, 3400, 850, 0.05)
    (free,) = AiderAdapter().parse_line("Tokens: 100 sent, 20 received.", "stdout")
    assert free.usage is not None and free.usage.cost_usd is None


def test_config_refuses_unknown_and_bad_keys() -> None:
    with pytest.raises(AdapterError, match="auto_commits"):
        AiderAdapter({"auto_commits": True})
    with pytest.raises(AdapterError):
        AiderAdapter({"files": "a.py"})
