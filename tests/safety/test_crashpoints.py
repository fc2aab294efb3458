"""``orchestrator.safety.crashpoints`` on its own: a real Python process arms a point through the
environment, as the crash tests' ``council run`` does, and dies by SIGKILL exactly there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from orchestrator.safety import crashpoints
from tests.support.timing import patience

SCRIPT = """
import sys, threading
from orchestrator.safety.crashpoints import check_armed, crash_point
check_armed()
for step in range(1, 4):
    crash_point("merge.committed")  # another point: never counted
    worker = threading.Thread(target=crash_point, args=("merge.locked",))
    worker.start()
    worker.join()
    print("passed", step, flush=True)
"""


def run(crash_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != crashpoints.ENV}
    if crash_at is not None:
        env[crashpoints.ENV] = crash_at
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=patience(60),
    )


@pytest.mark.parametrize(("crash_at", "passed"), [("merge.locked", 0), ("merge.locked:3", 2)])
def test_the_nth_arrival_at_the_armed_point_dies_by_sigkill(crash_at: str, passed: int) -> None:
    done = run(crash_at)
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split("\n")[:-1] == [f"passed {n}" for n in range(1, passed + 1)]
    nth = crash_at.partition(":")[2] or "1"
    assert f"council: crash point merge.locked reached ({nth}), SIGKILL" in done.stderr


def test_unset_or_past_the_count_nothing_happens() -> None:
    for crash_at in (None, "merge.locked:4"):
        done = run(crash_at)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["passed", "1", "passed", "2", "passed", "3"]


@pytest.mark.parametrize(
    ("crash_at", "says"),
    [
        ("merge.lockd", "unknown crash point 'merge.lockd'"),
        ("merge.locked:0", "must be a whole number >= 1"),
        ("merge.locked:two", "must be a whole number >= 1"),
    ],
)
def test_a_value_that_arms_nothing_is_refused_at_the_start(crash_at: str, says: str) -> None:
    done = run(crash_at)
    assert done.returncode == 1 and not done.stdout
    assert "ConfigError" in done.stderr and says in done.stderr
    if "unknown" in says:
        assert all(point in done.stderr for point in crashpoints.POINTS)


def test_the_check_passes_in_this_process() -> None:
    # The test process runs without the variable (a value here would arm the whole suite).
    assert crashpoints.ENV not in os.environ
    crashpoints.check_armed()
    for point in crashpoints.POINTS:
        crashpoints.crash_point(point)
