"""Ollama adapter, tested against its documented behaviour.

There is no recorded transcript: the Ollama server could not be installed where the reference
recordings were made (see ``cli-facts.md``, "Ollama (D only)"). The output below follows the
documented shapes of ``ollama run``: the answer on stdout, "Error: ..." on stderr with a
non-zero exit, and with ``--verbose`` the timing block on stderr.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.ollama import OllamaAdapter
from orchestrator.adapter import (
    AdapterRequest,
    AgentEvent,
    EventKind,
    Outcome,
    OutcomeKind,
    ProcessResult,
)
from orchestrator.errors import AdapterError

VERBOSE_STATS = [
    "total duration:       2.010458s",
    "load duration:        21.31ms",
    "prompt eval count:    26 token(s)",
    "prompt eval duration: 95.1ms",
    "prompt eval rate:     273.34 tokens/s",
    "eval count:           298 token(s)",
    "eval duration:        1.88s",
    "eval rate:            158.46 tokens/s",
]


def request(prompt: str = "Explain the diff.", **extra: object) -> AdapterRequest:
    return AdapterRequest(prompt=prompt, workdir=Path("/repo"), home=Path("/home/s1"), **extra)


def run(stdout: list[str], stderr: list[str], exit_code: int) -> tuple[list[AgentEvent], Outcome]:
    adapter = OllamaAdapter({"model": "llama3.2"})
    events = [e for line in stdout for e in adapter.parse_line(line, "stdout")]
    events += [e for line in stderr for e in adapter.parse_line(line, "stderr")]
    return events, adapter.classify(ProcessResult(exit_code=exit_code), events)


def test_answer_and_verbose_usage() -> None:
    spinner = "\x1b[?25l\u280b \x1b[?25h\x1b[?25l\u2819 \x1b[?25h"
    events, outcome = run(
        ["Here is the plan:", "", "1. read the diff", "2. \x1b[1msummarise\x1b[0m it"],
        [spinner, *VERBOSE_STATS],
        0,
    )
    assert outcome.kind == OutcomeKind.SUCCEEDED
    assert outcome.message == "Here is the plan:\n\n1. read the diff\n2. summarise it"
    assert outcome.usage is not None
    assert (outcome.usage.input_tokens, outcome.usage.output_tokens) == (26, 298)
    assert outcome.usage.cost_usd is None
    assert not [e for e in events if e.kind == EventKind.RAW]  # spinner and timings dropped


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("Error: model 'nope' not found, try pulling it first", OutcomeKind.FAILED),
        ("Error: could not connect to ollama app, is it running?", OutcomeKind.FAILED),
        ("Error: unauthorized", OutcomeKind.AUTH_REQUIRED),
        (
            "Error: you've reached your session usage limit, please wait or upgrade to continue",
            OutcomeKind.RATE_LIMITED,
        ),
        ("Error: 429 Too Many Requests", OutcomeKind.RATE_LIMITED),
    ],
)
def test_errors_by_kind(error: str, kind: OutcomeKind) -> None:
    _, outcome = run([], [error], 1)
    assert outcome.kind == kind and outcome.message == error


def test_error_text_with_exit_0_still_fails() -> None:
    _, outcome = run([], ["Error: model 'nope' not found, try pulling it first"], 0)
    assert outcome.kind == OutcomeKind.FAILED


def test_a_refused_sign_in_exits_0_but_is_auth_required() -> None:
    # `ollama run` prints this on stdout and exits 0 when the server answers 401 (cmd/cmd.go,
    # handleCloudAuthorizationError, v0.33).
    stdout = [
        "You need to be signed in to Ollama to run Cloud models.",
        "",
        "If your browser did not open, navigate to:",
        "    https://ollama.com/connect?name=host&key=abc",
    ]
    _, outcome = run(stdout, [], 0)
    assert outcome.kind == OutcomeKind.AUTH_REQUIRED
    assert "signed in" in (outcome.message or "")


def test_build_command() -> None:
    adapter = OllamaAdapter({"model": "llama3.2", "host": "127.0.0.1:11500", "keepalive": "10m"})
    spec = adapter.build_command(request('What\'s in $(ls)? "quoted"'))
    assert spec.argv == [
        "ollama",
        "run",
        "llama3.2",
        "--nowordwrap",
        "--verbose",
        "--keepalive",
        "10m",
        'What\'s in $(ls)? "quoted"',
    ]
    assert spec.env == {"OLLAMA_HOST": "127.0.0.1:11500"} and spec.stdin is None
    assert spec.home_files == {}


def test_request_model_wins_and_options_become_flags() -> None:
    adapter = OllamaAdapter(
        {
            "model": "llama3.2",
            "verbose": False,
            "format_json": True,
            "think": "low",
            "hide_thinking": True,
        }
    )
    argv = adapter.build_command(request(model="qwen3:8b")).argv
    assert argv == [
        "ollama",
        "run",
        "qwen3:8b",
        "--nowordwrap",
        "--format",
        "json",
        "--think=low",
        "--hidethinking",
        "Explain the diff.",
    ]


def test_prompt_that_looks_like_a_flag_goes_through_stdin() -> None:
    spec = OllamaAdapter({"model": "m"}).build_command(request("--format json please"))
    assert spec.stdin == "--format json please" and spec.argv[-1] == "--verbose"


def test_a_model_is_required() -> None:
    with pytest.raises(AdapterError, match="no model"):
        OllamaAdapter().build_command(request())


def test_no_resume_and_no_edits() -> None:
    assert not OllamaAdapter.can_resume and not OllamaAdapter.edits_files
    with pytest.raises(AdapterError, match="cannot resume"):
        OllamaAdapter({"model": "m"}).resume_command(request(), "x")


def test_config_refuses_unknown_and_bad_keys() -> None:
    with pytest.raises(AdapterError, match="temperature"):
        OllamaAdapter({"temperature": 0.2})
    with pytest.raises(AdapterError):
        OllamaAdapter({"think": "maximum"})
