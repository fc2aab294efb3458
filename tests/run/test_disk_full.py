"""A disk that really fills up under ``council run``, then ``council resume`` once it has room.

The repository lives on a small tmpfs, with the state, the CLI logs and the CLIs' homes on
small tmpfs mounts of their own (``small_disk``: a private mount namespace, no root needed),
so each case fills exactly one file system while the build's CLI has written its work and is
still running:

- **state**: the next state write is refused. The run stops with one error naming the state
  file and the way out; every record is intact and readable, no temp file is left; the CLI's
  work is in its worktree or on its branch; after the space is freed ``council resume``
  finishes the run and the work lands on the base.
- **log**: the CLI's log cannot be written. A log is not worth a run: one warning names the
  log file, and the run finishes and lands the work by itself.
- **git**: the orchestrator cannot commit the worktree. The run stops with one error naming
  the refused file and where the work is kept (nothing counted as a failed attempt, so the
  task is not given up); ``council resume`` commits it and lands it.
- **one disk**: state, logs and repository on the same full disk, as most machines have them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from orchestrator.state import FileStateStore
from tests.support.council_process import COUNCIL, ENV, task, wait_for, write_config
from tests.support.small_disk import SmallDisk, unavailable
from tests.support.timing import patience

_WHY_NOT = unavailable()
pytestmark = pytest.mark.skipif(
    _WHY_NOT is not None, reason=f"needs a small real file system: {_WHY_NOT}"
)

ROOT = Path(__file__).resolve().parents[2]
WORK = "important work"
BUILD = f"WRITE work.txt {WORK}\nSLEEP 2\nSAY finishing\nSAY the work is written"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    small = SmallDisk(tmp_path / "disk", "32m", ENV)
    try:
        yield small
    finally:
        small.close()


def make_repo(disk: SmallDisk, own_mounts: tuple[str, ...]) -> Path:
    """The test repository on the small disk; ``own_mounts`` of ``.council`` get a tmpfs each."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); from pathlib import Path; "
        f"from tests.support.scheduler_helpers import new_repo; new_repo(Path({str(disk.base)!r}))"
    )
    disk.check([sys.executable, "-c", code])
    repo = disk.base / "repo"
    for name in own_mounts:
        disk.mount(repo / ".council" / name, "8m")
    return repo


def run_until_full(disk: SmallDisk, tmp_path: Path, repo: Path, full: Path) -> tuple[int, str]:
    """``council run`` until the CLI has written its work, then fill ``full``; the run's exit
    code and stderr."""
    config = write_config(tmp_path, repo, task("big", BUILD), phases=["build"])
    run = disk.popen([*COUNCIL, "run", str(config), "--json"], cwd=tmp_path)
    try:
        worktrees = disk.view(repo / ".council" / "worktrees")
        wait_for(lambda: any(worktrees.glob("*/work.txt")), "the CLI's work", 90)
        disk.fill(full)
        _, stderr = run.communicate(timeout=patience(120))
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=patience(30))
    return run.returncode, stderr


def work_kept(disk: SmallDisk, repo: Path) -> bool:
    """The CLI's file is on the task's branch, or still in its worktree."""
    on_branch = disk.run(["git", "-C", str(repo), "show", "council/big/1:work.txt"])
    in_worktree = [p for p in disk.view(repo / ".council" / "worktrees").glob("*/work.txt")]
    return on_branch.stdout == f"{WORK}\n" or any(p.read_text() == f"{WORK}\n" for p in in_worktree)


