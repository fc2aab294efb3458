"""State damaged beyond bad bytes, with a real ``council run`` going: the state directory
deleted, a record's lock file replaced by a directory, a record moved away as a damaged
record's error advises. Each ends in a clear error whose advice, followed, finishes the run,
or in a record started afresh; never in a hang (every process here runs under a timeout)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import invariants
from cli_process_helpers import reap
from council_process import council, seen, start, task, wait_for, write_config
from scheduler_helpers import new_repo

TASKS = task("a", "SLEEP 1.5\nWRITE a.txt a") + task("b", "SLEEP 2\nWRITE b.txt b")


def started(root: Path) -> tuple[Path, Path, subprocess.Popen[str]]:
    """A run of two tasks, once task a's build is under way."""
    repo = new_repo(root)
    config = write_config(root, repo, TASKS)
    process = start("run", config)
    wait_for(lambda: seen(repo, "phase.started", task="a", phase="build"), "a's build", 30)
    return repo, config, process


def ended(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, err = process.communicate(timeout=60)
    finally:
        reap(process)
    return process.returncode, err


def all_landed(root: Path, repo: Path, config: Path, command: str, *, forgotten: int = 0) -> None:
    """``council COMMAND`` finishes every task, and every invariant holds, but for the
    ``forgotten`` worktrees of a run whose records were deleted (kept, work and all)."""
    done = council([command, str(config), "--json"], root, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    found = invariants.problems(repo, all_done=True, root=root)
    left = [p for p in found if p.startswith("worktree ") and p.endswith(" is left")]
    assert len(left) == forgotten and [p for p in found if p not in left] == []


def test_the_state_deleted_mid_run_stops_it_saying_how_to_go_on(tmp_path: Path) -> None:
    repo, config, process = started(tmp_path)
    state = repo / ".council" / "state"
    while state.exists():  # the run may be writing into it meanwhile
        shutil.rmtree(state, ignore_errors=True)
    code, err = ended(process)
    assert code == 1
    assert "the run's state disappeared while it ran" in err
    assert "council run <config>" in err
    # The advice, followed. The dead run's two worktrees were recorded only in the deleted
    # state: they stay (their work committed on their branches) for `council worktrees`.
    all_landed(tmp_path, repo, config, "run", forgotten=2)


def test_an_empty_directory_in_place_of_a_records_lock_is_cleared(tmp_path: Path) -> None:
    repo, _, process = started(tmp_path)
    lock = repo / ".council" / "state" / "tasks" / "a" / ".lock"
    lock.unlink()
    lock.mkdir()
    code, err = ended(process)
    assert code == 0, err[-3000:]
    assert lock.is_file()
    invariants.check(repo, all_done=True, root=tmp_path)


def test_a_full_directory_in_place_of_a_records_lock_is_named_and_the_advice_works(
    tmp_path: Path,
) -> None:
    repo, config, process = started(tmp_path)
    lock = repo / ".council" / "state" / "tasks" / "a" / ".lock"
    lock.unlink()
    lock.mkdir()
    (lock / "something").write_text("not ours to delete\n")
    code, err = ended(process)
    assert code == 1
    assert f"cannot use lock file {lock}" in err and "move it away" in err
    lock.rename(tmp_path / "moved-lock")  # the advice, followed
    all_landed(tmp_path, repo, config, "resume")
    assert (tmp_path / "moved-lock" / "something").read_text() == "not ours to delete\n"


def test_a_task_record_moved_away_as_advised_is_started_afresh_on_resume(
    tmp_path: Path,
) -> None:
    repo, config, process = started(tmp_path)
    process.kill()
    ended(process)  # reaped, its pipes closed
    record = repo / ".council" / "state" / "tasks" / "a"
    # What a damaged record with no history leaves when its advice is followed: the record
    # moved away (its history gone with it).
    shutil.move(record / "current.json", tmp_path / "moved-away.json")
    for old in record.glob("v*.json"):
        old.unlink()
    all_landed(tmp_path, repo, config, "resume")
    assert seen(repo, "state.recovered", key="a")
