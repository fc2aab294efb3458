"""A run that an event settles ends at that event (real processes): a refused key stops a CLI
that would go on retrying it, a rate limit does where the adapter says its CLI's retries cannot
be capped; and a resume the CLI refuses is run again as a fresh session with the same prompt."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import replace
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
    run = await run_cli(  # the CLI hangs: not stopped, this would hang to pytest's timeout
        FakeAdapter({"argv": cli.argv()}), _request(tmp_path), log_dir=tmp_path / "logs", grace=1
    )
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
    # ``log_name``'s ``-<pid>-<n>.log``: in the order written, whichever the counter's digits
    logs = sorted((tmp_path / "l").iterdir(), key=lambda log: int(log.stem.rsplit("-", 1)[1]))
    assert len(logs) == 2 and "--resume native-1" in logs[0].read_text()
    assert "--resume" not in logs[1].read_text().split("# argv: ")[1].splitlines()[0]


async def test_a_continued_prompt_goes_to_the_resume_and_the_whole_one_to_a_fresh_session(
    tmp_path: Path,
) -> None:
    """A feedback round gives the conversation that goes on only what is new; the CLI refusing
    to go on, the fresh session gets the whole prompt (the task, then the feedback)."""
    plugins = load_plugins(entry_points=[])
    call = dataclasses.replace(_call(tmp_path), continued_prompt="only the feedback")
    ran = await call_phase_cli(
        _config(tmp_path, "no session found"), plugins, call, log_dir=tmp_path / "l"
    )
    assert ran.resume_refused == "native-1"
    assert ran.cli.outcome.message == "DONE fresh session, prompt: the task, with its handoff"
    first, _ = sorted((tmp_path / "l").iterdir())
    assert "--resume native-1 'only the feedback'" in first.read_text()


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


async def test_a_stop_that_comes_as_the_cli_exits_leaves_the_cli_its_own_end(
    tmp_path: Path,
) -> None:
    """A workstation resumed after a pause: its CLI finished meanwhile, and the fence's stop
    comes in the same instant as the exit. The CLI's own end stands (its result, not
    "cancelled"), so its finished work is never recorded as a phase cut short."""
    cancel = anyio.Event()
    cli = FakeCli(lines=[event_line("completed", "done: appended one line")])

    def paused_as_it_ends(event: AgentEvent) -> None:
        if event.kind is EventKind.COMPLETED:
            cancel.set()  # the stop is due ...
            time.sleep(0.5)  # ... and the loop, paused, sees it with the CLI's exit

    run = await run_cli(
        FakeAdapter({"argv": cli.argv()}),
        _request(tmp_path),
        log_dir=tmp_path / "logs",
        grace=1,
        on_event=paused_as_it_ends,
        cancel=cancel,
    )
    assert not run.result.cancelled and run.result.exit_code == 0
    assert run.outcome.kind is OutcomeKind.SUCCEEDED


async def test_a_new_session_in_place_of_a_refused_resume_starts_from_the_phase_start(
    tmp_path: Path,
) -> None:
    plugins = load_plugins(entry_points=[])
    restarts: list[int] = []

    async def restart() -> None:  # the workflow puts the phase's start back here
        restarts.append(len(list((tmp_path / "l").iterdir())))

    call = replace(_call(tmp_path), restart=restart)
    ran = await call_phase_cli(
        _config(tmp_path, "no session found"), plugins, call, log_dir=tmp_path / "l"
    )
    assert ran.resume_refused == "native-1"
    assert restarts == [1]  # once, after the refused resume, before the fresh session


async def test_an_adapter_that_cannot_resume_starts_from_the_phase_start(tmp_path: Path) -> None:
    plugins = load_plugins(entry_points=[])
    restarts: list[str] = []

    async def restart() -> None:
        restarts.append("put back")

    config = RunConfig.model_validate(
        {
            "repo": str(tmp_path),
            "adapters": {
                "preset": {
                    "type": "command",
                    "options": {
                        "binary": "python3",
                        "args": ["-c", "print('DONE')", "{prompt}"],
                    },
                }
            },
            "tasks": [{"id": "t", "prompt": "p"}],
        }
    )
    call = replace(_call(tmp_path), restart=restart)
    ran = await call_phase_cli(config, plugins, call, log_dir=tmp_path / "l")
    assert ran.resumed is None and restarts == ["put back"]
