"""Killing ``council run`` with SIGKILL mid-run, then ``council resume``: a real process, the
real workflow and the scripted CLI. Every task completes; no phase recorded complete before
the kill runs again; no task is merged twice, even when the kill falls between a merge landing
and its record; no CLI process of the run is left; nothing the dead orchestrator held (claims,
file locks, the merge lock) blocks the resume.

The dead orchestrator's CLIs lead process groups of their own, so its SIGKILL does not reach
them: the resume stops them (``orchestrator.runner.orphans``, from the ``cli-runs`` records and the
marker in their environment) and waits until they are gone before it runs anything, so a phase
never runs again beside the old CLI in the same worktree. Every named crash point has its own
test in ``test_crash_points.py``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import anyio

from orchestrator.models import PhaseStatus, TaskState
from orchestrator.runner.cli_runs import CLI_RUNS
from orchestrator.safety.crashpoints import ENV as CRASH_ENV
from orchestrator.state import FileStateStore
from orchestrator.state.file.record_files.codec import decode
from tests.support.cli_process_helpers import (
    COUNCIL,
    ENV,
    council,
    events,
    file_on,
    reap,
    scripted_clis,
    seen,
    sleeping,
    wait_for,
)
from tests.support.council_process import task
from tests.support.scheduler_helpers import merged_tasks, new_repo
from tests.support.timing import patience

# stale_threshold is far longer than any safety net of the test's (``timing.patience``): if the
# resume had to wait for the dead orchestrator's leases or locks to lapse, it would time out
# instead of finishing, so no bound on its wall time is needed to tell.
CONFIG = """\
repo: repo
adapters:
  cli: {type: scripted, options: {delay: 0}}
default_adapter: cli
capacity: {sessions: 3}
workflow: {phases: [{name: plan}, {name: build}]}
retry: {max_retries: 2, backoff_initial: 0.05, backoff_max: 0.2}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 2h}
tasks:
"""

TASKS = (
    task("quick", "WRITE quick.txt quick")
    # Still building when the orchestrator dies: their plan phase is complete by then.
    + task("slow-1", "SLEEP 4\nWRITE slow-1.txt slow one")
    + task("slow-2", "SLEEP 4\nWRITE slow-2.txt slow two")
    # Not started when the orchestrator dies.
    + task("after-slow", "WRITE after-slow.txt after", after="slow-1")
)
IDS = ["quick", "slow-1", "slow-2", "after-slow"]
# For the merge window: one task to land, one that waits for it.
TWO_TASKS = task("quick", "WRITE quick.txt quick") + task(
    "after-quick", "WRITE after-quick.txt after", after="quick"
)
STALE_SOON = "heartbeat_interval: 0.2, stale_threshold: 1"


def cwd_of(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:  # it ended meanwhile
        return None


def completed_phases(state_dir: Path) -> dict[tuple[str, str], tuple[datetime | None, int]]:
    """(task, phase) -> (finished_at, attempt) of every phase the store has as completed."""

    async def read() -> list[TaskState]:
        async with FileStateStore(state_dir) as store:
            return await store.list_tasks()

    return {
        (state.task_id, name): (record.finished_at, record.attempt)
        for state in anyio.run(read)
        for name, record in state.phases.items()
        if record.status == PhaseStatus.COMPLETED
    }


def cli_runs(repo: Path, task_id: str, phase: str) -> int:
    """How many times the scripted CLI ran for this task and phase: one turn per invocation
    in its session files, kept in the phase's private HOME."""
    sessions = repo / ".council" / "homes" / task_id / "cli" / phase / ".scripted-cli" / "sessions"
    return sum(len(json.loads(path.read_text())["turns"]) for path in sessions.glob("*.json"))


def task_status(repo: Path, task_id: str) -> str:
    """The task's status as its current record says (read without the store's lock, so this
    works while the orchestrator is frozen holding it)."""
    current = repo / ".council" / "state" / "tasks" / task_id / "current.json"
    return str(json.loads(decode(current.read_bytes()))["status"])


