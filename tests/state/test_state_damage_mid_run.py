"""State damaged beyond bad bytes, with a real ``council run`` going or found by ``council
resume``: the state directory deleted, an earlier version's lock file in a record, a record
moved away as a damaged record's error advises, the fencing counter damaged, a record whose
history is damaged too, a directory in place of a record's file. Each ends in a clear error
whose advice, followed as written, finishes the run, in a record started afresh, or in a run
that is not hindered; never in a hang (every process here runs under a timeout)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.council import Council
from orchestrator.errors import StateError
from orchestrator.run import stores as stores_module
from orchestrator.state import FileStateStore
from orchestrator.state.file.fsops import FileOps
from tests.support import invariants
from tests.support.cli_process_helpers import events, reap
from tests.support.council_process import council, seen, start, task, wait_for, write_config
from tests.support.scheduler_helpers import new_repo, run_config
from tests.support.timing import patience

TASKS = task("a", "SLEEP 1.5\nWRITE a.txt a") + task("b", "SLEEP 2\nWRITE b.txt b")


def started(root: Path) -> tuple[Path, Path, subprocess.Popen[str]]:
    """A run of two tasks, once task a's build is under way."""
    repo = new_repo(root)
    config = write_config(root, repo, TASKS)
    process = start("run", config)
    wait_for(lambda: seen(repo, "phase.started", task_id="a", phase="build"), "a's build", 30)
    return repo, config, process


