"""The stop sweep: the crash sweep's run (``test_crash_sweep.py``) stopped with a Ctrl-C at a
step of every kind instead of killed (``COUNCIL_CRASH_SIGNAL=SIGINT``): the run says it is
stopping, its running sessions commit their work and their phases are recorded cut short, it
exits 130; ``council resume`` then finishes it. Checked as the stop left it and at the end,
at the content level (each appended line on the base exactly once, no base file lost, the
user's checkout as it was, no canary secret anywhere): a phase stopped mid-way and run again
is rewound to its start, never run on top of what it left.

Each armed run is traced, so the sweep counts what it did (``crash.count_problems``): a run
stopped at ``point:k`` reached its k-th step, one that ended unstopped made fewer than k.

``COUNCIL_SWEEP_EVERY=<n>`` stops at every n-th git command and durable write (default 8).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

import tests.e2e.test_crash_sweep as crash
from orchestrator.safety.crashpoints import ENV as CRASH_ENV
from orchestrator.safety.crashpoints import SIGNAL_ENV, TRACE_ENV
from tests.support.timing import patience

EVERY = int(os.environ.get("COUNCIL_SWEEP_EVERY", "8"))
SLICES = {"git.ran": 5, "write.replaced": 3}


@pytest.fixture(scope="module")
def counts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """One run to the end, traced: how many steps of each swept point."""
    run = crash.prepare(tmp_path_factory.mktemp("stop-trace"))
    steps = run.root / "trace.txt"
    status, output = crash.council(run, "run", trace=steps)
    assert status == 0, output
    points = [line.partition("\t")[0] for line in steps.read_text().splitlines()]
    return {point: points.count(point) for point in SLICES}


def stop_resume_check(root: Path, point: str, k: int) -> tuple[bool, list[str]]:
    """Stop a fresh run at ``point:k``, check, resume, check: (stopped, problems)."""
    run = crash.prepare(root, busy_checkout=k % 2 == 0)
    steps = root / "armed-trace.txt"
    env = {**crash.BASE_ENV, CRASH_ENV: f"{point}:{k}", SIGNAL_ENV: "SIGINT", TRACE_ENV: str(steps)}
    done = subprocess.run(
        [*crash.COUNCIL, "run", str(run.config), "--json"],
        cwd=run.root,
        capture_output=True,
        text=True,
        env=env,
        timeout=patience(120),
    )
    where = f"{point}:{k}"
    # A stop that arrives once the run has decided to end (its last writes: the session's
    # end, its checkpoint) has nothing left to stop: the run ends completed, exit 0, whole.
    late = (
        done.returncode == 0
        and f"crash point {point} reached ({k})" in done.stderr
        and "finished: completed" in done.stderr
    )
    counted = [] if late else crash.count_problems(
        where, point, k, done.returncode != 0, crash.reached(steps, point)
    )  # fmt: skip
    if done.returncode == 0:  # fewer steps than k in this schedule, or a late stop: whole
        said = [f"{where}: what the run said: {done.stderr[-1500:]}"] if counted else []
        return late, counted + said + [
            f"{where} ({'stopped at its end' if late else 'not reached'}): {p}"
            for p in crash.settled_problems(run)
        ]
    if counted:
        return True, counted
    if done.returncode != 128 + signal.SIGINT:
        return True, [f"{where}: the stopped run ended {done.returncode}: {done.stderr[-2000:]}"]
    # Said as a stop once the run is under way; before its signal handling is set up (its
    # first git commands), the Ctrl-C interrupts the start, which says so.
    if not any(said in done.stderr for said in ("stopping: no new sessions", "interrupted")):
        return True, [f"{where}: the stop was never said: {done.stderr[-2000:]}"]
    problems = [f"{where}, stopped: {p}" for p in crash.killed_problems(run)]
    command = crash.next_command(run)
    if command is not None:
        status, output = crash.council(run, command)
        if status != 0:
            problems.append(f"{where}: the resume ended {status}: {output}")
    problems += [f"{where}, at the end: {p}" for p in crash.settled_problems(run)]
    return True, problems


@pytest.mark.parametrize(
    ("point", "index"),
    [(point, index) for point, count in SLICES.items() for index in range(count)],
    ids=lambda value: str(value),
)
def test_a_run_stopped_at_every_kind_of_step_resumes_with_every_edit_once(
    counts: dict[str, int], tmp_path: Path, point: str, index: int
) -> None:
    ks = list(range(1, counts[point] + 1, EVERY))[index :: SLICES[point]]
    assert ks, f"the traced run has too few {point} steps for slice {index}"
    problems: list[str] = []
    stopped = 0
    for k in ks:
        reached, found = stop_resume_check(tmp_path / f"{point}-{k}", point, k)
        stopped += reached
        problems += found
    assert not problems, "\n".join(problems)
    # A schedule shorter than the traced one (more likely on a loaded machine) lets a late k
    # end the run unstopped, checked whole and checked to have made fewer than k steps; the
    # first k of every slice is reached by any run.
    assert stopped, f"no run of {ks} was stopped"
