"""A run that an event settles ends at that event (real processes): a refused key stops a CLI
that would go on retrying it, a rate limit does where the adapter says its CLI's retries cannot
be capped; and a resume the CLI refuses is run again as a fresh session with the same prompt."""

from __future__ import annotations

import time
from pathlib import Path

import anyio

from orchestrator.adapter import AdapterRequest, AgentEvent, EventKind, OutcomeKind
from orchestrator.config.run import RunConfig
from orchestrator.plugins.host import load_plugins
from orchestrator.runner.cli_run import run_cli
from orchestrator.runner.phase import call_phase_cli
from orchestrator.runner.phase_call import PhaseCall
from orchestrator.testing.fake_cli import FakeAdapter, FakeCli, event_line


def _request(tmp_path: Path) -> AdapterRequest:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return AdapterRequest(prompt="go", workdir=workdir, home=tmp_path / "home", task_id="t")


async def test_an_auth_error_stops_a_cli_that_keeps_retrying(tmp_path: Path) -> None:
    # Like claude with a refused key: an auth error, then minutes of retries.
    refused = event_line("error", "HTTP 401, retry 1 of 10", error_kind="auth")
    cli = FakeCli(lines=[event_line("started", native_session_id="s-1"), refused], hang=True)
    started = time.monotonic()
    run = await run_cli(
        FakeAdapter({"argv": cli.argv()}), _request(tmp_path), log_dir=tmp_path / "logs", grace=1
    )
    assert time.monotonic() - started < 10
    assert run.result.ended_early and not run.result.timed_out and not run.result.cancelled
    assert run.outcome.kind is OutcomeKind.AUTH_REQUIRED
    assert run.outcome.message == "HTTP 401, retry 1 of 10"
    assert run.outcome.native_session_id == "s-1"
    assert "outcome=auth_required" in run.log_path.read_text()


class StopsAtRateLimits(FakeAdapter):
    """A CLI whose own 429 retries no option caps (aider, opencode)."""

    def ends_run(self, event: AgentEvent) -> bool:
        return event.kind is EventKind.RATE_LIMITED or super().ends_run(event)


async def test_a_rate_limit_ends_the_run_where_the_adapter_says_so(tmp_path: Path) -> None:
    limited = event_line("rate_limited", "429, retrying in 0.2 seconds")
    cli = FakeCli(lines=[limited], hang=True)
    request = _request(tmp_path)
    stopped = await run_cli(
        StopsAtRateLimits({"argv": cli.argv()}), request, log_dir=tmp_path / "logs", grace=1
    )
    assert stopped.result.ended_early and stopped.outcome.kind is OutcomeKind.RATE_LIMITED
    # The default leaves rate limits to the CLI's own (capped) retries: the time limit ends it.
    waited = await run_cli(
        FakeAdapter({"argv": cli.argv()}),
        request,
        log_dir=tmp_path / "logs",
        total_timeout=1.5,
        grace=1,
    )
    assert not waited.result.ended_early and waited.result.timed_out


async def test_an_ends_run_that_raises_lets_the_run_go_on(tmp_path: Path) -> None:
    class Buggy(FakeAdapter):
        def ends_run(self, event: AgentEvent) -> bool:
            raise RuntimeError("bug")

    cli = FakeCli(lines=[event_line("completed", "done")])
    run = await run_cli(Buggy({"argv": cli.argv()}), _request(tmp_path), log_dir=tmp_path / "l")
    assert run.outcome.kind is OutcomeKind.SUCCEEDED and not run.result.ended_early


# A CLI (the command preset) that refuses to resume any session, like gemini after a 429.
_REFUSING_CLI = """
import sys
if "--resume" in sys.argv:
    print("Error resuming session: no session found", file=sys.stderr)
    sys.exit(42)
print("DONE fresh session, prompt: " + sys.argv[-1])
"""


def _config(tmp_path: Path, pattern: str | None) -> RunConfig:
    options = {
        "binary": "python3",
        "args": ["-c", _REFUSING_CLI, "{prompt}"],
        "resume_args": ["-c", _REFUSING_CLI, "--resume", "{session_id}", "{prompt}"],
        "success_pattern": "^DONE",
    }
    if pattern is not None:
        options["resume_refused_pattern"] = pattern
    return RunConfig.model_validate(
        {
            "repo": str(tmp_path),
            "adapters": {"preset": {"type": "command", "options": options}},
            "tasks": [{"id": "t", "prompt": "p"}],
        }
    )


def _call(tmp_path: Path) -> PhaseCall:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return PhaseCall(
        task_id="t",
        phase="build",
        adapter="preset",
        prompt="the task, with its handoff",
        workdir=workdir,
        home_root=tmp_path / "homes",
        session_id="s",
        resume_session_id="native-1",
    )


async def test_a_refused_resume_runs_again_as_a_fresh_session(tmp_path: Path) -> None:
    plugins = load_plugins(entry_points=[])
    ran = await call_phase_cli(
        _config(tmp_path, "no session found"), plugins, _call(tmp_path), log_dir=tmp_path / "l"
    )
    assert ran.resume_refused == "native-1" and ran.resumed is None
    assert ran.cli.outcome.kind is OutcomeKind.SUCCEEDED
    assert ran.cli.outcome.message == "DONE fresh session, prompt: the task, with its handoff"
    logs = sorted((tmp_path / "l").iterdir())
    assert len(logs) == 2 and "--resume native-1" in logs[0].read_text()
    assert "--resume" not in logs[1].read_text().split("# argv: ")[1].splitlines()[0]


async def test_without_the_pattern_a_refused_resume_is_the_failure_it_was(
    tmp_path: Path,
) -> None:
    plugins = load_plugins(entry_points=[])
    ran = await call_phase_cli(
        _config(tmp_path, None), plugins, _call(tmp_path), log_dir=tmp_path / "l"
    )
    assert ran.resume_refused is None and ran.resumed == "native-1"
    assert ran.cli.outcome.kind is OutcomeKind.FAILED


async def test_a_cancelled_phase_is_not_run_again(tmp_path: Path) -> None:
    plugins = load_plugins(entry_points=[])
    cancel = anyio.Event()
    cancel.set()
    ran = await call_phase_cli(
        _config(tmp_path, "no session found"),
        plugins,
        _call(tmp_path),
        log_dir=tmp_path / "l",
        cancel=cancel,
    )
    assert ran.resume_refused is None and len(list((tmp_path / "l").iterdir())) == 1