def ended(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, err = process.communicate(timeout=patience(60))
    finally:
        reap(process)
    return process.returncode, err


def all_landed(root: Path, repo: Path, config: Path, command: str) -> None:
    """``council COMMAND`` finishes every task, and every invariant holds."""
    done = council([command, str(config), "--json"], root, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    found = invariants.problems(repo, all_done=True, root=root)
    assert found == []


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
    # state: the next run adopts them (their work committed on their branches, then removed).
    all_landed(tmp_path, repo, config, "run")
    adopted = [e for e in events(repo) if e["type"] == "worktree.adopted"]
    assert len(adopted) == 2, adopted


def test_an_earlier_versions_lock_file_in_a_record_is_no_hindrance(tmp_path: Path) -> None:
    """A record's lock is its directory now; the ``.lock`` file an earlier version made in it
    is nobody's lock, and neither blocks nor breaks the run (nor its deletion)."""
    repo, _, process = started(tmp_path)
    old = repo / ".council" / "state" / "tasks" / "a" / ".lock"
    old.write_bytes(b"")
    code, err = ended(process)
    assert code == 0, err[-3000:]
    invariants.check(repo, all_done=True, root=tmp_path)


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


# -- damage a killed run left, found by `council resume` ----------------------------------------


def killed(root: Path) -> tuple[Path, Path]:
    """A run of two tasks killed during task a's build (both records have a few versions)."""
    repo, config, process = started(root)
    process.kill()
    ended(process)
    return repo, config


def refused(root: Path, config: Path) -> str:
    """``council resume`` ends at once with exit 1 (never a hang); its error line."""
    done = council(["resume", str(config), "--json"], root, timeout=30)
    assert done.returncode == 1, done.stderr[-3000:]
    return done.stderr.strip().splitlines()[-1]


def moved_as_advised(error: str, pattern: str, root: Path) -> Path:
    """Follow the advice: move away what the error names (``pattern``'s group)."""
    found = re.search(pattern, error)
    assert found is not None, error
    named = Path(found.group(1))
    named.rename(root / "moved-away")
    return named


def damaged_without_history(record: Path) -> None:
    for old in record.glob("v*.json"):
        old.unlink()
    (record / "current.json").write_bytes(b"damaged\n")


MOVE_RECORD = r"move the record's directory (\S+) away to start the record afresh; then `council"


def test_a_damaged_fencing_counter_stops_the_resume_and_its_advice_finishes_the_run(
    tmp_path: Path,
) -> None:
    # Every claim takes a token from the counter: the claim failed before anything about the
    # task could be recorded, so the task went back to the queue, and again, forever.
    repo, config = killed(tmp_path)
    counter = repo / ".council" / "state" / "counters" / "fencing"
    damaged_without_history(counter)
    error = refused(tmp_path, config)
    assert "counters record 'fencing' is damaged" in error
    assert moved_as_advised(error, MOVE_RECORD, tmp_path) == counter
    all_landed(tmp_path, repo, config, "resume")


def test_a_file_in_place_of_a_records_directory_stops_the_resume_and_its_advice_finishes_it(
    tmp_path: Path,
) -> None:
    # A record's lock is its directory: a file in its place is no lock anybody holds, so
    # waiting for it would never end.
    repo, config = killed(tmp_path)
    path = repo / ".council" / "state" / "counters" / "fencing"
    shutil.rmtree(path)
    path.write_text("not ours to delete\n")
    error = refused(tmp_path, config)
    assert error.startswith(f"error: cannot use lock directory {path}: ")
    assert error.endswith("never follows or touches it: move it away, then run `council resume`")
    assert moved_as_advised(error, r"cannot use lock directory (\S+):", tmp_path) == path
    all_landed(tmp_path, repo, config, "resume")
    assert (tmp_path / "moved-away").read_text() == "not ours to delete\n"


def test_a_full_directory_in_place_of_a_lock_stops_the_resume_and_its_advice_finishes_it(
    tmp_path: Path,
) -> None:
    # Nobody holds such a lock, so waiting or retrying the task never ends (the merge lock
    # failed the task, and the run, for good).
    repo, config = killed(tmp_path)
    path = repo / ".council" / "locks" / "merge.lock"
    path.unlink(missing_ok=True)
    path.mkdir()
    (path / "something").write_text("not ours to delete\n")
    error = refused(tmp_path, config)
    assert error == (
        f"error: cannot use lock file {path}: a directory with files in it is in its place; "
        "move it away, then run `council resume`"
    )
    assert moved_as_advised(error, r"cannot use lock file (\S+):", tmp_path) == path
    all_landed(tmp_path, repo, config, "resume")
    assert (tmp_path / "moved-away" / "something").read_text() == "not ours to delete\n"


def test_a_record_whose_history_is_damaged_too_starts_afresh_once_moved_as_advised(
    tmp_path: Path,
) -> None:
    # Moving only current.json away (the advice before) left the damaged history behind: the
    # record was found damaged again, with the same advice.
    repo, config = killed(tmp_path)
    record = repo / ".council" / "state" / "tasks" / "a"
    assert list(record.glob("v*.json"))
    for file in record.glob("*.json"):
        file.write_bytes(b"damaged\n")
    error = refused(tmp_path, config)
    assert "tasks record 'a' is damaged" in error and "no valid history" in error
    assert moved_as_advised(error, MOVE_RECORD, tmp_path) == record
    all_landed(tmp_path, repo, config, "resume")
    assert seen(repo, "state.recovered", key="a")


@pytest.mark.parametrize("blocked", ["current.json", "record"])
def test_a_record_file_that_is_no_file_is_named_with_what_to_move(
    tmp_path: Path, blocked: str
) -> None:
    repo, config = killed(tmp_path)
    record = repo / ".council" / "state" / "tasks" / "a"
    if blocked == "current.json":
        (record / "current.json").unlink()
        (record / "current.json").mkdir()  # its history recovers it
        culprit = record / "current.json"
    else:
        shutil.rmtree(record)
        record.write_text("not a directory\n")  # started afresh
        culprit = record
    error = refused(tmp_path, config)
    assert "tasks record 'a' cannot be read" in error
    assert moved_as_advised(error, r"; move (\S+) away", tmp_path) == culprit
    all_landed(tmp_path, repo, config, "resume")


class _StateDeletedDuringAHandoffWrite(FileOps):
    """Real file operations, but the whole state directory is deleted just as the first handoff
    file is opened: a deletion racing a write, as ``rm -rf .council/state`` mid-run can. Like
    ``rm -rf`` it goes on past a directory the run's other writes refill meanwhile. With
    ``session_written_back`` the session record is written again at once, as a write that read
    it just before the deletion does: a session record alone cannot tell the state was lost."""

    def __init__(self, state: Path, *, session_written_back: bool) -> None:
        super().__init__()
        self.state, self.struck = state, False
        self.session_written_back = session_written_back

    def open_new(self, path: Path) -> int:
        if not self.struck and "handoffs" in path.parts:
            self.struck = True
            sessions = {f: f.read_bytes() for f in self.state.glob("sessions/*/current.json")}
            shutil.rmtree(self.state, ignore_errors=True)
            for file, data in sessions.items() if self.session_written_back else ():
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_bytes(data)
        return super().open_new(path)


@pytest.mark.parametrize("session_written_back", [False, True])
async def test_a_write_that_finds_the_state_deleted_says_the_state_disappeared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_written_back: bool
) -> None:
    def store_losing_its_state(root: Path, **kwargs: Any) -> FileStateStore:
        ops = _StateDeletedDuringAHandoffWrite(
            Path(root), session_written_back=session_written_back
        )
        return FileStateStore(root, file_ops=ops, **kwargs)

    monkeypatch.setattr(stores_module, "FileStateStore", store_losing_its_state)
    repo = new_repo(tmp_path)
    build = {"phase_instructions": {"build": "WRITE t1.txt t1"}}
    config = run_config(repo, [{"id": "t1", "prompt": "p", "metadata": build}])
    async with Council(config) as council:  # the real workflow, which stores handoffs
        with pytest.raises(BaseException) as raised:
            await council.run()
    errors = raised.value.exceptions if isinstance(raised.value, BaseExceptionGroup) else []
    error = errors[0] if len(errors) == 1 else raised.value
    assert isinstance(error, StateError), repr(raised.value)
    assert str(error).startswith("the run's state disappeared while it ran"), str(error)
    assert "council run <config>" in str(error)