def start_run(
    tmp_path: Path, tasks: str, settings: str = CONFIG, env: dict[str, str] = ENV
) -> tuple[Path, Path, subprocess.Popen[bytes]]:
    repo = new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(settings + tasks)
    process = subprocess.Popen(
        [*COUNCIL, "run", str(config), "--json"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    return repo, config, process


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    os.kill(process.pid, signal.SIGCONT)  # harmless if it was not frozen
    process.wait(timeout=patience(10))
    assert process.returncode == -signal.SIGKILL


def resume_and_check(
    tmp_path: Path, repo: Path, config: Path, ids: list[str]
) -> dict[tuple[str, str], tuple[datetime | None, int]]:
    """Resume after the kill, check the promises; the phases completed before the kill."""
    before = completed_phases(repo / ".council" / "state")
    assert {cli_runs(repo, *key) for key in before} <= {1}
    resumed = council("resume", config, "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-6000:] + resumed.stderr[-3000:]
    report = json.loads(resumed.stdout)
    assert report["status"] == "completed"
    assert {t["task_id"]: t["status"] for t in report["tasks"]} == dict.fromkeys(ids, "done")

    # No phase completed before the kill ran again: same record, and the CLI ran once for it.
    after = completed_phases(repo / ".council" / "state")
    for key, record in before.items():
        assert after[key] == record, key
        assert cli_runs(repo, *key) == 1, key

    # Each task landed exactly once, and the base holds every task's work.
    landed = merged_tasks(repo)
    assert sorted(landed) == sorted(ids), landed
    for task_id in ids:
        assert file_on(repo, "main", f"{task_id}.txt") is not None, task_id

    # Nothing of the run is left running: the resume stopped the dead orchestrator's CLIs.
    assert not scripted_clis(tmp_path)
    return before


def test_sigkill_mid_run_then_resume_completes_everything_once(tmp_path: Path) -> None:
    repo, config, process = start_run(tmp_path, TASKS)
    try:
        # The moment: quick has landed and settled while both slow tasks are building.
        wait_for(
            lambda: (
                seen(repo, "claim.released", task_id="quick")
                and seen(repo, "phase.started", task_id="slow-1", phase="build")
                and seen(repo, "phase.started", task_id="slow-2", phase="build")
            ),
            "quick merged and both slow tasks building",
            30,
        )
        assert not seen(repo, "merge.started", task_id="slow-1")
        kill(process)
        # The CLIs it started are in process groups of their own: SIGKILL of the orchestrator
        # does not reach them, and the slow builds are still running.
        assert scripted_clis(tmp_path)
    finally:
        reap(process)
    assert merged_tasks(repo) == ["quick"]
    assert task_status(repo, "quick") == "done"

    # A new `run` of the same tasks is refused, pointing at the resume, and changes nothing.
    again = council("run", config, "--json", cwd=tmp_path)
    assert again.returncode == 2, again.stderr
    # ... naming the config as typed, so the command can be copied as it is.
    assert f"still active: continue that run with `council resume {config}`" in again.stderr
    assert f"`council cancel {config} quick`" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1, again.stderr

    before = resume_and_check(tmp_path, repo, config, IDS)
    assert {("quick", "plan"), ("quick", "build"), ("slow-1", "plan"), ("slow-2", "plan")} <= set(
        before
    )
    assert ("slow-1", "build") not in before and ("after-slow", "plan") not in before
    landed = merged_tasks(repo)
    assert landed[0] == "quick" and landed.index("slow-1") < landed.index("after-slow")


def test_sigkill_after_a_merge_landed_before_it_was_recorded(tmp_path: Path) -> None:
    # The base has quick's merge but the store still has quick unfinished: the resume must
    # count it done from the trailer, neither building it again nor merging it twice. The
    # window is a few milliseconds wide, too narrow to hit from outside on a loaded machine
    # (stepping the run with SIGSTOP/SIGCONT missed it in CI), so the run kills itself there.
    repo, config, process = start_run(
        tmp_path, TWO_TASKS, env={**ENV, CRASH_ENV: "merge.ref_updated"}
    )
    try:
        process.wait(timeout=patience(60))
    finally:
        reap(process)
    assert process.returncode == -signal.SIGKILL
    assert merged_tasks(repo) == ["quick"]
    assert task_status(repo, "quick") != "done"

    resume_and_check(tmp_path, repo, config, ["quick", "after-quick"])


def cli_recorded(repo: Path, task_id: str) -> bool:
    """The run wrote the record of ``task_id``'s CLI (``cli_runs``): a CLI can be asleep
    before its orchestrator, on a loaded machine, got to write it; killed then, it is found
    by its marker alone, with no task to name."""
    return (repo / ".council" / "state" / "records" / CLI_RUNS / task_id / "current.json").exists()


def test_resume_never_runs_a_cli_beside_one_the_killed_run_left(tmp_path: Path) -> None:
    # The build's CLI waits at a gate the test opens once the resume stopped the one the
    # killed run left (a fixed sleep raced the resume's start on a loaded machine): the
    # resume's own run of the build then goes straight on.
    gates = tmp_path / "gates"
    gates.mkdir()
    gate = gates / "open"
    settings = CONFIG.replace("tasks:\n", f"sandbox: {{read: [{gates}]}}\ntasks:\n")
    repo, config, process = start_run(
        tmp_path, task("slow", f"WAIT_FOR {gate} 120\nWRITE slow.txt slow"), settings
    )
    try:
        wait_for(
            lambda: seen(repo, "phase.started", task_id="slow", phase="build"), "slow building", 30
        )
        # Killed once the build's CLI is past its first output, sleeping: it runs on (until it
        # next writes to the pipe the dead orchestrator read).
        wait_for(lambda: any(map(sleeping, scripted_clis(tmp_path))), "the build's CLI", 10)
        wait_for(lambda: cli_recorded(repo, "slow"), "the CLI's record", 10)
        kill(process)
    finally:
        reap(process)
    (left,) = scripted_clis(tmp_path)  # the build's CLI outlived the orchestrator
    leader = os.getpgid(left)  # the group it runs in: its own, or its sandbox's

    resumed = subprocess.Popen(
        [*COUNCIL, "resume", str(config), "--json"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    most = 0  # CLIs working in one worktree at the same time
    deadline = time.monotonic() + patience(60)
    while resumed.poll() is None and time.monotonic() < deadline:
        cwds = Counter(cwd_of(pid) for pid in scripted_clis(tmp_path))
        cwds.pop(None, None)
        most = max([most, *cwds.values()])
        if not gate.exists() and seen(repo, "cli.orphans_stopped"):
            gate.touch()
        time.sleep(0.05)
    assert resumed.wait(timeout=patience(60)) == 0
    assert merged_tasks(repo) == ["slow"]
    assert most == 1
    # The resume stopped it (the CLI would have waited on at its gate), by its record.
    stopped = [e["data"]["orphans"] for e in events(repo) if e["type"] == "cli.orphans_stopped"]
    assert stopped == [[{"pid": leader, "group": True, "task": "slow"}]]


def test_another_run_sweeping_the_dead_runs_claim_stops_its_cli(tmp_path: Path) -> None:
    # Two runs share a repository. The first is killed while its build's CLI sleeps; the
    # second, running other tasks, sweeps the first's claim once its lease lapsed, and stops
    # the CLI the dead run left before anything can run that task again.
    short_lease = CONFIG.replace("heartbeat_interval: 0.5, stale_threshold: 2h", STALE_SOON)
    slow = task("slow", "SLEEP 30\nWRITE slow.txt slow")
    repo, _, process = start_run(tmp_path, slow, short_lease)
    try:
        wait_for(lambda: any(map(sleeping, scripted_clis(tmp_path))), "the build's CLI", 30)
        wait_for(lambda: cli_recorded(repo, "slow"), "the CLI's record", 10)
        kill(process)
    finally:
        reap(process)
    (left,) = scripted_clis(tmp_path)
    leader = os.getpgid(left)  # the group it runs in: its own, or its sandbox's
    # The other run lasts past the dead run's lease (1 s): a run started within a second of
    # the kill finds the claim still live at its first sweep and must meet it lapsed later.
    other_task = task("other", "SLEEP 2.5\nWRITE other.txt other")
    (tmp_path / "other.yaml").write_text(CONFIG + other_task)
    other = council("run", tmp_path / "other.yaml", "--json", cwd=tmp_path)
    assert other.returncode == 0, other.stderr[-3000:]
    stopped = [e["data"]["orphans"] for e in events(repo) if e["type"] == "cli.orphans_stopped"]
    assert stopped == [[{"pid": leader, "group": True, "task": "slow"}]]
    assert not scripted_clis(tmp_path)
    assert task_status(repo, "slow") == "running"  # the dead run's task waits for its resume


def test_a_phase_cut_off_after_its_work_was_committed_never_lands_it_twice(
    tmp_path: Path,
) -> None:
    # Killed after the build's CLI appended its line and the work was committed, before the
    # phase was recorded: resume puts the worktree back at the phase's start (what it left
    # kept on a rescue ref) and runs it again, so the line lands once, not twice.
    appends = task("tally", "APPEND tally.txt counted once")
    env = {**ENV, CRASH_ENV: "phase.ended:2"}  # the plan's end is the first
    repo, config, process = start_run(tmp_path, appends, env=env)
    try:
        assert process.wait(timeout=patience(60)) == -signal.SIGKILL
    finally:
        reap(process)
    resume_and_check(tmp_path, repo, config, ["tally"])
    assert file_on(repo, "main", "tally.txt") == "counted once\n"
    refs = subprocess.run(
        ["git", "-C", str(repo), "for-each-ref", "--format=%(refname)", "refs/council/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    kept = [ref for ref in refs if ref.startswith("refs/council/rescue-phase/")]
    assert len(kept) == 1 and kept[0].endswith("/build-1"), refs
    assert file_on(repo, kept[0], "tally.txt") == "counted once\n"
