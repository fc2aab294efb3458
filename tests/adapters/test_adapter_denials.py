"""Denials and read-only modes of every built-in adapter, on real output of the real CLIs.

Each recording (``tests/support/transcripts/denials/<cli>/``, see its README) was made with the
command the adapter builds from the options in its meta file. For each: the outcome the
adapter classifies, what ``denials`` reports, and whether ``can_write`` holds for those
options. A build that changed nothing after a denial, or through an adapter that cannot
write, is ``permission_denied`` (``tests/workflow/test_workflow_denials.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.aider import AiderAdapter
from adapters.claude_code import ClaudeCodeAdapter
from adapters.codex import CodexAdapter
from adapters.gemini import GeminiAdapter
from adapters.opencode import OpencodeAdapter
from adapters.qwen import QwenAdapter
from orchestrator.adapter import Adapter, AdapterRequest, OutcomeKind
from orchestrator.runner.config_merge import render
from tests.support.adapter_replay import cases, replay

TRANSCRIPTS = Path(__file__).parents[1] / "support" / "transcripts"
ADAPTERS: dict[str, type[Adapter]] = {
    "aider": AiderAdapter,
    "claude": ClaudeCodeAdapter,
    "codex": CodexAdapter,
    "gemini": GeminiAdapter,
    "opencode": OpencodeAdapter,
    "qwen": QwenAdapter,
}


@dataclass(frozen=True)
class Expected:
    outcome: OutcomeKind
    can_write: bool
    denial: str | None  # a piece of the first denial; None: no denial reported


DENIED = OutcomeKind.PERMISSION_DENIED
EXPECTED: dict[str, Expected] = {
    "aider/gitignored_edit": Expected(DENIED, True, "refused to edit build/out.txt"),
    "claude/default_mode": Expected(DENIED, False, "you haven't granted it yet"),
    "claude/plan_mode": Expected(DENIED, False, "while in plan mode"),
    "gemini/default_mode": Expected(OutcomeKind.SUCCEEDED, False, None),
    "gemini/plan_mode": Expected(DENIED, False, "Access denied: plan path"),
    "opencode/ask_edit": Expected(DENIED, False, "rejected permission"),
    "opencode/auto_approve": Expected(OutcomeKind.SUCCEEDED, True, None),
    "opencode/plan_agent": Expected(DENIED, False, "rule which prevents you"),
    "qwen/approval_auto": Expected(DENIED, False, "permission denied: write_file"),
    "qwen/approval_default": Expected(DENIED, False, "permission denied: write_file"),
    "qwen/approval_plan": Expected(DENIED, False, "permission denied: write_file"),
    "qwen/approval_yolo": Expected(OutcomeKind.SUCCEEDED, True, None),
    "qwen/auto_no_attempt": Expected(
        OutcomeKind.SUCCEEDED, False, "approval mode 'auto' without edit or shell tools"
    ),
}


def meta(cli: str, case: str) -> dict[str, Any]:
    return dict(json.loads((TRANSCRIPTS / "denials" / cli / f"{case}.meta.json").read_text()))


def adapter_for(key: str) -> Adapter:
    cli, case = key.split("/")
    return ADAPTERS[cli](meta(cli, case)["options"])


def test_every_recording_has_an_expectation() -> None:
    recorded = [f"{cli}/{case}" for cli in sorted(ADAPTERS) for case in cases(f"denials/{cli}")]
    assert recorded == sorted(EXPECTED)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_recorded_denial(key: str) -> None:
    cli, case = key.split("/")
    adapter, expected = adapter_for(key), EXPECTED[key]
    run = replay(adapter, f"denials/{cli}", case)
    assert run.result.exit_code == 0  # every one of them "succeeded" by its exit code
    assert run.outcome.kind == expected.outcome, run.outcome
    assert adapter.can_write is expected.can_write
    assert (adapter.read_only_reason() is None) is expected.can_write
    found = adapter.denials(run.events)
    if expected.denial is None:
        assert found == []
    else:
        assert found and expected.denial in found[0], found
    # aider's repo-map cache is no work: the orchestrator excludes it (test_worktrees_setup).
    wrote = [line for line in run.meta["git_status"] if ".aider.tags.cache" not in line]
    assert bool(wrote) is (expected.outcome == OutcomeKind.SUCCEEDED and expected.can_write)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_recorded_command_is_the_one_built(key: str) -> None:
    cli, case = key.split("/")
    tail = meta(cli, case)["argv_tail"]
    flag = "--model" if cli in ("claude", "aider") else "-m"
    request = AdapterRequest(
        prompt="Create the file hello.txt as scripted.",
        workdir=Path("/tmp/rec/repo"),
        home=Path("/tmp/rec/home"),
        model=tail[tail.index(flag) + 1],
    )
    built = adapter_for(key).build_command(request).argv[1:]
    if cli == "opencode":  # recorded before the adapter added its log on stderr (rate limits)
        assert built[1:4] == ["--print-logs", "--log-level", "ERROR"]
        del built[1:4]
    if cli == "qwen":  # recorded before the adapter named the session (its debug log: 429s)
        at = built.index("--session-id")
        del built[at : at + 2]
    assert built == tail


def test_codex_read_only_sandbox() -> None:
    adapter = CodexAdapter({"sandbox": "read-only"})
    run = replay(adapter, "codex", "readonly_sandbox")
    assert run.outcome.kind == DENIED
    assert not adapter.can_write and "read-only" in (adapter.read_only_reason() or "")
    assert any("read-only sandbox" in denial for denial in adapter.denials(run.events))
    assert CodexAdapter().can_write


def test_recorded_no_approval_runs_of_older_releases_cannot_write() -> None:
    # gemini 0.61 and qwen 0.15 in approval mode "default", the model never trying to write:
    # the run itself "succeeds"; the options (and qwen's init tool list) say it could not write.
    gemini = GeminiAdapter({"approval_mode": "default"})
    assert replay(gemini, "gemini", "no_approval").outcome.kind == OutcomeKind.SUCCEEDED
    assert not gemini.can_write
    qwen = QwenAdapter()  # even configured for yolo: the session said it had no edit tool
    run = replay(qwen, "qwen", "no_approval")
    assert qwen.can_write and run.outcome.kind == OutcomeKind.SUCCEEDED
    assert qwen.denials(run.events) == [
        "qwen started in approval mode 'default' without edit or shell tools"
    ]


def test_qwen_always_names_its_approval_mode() -> None:
    request = AdapterRequest(prompt="p", workdir=Path("/r"), home=Path("/h"))
    for mode in ("yolo", "auto-edit", "auto", "plan", "default"):
        argv = QwenAdapter({"approval_mode": mode}).build_command(request).argv
        assert argv[argv.index("--approval-mode") + 1] == mode  # 0.24 alone would pick "auto"
    assert QwenAdapter({"approval_mode": "auto-edit"}).can_write


def test_opencode_without_auto_approve_asks_for_edits_and_shell() -> None:
    request = AdapterRequest(prompt="p", workdir=Path("/r"), home=Path("/h"))
    spec = OpencodeAdapter({"auto_approve": False}).build_command(request)
    config = json.loads(render(spec.config_files[".config/opencode/council.json"]))
    assert config["permission"] == {"edit": "ask", "bash": "ask"}
    assert "--auto" not in spec.argv
    default = OpencodeAdapter().build_command(request)
    assert "permission" not in json.loads(
        render(default.config_files[".config/opencode/council.json"])
    )


@pytest.mark.parametrize(
    ("options", "can_write"),
    [
        ({}, True),
        ({"permission_mode": "plan"}, False),
        ({"permission_mode": "default"}, False),
        ({"permission_mode": "dontAsk"}, False),
        ({"permission_mode": "default", "allowed_tools": ["Write", "Edit"]}, True),
        ({"permission_mode": "dontAsk", "allowed_tools": ["Bash(git *)"]}, True),
        ({"permission_mode": "default", "allowed_tools": ["Read"]}, False),
        ({"permission_mode": "bypassPermissions"}, True),
    ],
)
def test_claude_can_write(options: dict[str, Any], can_write: bool) -> None:
    assert ClaudeCodeAdapter(options).can_write is can_write


def test_aider_price_list_is_seeded_in_home() -> None:
    request = AdapterRequest(prompt="p", workdir=Path("/r"), home=Path("/h"), model="openai/m")
    spec = AiderAdapter().build_command(request)
    seeded = json.loads(spec.home_files[".aider/caches/model_prices_and_context_window.json"])
    # Non-empty (an empty one is fetched again), naming no model (litellm's copy answers).
    assert isinstance(seeded, dict) and seeded and "openai/m" not in seeded and "m" not in seeded
    assert spec.env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
