"""Secrets and the children that are not CLIs: a ``council run`` started with canary keys in
its environment (``canary.CANARIES``), whose CLI writes a test of its own (``check_env.py``:
dump the whole environment into a file, print it, maybe fail) that the run config's verify
command runs, and whose setup command prints its environment too. Neither sees a secret (they
get the CLIs' allow-list, not the orchestrator's environment), and nothing of one is stored:
no git object, no file under ``.council/``. A secret deliberately passed through to verify
(``worktrees.passthrough_env``), or one a CLI was given and wrote into its work, is masked in
everything the orchestrator stores (the task record, events, handoffs and their diffs, logs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.canary import CANARIES, leaks
from tests.support.fault_helpers import TASK, FaultRun

JSON_RESULT = {"output": "jsonl", "result_key": "result", "result_when": {"type": "result"}}
PRINT_ENV = "import os; print(sorted(os.environ.items()))"


def env_test_run(
    tmp_path: Path, *, fails: bool, sandbox: str | None = None, **more: object
) -> FaultRun:
    run = FaultRun(tmp_path, "env_test.py", output=JSON_RESULT, sandbox=sandbox)
    run.env = {"FAULT_VERIFY_FAILS": "1" if fails else "0"}
    config = run.config()
    config["verify"] = [[sys.executable, "check_env.py"]]
    config["worktrees"] = {"setup": [[sys.executable, "-c", PRINT_ENV]]}
    for section, values in more.items():
        assert isinstance(values, dict)
        config[section] = {**config.get(section, {}), **values}
    run.config_path.write_text(json.dumps(config, indent=2))
    return run


@pytest.mark.parametrize("fails", [False, True], ids=["verify-passes", "verify-fails"])
def test_a_test_the_cli_wrote_sees_no_secret_and_none_is_stored(
    tmp_path: Path, fails: bool
) -> None:
    run = env_test_run(tmp_path, fails=fails)

    finished = run.run(env=CANARIES)

    task = finished.task()
    assert task["status"] == ("failed" if fails else "done"), task
    assert leaks(run.repo) == []
    setup_logs = list((run.council_dir / "logs").glob("setup-*.log"))
    assert setup_logs and "'PATH'" in setup_logs[0].read_text()  # the setup command printed
    for name in CANARIES:
        assert name not in setup_logs[0].read_text()  # absent, not merely masked
    assert not run.on_main("env-dump.txt")
    if fails:
        # The failing test's printout is the task's error: the environment it saw, no key.
        assert "verify command" in task["error"] and "PATH=" in task["error"]
        assert not any(name in task["error"] for name in CANARIES)
    else:
        assert run.on_main("work.txt") and run.on_main("check_env.py")


def test_secrets_given_on_purpose_are_masked_in_everything_stored(tmp_path: Path) -> None:
    """DATABASE_PASSWORD is passed through to setup, which prints it; the CLI is given
    ANTHROPIC_API_KEY and writes it into its work. Nothing stored holds either value: the
    events, the logs and the task record show the mask, and so does the commit of the work
    (``secret_scrub``): the key never enters a git object, and the task fails, naming the
    file, so a person looks before anything lands."""
    run = env_test_run(tmp_path, fails=False, worktrees={"passthrough_env": ["DATABASE_PASSWORD"]})
    config = json.loads(run.config_path.read_text())
    adapter = config["adapters"][TASK]
    adapter["options"]["passthrough_env"] = ["ANTHROPIC_API_KEY"]
    adapter["env"]["FAULT_WRITE_ENV"] = "ANTHROPIC_API_KEY"
    run.config_path.write_text(json.dumps(config, indent=2))

    finished = run.run(env=CANARIES)

    task = finished.task()
    assert task["status"] == "failed", task
    assert "work.txt" in task["error"] and "replaced by ***" in task["error"]
    assert not run.on_main("work.txt")
    assert leaks(run.repo) == []  # git objects included
    branch = task["branch"]
    shown = subprocess.run(
        ["git", "-C", str(run.repo), "show", f"{branch}:work.txt"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "ANTHROPIC_API_KEY=***" in shown  # the work is kept, the key masked
    # The setup printed the passed-through password: its log shows the name, not the value.
    assert "DATABASE_PASSWORD" in next((run.council_dir / "logs").glob("setup-*.log")).read_text()


def test_a_failing_verify_printing_a_passed_secret_stores_only_the_mask(tmp_path: Path) -> None:
    run = env_test_run(tmp_path, fails=True, worktrees={"passthrough_env": ["DATABASE_PASSWORD"]})

    finished = run.run(env=CANARIES)

    task = finished.task()
    assert task["status"] == "failed" and "DATABASE_PASSWORD=***" in task["error"]
    assert leaks(run.repo) == []
    assert "DATABASE_PASSWORD=***" in json.dumps(run.state())


def test_a_cli_reading_the_orchestrators_environment_stores_none_of_it(tmp_path: Path) -> None:
    """Without a sandbox, the allow-list keeps keys out of a child's environment, not out of
    its reach: the orchestrator's own environment is readable through /proc by the same user.
    What the CLI says of it (its log, its messages, its answer, which becomes the handoff) is
    masked."""
    run = env_test_run(tmp_path, fails=False, sandbox="none")
    config = json.loads(run.config_path.read_text())
    config["adapters"][TASK]["env"]["FAULT_PARENT_ENV"] = "1"
    run.config_path.write_text(json.dumps(config, indent=2))

    finished = run.run(env=CANARIES)

    assert finished.task()["status"] == "done", finished.task()
    assert leaks(run.repo) == []
    log = run.logs()[0].read_text()
    assert "GITHUB_TOKEN=***" in log  # it did say it
    handoff = next((run.council_dir / "state" / "records" / "handoffs").rglob("current.json"))
    assert "GITHUB_TOKEN=***" in handoff.read_text()
    for name, value in CANARIES.items():
        assert value.encode() not in finished.stdout + finished.stderr, name


@pytest.mark.sandbox
def test_a_sandboxed_cli_cannot_read_the_orchestrators_environment(tmp_path: Path) -> None:
    """Under the sandbox the CLI runs in a pid namespace of its own: its parent is the
    sandbox's own init, which holds only the CLI's environment, and the orchestrator's process
    is not there to read."""
    run = env_test_run(tmp_path, fails=False, sandbox="bubblewrap")
    config = json.loads(run.config_path.read_text())
    config["adapters"][TASK]["env"]["FAULT_PARENT_ENV"] = "1"
    run.config_path.write_text(json.dumps(config, indent=2))

    finished = run.run(env=CANARIES)

    assert finished.task()["status"] == "done", finished.task()
    log = run.logs()[0].read_text()
    assert "my parent has" in log  # it looked
    for name in CANARIES:
        assert name not in log, name  # and found none of the orchestrator's variables
    assert leaks(run.repo) == []
