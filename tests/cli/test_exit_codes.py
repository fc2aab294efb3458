"""One exit-code convention for every command, stated under ``council --help``: 0 all done, 1
some task did not land or some check failed, 2 usage or config error (a bad value, a name that
names nothing, a config naming a repository with no run), 130 interrupted. Each case is a real
``council`` process; its error is one line on stderr."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli.app import EXIT_CODES, CouncilGroup
from tests.support.cli_process_helpers import COUNCIL, ENV, council, wait_for
from tests.support.scheduler_helpers import new_repo
from tests.support.timing import patience

CONFIG = """\
repo: repo
adapters:
  alice: {type: scripted, options: {delay: 0}}
  ghost: {type: command, options: {binary: no-such-cli-xyz}}
default_adapter: alice
workflow: {phases: [{name: build}]}
retry: {max_retries: 0, backoff_initial: 0.05, backoff_max: 0.2}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}
tasks:
  - {id: lands, prompt: "WRITE lands.txt x"}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    new_repo(tmp_path)
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG)
    return path


def one_line_error(done: subprocess.CompletedProcess[str], *parts: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for part in parts:
        assert part in lines[0], lines[0]


def test_the_convention_is_in_the_root_help(tmp_path: Path) -> None:
    shown = council("--help", cwd=tmp_path)
    assert shown.returncode == 0
    assert " ".join(shown.stdout.split()).count(" ".join(EXIT_CODES.split())) == 1


def test_adapters_check_exits_1_when_a_check_fails_and_2_for_an_unknown_name(
    config: Path,
) -> None:
    # Surveying every adapter: a CLI not installed here, or a preset without its options, is
    # listed, not a failure; only an installed CLI whose check fails makes the exit code 1.
    survey = council("adapters", "check", "--json", cwd=config.parent)
    verdicts = [report["verdict"] for report in json.loads(survey.stdout)]
    assert "needs options" in verdicts  # the command preset, without a binary of its own
    assert set(verdicts) <= {"ok", "not installed", "needs options", "FAIL"}
    assert survey.returncode == (1 if "FAIL" in verdicts else 0)

    configured = council("adapters", "check", "--config", config, cwd=config.parent)
    assert configured.returncode == 1  # ghost's binary is missing
    assert council("adapters", "check", "alice", "-c", config, cwd=config.parent).returncode == 0

    unknown = council("adapters", "check", "nosuch", cwd=config.parent)
    assert unknown.returncode == 2
    one_line_error(unknown, "unknown adapter 'nosuch'", "known adapters: ", "claude_code")
    undeclared = council("adapters", "check", "bob", "-c", config, cwd=config.parent)
    assert undeclared.returncode == 2
    one_line_error(undeclared, "declares no adapter 'bob' (it declares: alice, ghost)")
    live = council("adapters", "check", "--live", "nosuch", cwd=config.parent)
    assert live.returncode == 2
    one_line_error(live, "no live check for 'nosuch'; there is one for: ")


def test_commands_on_a_config_with_no_run_are_usage_errors(config: Path) -> None:
    state = (config.parent / "repo").resolve() / ".council" / "state"
    for args in (
        ["status", config],
        ["checkpoint", "list", config],
        ["checkpoint", "create", config],
        ["checkpoint", "restore", config, "ck-nope"],
        ["worktrees", "list", config],
        ["worktrees", "prune", config],
        ["clean", config],
        ["cancel", config, "lands"],
        ["resume", config],
    ):
        done = council(*args, cwd=config.parent)
        assert done.returncode == 2, (args, done.stderr)
        one_line_error(done, str(state))
        assert not state.exists()


def test_after_a_run_unknown_names_exit_2_and_refusals_exit_1(config: Path) -> None:
    root = config.parent
    ran = council("run", config, "--json", cwd=root, timeout=120)
    assert ran.returncode == 0, ran.stderr

    restore = council("checkpoint", "restore", config, "ck-nope", cwd=root)
    assert restore.returncode == 2
    one_line_error(restore, "checkpoint 'ck-nope' does not exist")
    bad_id = council("checkpoint", "restore", config, "not an id", cwd=root)
    assert bad_id.returncode == 2
    one_line_error(bad_id, "checkpoint id")
    session = council("checkpoint", "list", config, "--session", "s-nope", cwd=root)
    assert session.returncode == 2
    one_line_error(session, "session 's-nope' does not exist")
    too_old = council("clean", config, "--older-than", "soon", cwd=root)
    assert too_old.returncode == 2
    one_line_error(too_old, "--older-than")
    missing = council("run", root / "nope.yaml", cwd=root)
    assert missing.returncode == 2

    # The run ended: nothing left to cancel is a refusal of the request, not of its words.
    ended = council("cancel", config, "lands", cwd=root)
    assert ended.returncode == 1
    one_line_error(ended, "has ended")
    # ... but a task no run has is an unknown name, whether runs ended or not.
    unknown = council("cancel", config, "nosuch", cwd=root)
    assert unknown.returncode == 2
    one_line_error(unknown, "task 'nosuch' is not part of session")
    assert council("worktrees", "list", config, cwd=root).returncode == 0
    assert council("clean", config, cwd=root).returncode == 0


def test_ctrl_c_in_any_command_is_130() -> None:
    # Outside a run (which stops its sessions itself), Ctrl-C reaches the root group's handler:
    # click alone would print "Aborted!" and exit 1.
    interrupted = typer.Typer(cls=CouncilGroup)

    @interrupted.callback()
    def root() -> None:
        """A root group, like council's."""

    @interrupted.command()
    def wait() -> None:
        raise KeyboardInterrupt

    result = CliRunner().invoke(interrupted, ["wait"])
    assert result.exit_code == 130 and result.stderr == "interrupted\n"


def test_ctrl_c_during_a_status_watch_is_130(config: Path) -> None:
    slow = config.read_text().replace('"WRITE lands.txt x"', '"SLEEP 30\\nWRITE lands.txt x"')
    config.write_text(slow)
    run = subprocess.Popen(
        [*COUNCIL, "run", str(config), "--json"],
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        state = config.parent / "repo" / ".council" / "state" / "sessions"
        wait_for(lambda: state.is_dir() and any(state.iterdir()), "the run's session")
        watch = subprocess.Popen(
            [*COUNCIL, "status", "--watch"],
            cwd=config.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        assert watch.stdout is not None
        assert watch.stdout.readline().startswith("lands: ")
        watch.send_signal(signal.SIGINT)
        _, err = watch.communicate(timeout=patience(30))
        assert watch.returncode == 130 and "interrupted" in err
    finally:
        os.kill(run.pid, signal.SIGINT)
        run.communicate(timeout=patience(60))
    assert run.returncode == 130


def test_with_json_an_error_is_json_on_stdout_too(config: Path) -> None:
    # Before: stdout was empty, and a script reading it got "" instead of JSON.
    for args, code in (
        (["status", "--json", config], 2),  # no run yet
        (["status", "--json", config.parent / "nosuch.yaml"], 2),
        (["cancel", "--json", config, "lands"], 2),
    ):
        done = council(*args, cwd=config.parent)
        assert done.returncode == code, (args, done.stderr)
        said = json.loads(done.stdout)
        assert said["exit_code"] == code and said["error"], said
        assert done.stderr.strip(), "the person reading stderr is told too"
    plain = council("status", config, cwd=config.parent)
    assert plain.returncode == 2 and plain.stdout == ""