def resume_lands_the_work(disk: SmallDisk, tmp_path: Path, repo: Path) -> None:
    resumed = disk.run([*COUNCIL, "resume", str(tmp_path / "run.yaml"), "--json"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = json.loads(resumed.stdout)
    assert report["status"] == "completed"
    assert [t["status"] for t in report["tasks"]] == ["done"]
    assert landed(disk, repo)


def landed(disk: SmallDisk, repo: Path) -> bool:
    shown = disk.run(["git", "-C", str(repo), "show", "main:work.txt"])
    return shown.returncode == 0 and shown.stdout == f"{WORK}\n"


def errors_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def state_is_intact(disk: SmallDisk, repo: Path) -> None:
    root = disk.view(repo / ".council" / "state")

    async def check() -> None:
        async with FileStateStore(root) as store:
            assert await store.verify_records() == []
            task = await store.get_task_state("big")
            assert task is not None and task.status != "failed"

    anyio.run(check)
    assert not list(root.rglob("*.tmp"))


def test_a_full_state_disk_stops_the_run_and_resume_finishes_it(
    disk: SmallDisk, tmp_path: Path
) -> None:
    repo = make_repo(disk, ("state", "logs", "homes"))
    state = repo / ".council" / "state"
    code, stderr = run_until_full(disk, tmp_path, repo, state)

    assert code == 1, stderr
    errors = errors_in(stderr)
    assert len(errors) == 1, stderr
    assert f"cannot write {state}/" in errors[0] and "No space left on device" in errors[0]
    assert "council resume" in errors[0]
    state_is_intact(disk, repo)
    assert work_kept(disk, repo)
    assert not landed(disk, repo)

    disk.free(state / ".filler")
    resume_lands_the_work(disk, tmp_path, repo)


def test_a_full_log_disk_costs_only_the_log(disk: SmallDisk, tmp_path: Path) -> None:
    repo = make_repo(disk, ("state", "logs", "homes"))
    logs = repo / ".council" / "logs"
    code, stderr = run_until_full(disk, tmp_path, repo, logs)

    assert code == 0, stderr
    assert errors_in(stderr) == []
    warnings = [line for line in stderr.splitlines() if "No space left on device" in line]
    assert len(warnings) == 1 and f"log {logs}/big-build-" in warnings[0], stderr
    assert landed(disk, repo)


def test_a_full_repository_disk_stops_the_run_before_a_commit_and_keeps_the_work(
    disk: SmallDisk, tmp_path: Path
) -> None:
    repo = make_repo(disk, ("state", "logs", "homes"))
    # Filled beside the repository, on its disk: a file in the checkout would be a change a
    # CLI made outside its worktree, which blocks the merge for another reason.
    code, stderr = run_until_full(disk, tmp_path, repo, disk.base)

    assert code == 1, stderr
    errors = errors_in(stderr)
    assert len(errors) == 1, stderr
    assert f"{repo}/.git/" in errors[0]  # the file git could not write
    worktree = next(disk.view(repo / ".council" / "worktrees").glob("*/work.txt")).parent
    assert f"work stays in its worktree {repo}/.council/worktrees/{worktree.name}" in errors[0]
    assert "council resume" in errors[0]
    state_is_intact(disk, repo)
    assert work_kept(disk, repo)

    disk.free(disk.base / ".filler")
    resume_lands_the_work(disk, tmp_path, repo)


def test_one_full_disk_for_everything(disk: SmallDisk, tmp_path: Path) -> None:
    # The CLIs' homes keep a mount of their own: scripted-cli saves its session there on its
    # way out, and a CLI that crashes on a full disk is another test's subject.
    repo = make_repo(disk, ("homes",))
    # Filled beside the repository, on its disk: a file in the checkout would be a change a
    # CLI made outside its worktree, which blocks the merge for another reason.
    code, stderr = run_until_full(disk, tmp_path, repo, disk.base)

    assert code == 1, stderr
    errors = errors_in(stderr)
    assert len(errors) == 1 and "No space left on device" in errors[0], stderr
    assert str(repo) in errors[0] and "council resume" in errors[0]
    state_is_intact(disk, repo)
    assert work_kept(disk, repo)

    disk.free(disk.base / ".filler")
    resume_lands_the_work(disk, tmp_path, repo)
