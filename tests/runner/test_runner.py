"""run_cli with real processes: environment, secrets, timeouts, signals, cancellation, orphans."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from adapters.scripted import Scripted
from orchestrator.adapter import (
    AdapterRequest,
    AgentEvent,
    EventKind,
    OutcomeKind,
    Stream,
)
from orchestrator.errors import AdapterError, PathEscapeError, RunError
from orchestrator.runner.cli_run import CliRun, run_cli
from orchestrator.runner.version import cli_version, version_answer, version_line
from orchestrator.testing.fake_cli import FakeAdapter, FakeCli, event_line
from tests.support.cli_process_helpers import alive, wait_gone
from tests.support.timing import patience

CANARY = "canary-7f3e9a41-do-not-leak"
RunFake = Callable[..., Awaitable[CliRun]]


def pids_in(pidfile: Path) -> list[int]:
    return [int(pid) for pid in pidfile.read_text().split()]


@pytest.fixture
def pidfile(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pids"
    yield path
    # A failing test must not leave sleepers behind for the rest of the suite.
    if path.exists():
        for pid in pids_in(path):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def run_fake(tmp_path: Path, workdir: Path) -> RunFake:
    async def run(
        cli: FakeCli | None = None,
        *,
        options: dict[str, Any] | None = None,
        prompt: str = "do the thing",
        env: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> CliRun:
        options = dict(options or {})
        if cli is not None:
            options["argv"] = cli.argv()
        request = AdapterRequest(
            prompt=prompt,
            workdir=workdir,
            home=tmp_path / "home",
            task_id="t1",
            env=env or {},
        )
        kwargs.setdefault("log_dir", tmp_path / "logs")
        return await run_cli(FakeAdapter(options), request, **kwargs)

    return run


def texts(run: CliRun, kind: EventKind = EventKind.RAW) -> list[str]:
    return [event.text for event in run.events if event.kind is kind]


# -- a run, end to end -------------------------------------------------------------------------


async def test_events_outcome_log_and_live_callback(run_fake: RunFake) -> None:
    cli = FakeCli(
        lines=[
            event_line("started", native_session_id="native-1"),
            event_line("message", "hello"),
            event_line("completed", "all done"),
        ],
        stderr=["a warning"],
    )
    seen: list[AgentEvent] = []
    run = await run_fake(cli, on_event=seen.append)
    assert run.outcome.kind is OutcomeKind.SUCCEEDED and run.outcome.message == "all done"
    assert run.native_session_id == "native-1"
    kinds = [event.kind for event in run.events]
    assert kinds == [EventKind.STARTED, EventKind.MESSAGE, EventKind.COMPLETED, EventKind.RAW]
    assert seen == run.events
    assert (run.lines, run.truncated_lines, run.dropped_events) == (4, 0, 0)
    assert run.result.exit_code == 0 and run.result.signal is None
    assert run.result.stderr_tail == "a warning"
    log = run.log_path.read_text()
    assert run.log_path.parent.name == "logs" and run.log_path.name.startswith("t1-build-")
    assert "# argv: " in log and "stderr| a warning" in log
    assert 'stdout| {"event": {"kind": "completed"' in log
    assert log.rstrip().endswith("outcome=succeeded")


async def test_exit_zero_with_an_error_event_is_not_success(run_fake: RunFake) -> None:
    cli = FakeCli(lines=[event_line("error", "API Error: 500", error_kind="api")])
    run = await run_fake(cli)
    assert run.result.exit_code == 0
    assert run.outcome.kind is OutcomeKind.FAILED and "API Error: 500" in run.outcome.message


async def test_no_shell_sees_the_prompt_and_stdin_is_closed(
    run_fake: RunFake, workdir: Path
) -> None:
    prompt = "$(touch pwned) `touch pwned2`; touch pwned3 && echo 'x' \"y\" > out"
    run = await run_fake(FakeCli(echo_argv=True, read_stdin=True), prompt=prompt)
    lines = texts(run)
    assert lines[0] == "argv=" + json.dumps(["--prompt", prompt])
    assert lines[1] == "stdin=''"
    assert sorted(path.name for path in workdir.iterdir()) == []


async def test_stdin_is_fed_then_closed(run_fake: RunFake) -> None:
    run = await run_fake(FakeCli(read_stdin=True), options={"stdin": "line one\nline two"})
    assert texts(run) == ["stdin='line one\\nline two'"]


async def test_private_home_and_an_allow_listed_environment(
    run_fake: RunFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNLISTED_PARENT_VAR", "leaks")
    monkeypatch.setenv("FAKE_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    names = [
        "HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
        "XDG_STATE_HOME",
        "CODEX_HOME",
        "TMPDIR",
        "UNLISTED_PARENT_VAR",
        "FAKE_BASE_URL",
        "LC_ALL",
        "ADAPTER_OVERLAY",
        "FROM_CONFIG",
        "PATH",
    ]
    run = await run_fake(
        FakeCli(echo_env=names),
        options={"passthrough_env": ["FAKE_BASE_URL"], "env": {"ADAPTER_OVERLAY": "a"}},
        env={"FROM_CONFIG": "c", "HOME": "/not/private"},
    )
    seen = dict(line.split("=", 1) for line in texts(run) if "=" in line)
    home = tmp_path / "home"
    assert seen["HOME"] == str(home)
    for name in names[1:7]:
        assert Path(seen[name]).is_relative_to(home) and Path(seen[name]).is_dir(), name
    assert "UNLISTED_PARENT_VAR unset" in texts(run)
    assert seen["FAKE_BASE_URL"] == "http://127.0.0.1:9" and seen["LC_ALL"] == "C.UTF-8"
    assert (seen["ADAPTER_OVERLAY"], seen["FROM_CONFIG"]) == ("a", "c")
    assert seen["PATH"] == os.environ["PATH"]


async def test_home_files_are_written_privately_and_cannot_escape(
    run_fake: RunFake, tmp_path: Path
) -> None:
    files = {".config/cli/settings.json": '{"key": 1}'}
    await run_fake(FakeCli(), options={"home_files": files})
    written = tmp_path / "home" / ".config" / "cli" / "settings.json"
    assert written.read_text() == '{"key": 1}' and written.stat().st_mode & 0o777 == 0o600
    with pytest.raises(PathEscapeError, match=r"'\.\./escaped\.txt'"):
        await run_fake(FakeCli(), options={"home_files": {"../escaped.txt": "x"}})
    (tmp_path / "outside").mkdir()
    (tmp_path / "home" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(PathEscapeError, match="'link' on the way is a symbolic link"):
        await run_fake(FakeCli(), options={"home_files": {"link/x.txt": "x"}})
    assert not (tmp_path / "escaped.txt").exists() and not list((tmp_path / "outside").iterdir())


async def test_secrets_never_reach_the_log_events_or_displayed_argv(
    run_fake: RunFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_API_KEY", CANARY)
    spec_secret = "sk-spec-secret-5521"
    config_secret = "tok-config-secret-8873"
    cli = FakeCli(
        echo_env=["FAKE_API_KEY", "MY_TOKEN"],
        lines=[
            event_line("message", f"my key is {CANARY}", data={"key": CANARY}),
            event_line("completed", f"used {spec_secret} and {config_secret}"),
        ],
        stderr=[f"debug: Authorization: Bearer {CANARY}"],
    )
    options = {
        "argv": [*cli.argv(), f"--api-key={spec_secret}"],
        "passthrough_env": ["FAKE_API_KEY"],
        "secrets": [spec_secret],
    }
    seen: list[AgentEvent] = []
    run = await run_fake(options=options, env={"MY_TOKEN": config_secret}, on_event=seen.append)
    visible = "\n".join(
        [
            run.log_path.read_text(),
            json.dumps([event.model_dump(mode="json") for event in [*run.events, *seen]]),
            run.result.stderr_tail,
            run.outcome.message,
            " ".join(run.argv),
        ]
    )
    for secret in (CANARY, spec_secret, config_secret):
        assert secret not in visible
    assert "FAKE_API_KEY=***" in visible and "--api-key=***" in run.argv
    assert run.outcome.message == "used *** and ***"


# -- stopping a CLI ----------------------------------------------------------------------------


async def test_timeout_kills_a_term_ignoring_cli_and_its_children_within_grace(
    run_fake: RunFake, pidfile: Path
) -> None:
    cli = FakeCli(ignore_term=True, children=2, pidfile=pidfile, lines=["ready"], hang=True)
    run = await run_fake(cli, total_timeout=1.5, grace=0.5)  # not killed, it would hang
    assert run.outcome.kind is OutcomeKind.TIMED_OUT and run.result.timed_out
    assert run.result.signal == signal.SIGKILL  # it ignored SIGTERM
    assert "time limit" in run.outcome.message
    pids = pids_in(pidfile)
    assert len(pids) == 3 and wait_gone(pids, timeout=1.0) == []


async def test_a_child_that_left_the_group_is_found_and_killed(
    run_fake: RunFake, pidfile: Path
) -> None:
    cli = FakeCli(setsid_child=True, pidfile=pidfile, lines=["ready"], hang=True)
    run = await run_fake(cli, total_timeout=1.0, grace=0.3)
    assert run.outcome.kind is OutcomeKind.TIMED_OUT
    assert wait_gone(pids_in(pidfile), timeout=2.0) == []


async def test_idle_timeout(run_fake: RunFake) -> None:
    run = await run_fake(FakeCli(lines=["one line"], hang=True), idle_timeout=0.5, grace=0.5)
    assert run.outcome.kind is OutcomeKind.TIMED_OUT
    assert run.result.idle_timed_out and not run.result.timed_out
    assert "no output" in run.outcome.message


async def test_steady_output_is_not_idle(run_fake: RunFake) -> None:
    # Runs 1.8 s in all, longer than the idle limit; the limit leaves a loaded machine 1.2 s
    # to start the fake CLI's interpreter before its first line.
    cli = FakeCli(ticks=6, tick=0.3, lines=[event_line("completed", "done")])
    run = await run_fake(cli, idle_timeout=1.5)
    assert run.outcome.kind is OutcomeKind.SUCCEEDED and len(texts(run)) == 6


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
async def test_a_cli_killed_by_a_signal_crashed(run_fake: RunFake, sig: signal.Signals) -> None:
    run = await run_fake(FakeCli(lines=[event_line("started")], kill_self=sig))
    assert run.outcome.kind is OutcomeKind.CRASHED
    assert (run.result.exit_code, run.result.signal) == (None, sig)
    assert f"killed by signal {int(sig)}" in run.outcome.message


async def test_a_cancelled_run_leaves_no_process_behind(
    run_fake: RunFake, pidfile: Path, tmp_path: Path
) -> None:
    cli = FakeCli(ignore_term=True, children=2, pidfile=pidfile, lines=["ready"], hang=True)
    ready = anyio.Event()

    def on_event(event: AgentEvent) -> None:
        if event.text == "ready":
            ready.set()

    with anyio.move_on_after(patience(20)) as outer:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: run_fake(cli, grace=0.5, on_event=on_event))
            await ready.wait()
            tasks.cancel_scope.cancel()
    assert not outer.cancelled_caught
    assert wait_gone(pids_in(pidfile), timeout=1.0) == []
    (log,) = (tmp_path / "logs").iterdir()
    assert log.read_text().rstrip().endswith("cancelled: the orchestrator stopped this run")


async def test_the_cancel_event_stops_the_cli_and_reports_cancelled(
    run_fake: RunFake, pidfile: Path
) -> None:
    cli = FakeCli(children=1, pidfile=pidfile, lines=["ready"], hang=True)
    cancel = anyio.Event()

    def on_event(event: AgentEvent) -> None:
        if event.text == "ready":
            cancel.set()

    run = await run_fake(cli, cancel=cancel, on_event=on_event, grace=0.5)
    assert run.outcome.kind is OutcomeKind.CANCELLED and run.result.cancelled
    assert wait_gone(pids_in(pidfile), timeout=1.0) == []


async def test_cancelling_the_caller_kills_at_once_even_during_a_graceful_stop(
    run_fake: RunFake, pidfile: Path
) -> None:
    """The orchestrator's second Ctrl-C: the cancel event began a graceful stop whose grace
    period (ten minutes here) the CLI, ignoring SIGTERM, would wait out; cancelling the caller
    then SIGKILLs it at once instead of waiting for the rest of the grace period."""
    cli = FakeCli(ignore_term=True, children=1, pidfile=pidfile, lines=["ready"], hang=True)
    cancel = anyio.Event()
    ready = anyio.Event()

    def on_event(event: AgentEvent) -> None:
        if event.text == "ready":
            ready.set()

    with anyio.move_on_after(patience(60)) as outer:  # an upper bound, far below the grace period
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: run_fake(cli, grace=600, cancel=cancel, on_event=on_event))
            await ready.wait()
            cancel.set()  # the graceful stop: SIGTERM, ignored
            await anyio.sleep(0.2)
            assert all(map(alive, pids_in(pidfile)))  # still waiting out its grace
            tasks.cancel_scope.cancel()
    assert not outer.cancelled_caught
    assert wait_gone(pids_in(pidfile), timeout=5.0) == []


async def test_daemons_forked_by_a_cli_die_when_it_exits(run_fake: RunFake, pidfile: Path) -> None:
    # The children ignore SIGTERM, sleep for an hour and hold stdout open: a run that waited
    # for them would hang to pytest's timeout.
    cli = FakeCli(children=2, pidfile=pidfile, lines=[event_line("completed", "done")])
    run = await run_fake(cli)
    assert run.outcome.kind is OutcomeKind.SUCCEEDED
    assert wait_gone(pids_in(pidfile), timeout=1.0) == []


async def test_a_setsid_daemon_dies_with_its_finished_cli(run_fake: RunFake, pidfile: Path) -> None:
    # Found after the CLI exited by the mark in its environment, not by ancestry.
    cli = FakeCli(setsid_child=True, pidfile=pidfile, lines=[event_line("completed", "done")])
    run = await run_fake(cli)
    assert run.outcome.kind is OutcomeKind.SUCCEEDED
    assert wait_gone(pids_in(pidfile), timeout=2.0) == []


async def test_a_setsid_daemon_without_the_mark_is_found_where_it_works_and_reported(
    run_fake: RunFake, pidfile: Path
) -> None:
    # It dropped its environment (no mark) and left the group, but it works in the CLI's
    # directory: found there once the CLI exited, stopped, and named in the run.
    cli = FakeCli(
        setsid_child=True, bare_env=True, pidfile=pidfile, lines=[event_line("completed", "done")]
    )
    run = await run_fake(cli)  # waited for the daemon, it would hang to pytest's timeout
    assert run.outcome.kind is OutcomeKind.SUCCEEDED
    leader, escaped = pids_in(pidfile)
    assert wait_gone([leader, escaped], timeout=2.0) == []
    assert [line.split(":")[0] for line in run.survivors] == [f"pid {escaped}"]


# -- starting a CLI ----------------------------------------------------------------------------


async def test_a_missing_binary_is_an_adapter_error(run_fake: RunFake, tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="'no-such-cli-xyz' not found"):
        await run_fake(options={"argv": ["no-such-cli-xyz"]})
    (log,) = (tmp_path / "logs").iterdir()
    assert "not started" in log.read_text()


async def test_a_missing_working_directory_is_a_run_error(tmp_path: Path, workdir: Path) -> None:
    request = AdapterRequest(prompt="x", workdir=tmp_path / "gone", home=tmp_path / "home")
    with pytest.raises(RunError, match=r"working directory .*gone does not exist"):
        await run_cli(FakeAdapter(), request, log_dir=tmp_path / "logs")


async def test_an_unwritable_log_directory_stops_the_cli_and_says_so(
    run_fake: RunFake, tmp_path: Path, pidfile: Path
) -> None:
    (tmp_path / "not-a-dir").write_text("")
    cli = FakeCli(children=1, pidfile=pidfile, lines=["ready"], hang=True)
    with pytest.raises(RunError, match="cannot write the run's log"):
        await run_fake(cli, log_dir=tmp_path / "not-a-dir" / "logs", grace=0.3)
    if pidfile.exists():  # the CLI may have been stopped before it wrote its pids
        assert wait_gone(pids_in(pidfile), timeout=1.0) == []


async def test_resume_runs_the_resume_command(run_fake: RunFake) -> None:
    run = await run_fake(FakeCli(echo_argv=True), prompt="go on", resume_session_id="n-42")
    assert texts(run)[0] == "argv=" + json.dumps(["--resume", "n-42", "--prompt", "go on"])


async def test_a_parser_that_raises_does_not_break_the_run(
    tmp_path: Path, workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Buggy(FakeAdapter):
        def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
            if "boom" in line:
                raise KeyError("type")
            return super().parse_line(line, stream)

    cli = FakeCli(lines=["boom", "boom again", event_line("completed", "ok")])
    request = AdapterRequest(prompt="x", workdir=workdir, home=tmp_path / "home")
    run = await run_cli(Buggy({"argv": cli.argv()}), request, log_dir=tmp_path / "logs")
    assert run.outcome.kind is OutcomeKind.SUCCEEDED
    errors = [event.data.get("parse_error") for event in run.events if event.kind is EventKind.RAW]
    assert errors == ["KeyError: 'type'", "KeyError: 'type'"]
    assert caplog.text.count("parse_line raised KeyError") == 1


async def test_an_exception_in_on_event_is_logged_and_the_run_goes_on(
    run_fake: RunFake, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(event: AgentEvent) -> None:
        raise ValueError("the live table broke")

    cli = FakeCli(lines=["one", "two", event_line("completed", "done")])
    run = await run_fake(cli, on_event=explode)
    assert run.outcome.kind is OutcomeKind.SUCCEEDED and len(run.events) == 3
    assert caplog.text.count("on_event callback raised") == 1
    assert "the live table broke" in caplog.text


# -- versions ----------------------------------------------------------------------------------


async def test_cli_version() -> None:
    assert await cli_version(Scripted()) == "scripted-cli 1.0.0 (cli-council)"
    assert await cli_version(FakeAdapter(executable="no-such-cli-xyz")) is None

    class Hanging(FakeAdapter):
        def version_command(self) -> list[str]:
            return [sys.executable, "-c", "import time; time.sleep(3600)"]  # waited: a hang

    assert await cli_version(Hanging(), timeout=0.5) is None
    # A hung version command says so, not "failed" (which reads as "reinstall").
    hung = await version_answer(Hanging(), timeout=0.5)
    assert hung.version is None and hung.timed_out_after == 0.5
    assert hung.failure("gemini --version") == "'gemini --version' timed out after 0.5 s"
    broken = await version_answer(FakeAdapter(executable="false"))
    assert (
        broken.timed_out_after is None and broken.failure("x --version") == "'x --version' failed"
    )


def test_the_version_is_the_first_line_that_looks_like_one() -> None:
    # codex 0.169.0 with HOME under /tmp prints a WARNING line first (measured).
    warned = (
        "WARNING: proceeding, even though we could not create PATH aliases: Refusing to create "
        'helper binaries under temporary dir "/tmp" (codex_home: AbsolutePathBuf("/tmp/1.2.3"))\n'
        "codex-cli 0.169.0\n"
    )
    assert version_line(warned) == "codex-cli 0.169.0"
    assert version_line("\n2.1.330 (Claude Code)\n") == "2.1.330 (Claude Code)"
    assert version_line("something odd\n") == "something odd"  # no version: still the line
    assert version_line("  \n") is None
