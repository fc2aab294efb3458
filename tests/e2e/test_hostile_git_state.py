"""What the orchestrator takes from a CLI is its worktree's files, nothing else it wrote: a pack
named like the repository's, links planted in its own object store, a ``MERGE_HEAD`` naming a
sibling's landing, its own merge of the base, an ``assume-unchanged`` index entry. Each is tried
by a hostile CLI (``fault_clis/steer.py``) beside an honest sibling under the real orchestrator,
as this process's user and (as root) as an unprivileged one: afterwards main's history is whole
(``git fsck``, the user's checkout reads HEAD), both tasks are done, the sibling's work is on
main, and the CLI's work landed as the files it left."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.fault_helpers import FaultRun
from tests.support.spare_user import as_users, git_as_root, hand_over, user_dir


def steer_run(tmp: Path, how: str, sandbox: str) -> FaultRun:
    run = FaultRun(
        tmp,
        "steer.py",
        env={"FAULT_STEER": how},
        more={"sibling": ("shared_refs.py", {"FAULT_REFS": "honest"})},
        sandbox=sandbox,
    )
    git_as_root(run.repo, "repack", "-a", "-d", "-q")  # main's history in a pack
    git_as_root(run.repo, "hash-object", "-w", "--stdin")  # and a loose object beside it
    return run


def assert_history_whole(run: FaultRun, finished_code: int, stderr: bytes) -> None:
    assert finished_code == 0, stderr[-3000:]
    fsck = subprocess.run(
        ["git", "-c", "safe.directory=*", "-C", str(run.repo), "fsck", "--full", "--strict"],
        capture_output=True,
        text=True,
    )
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    git_as_root(run.repo, "status", "--porcelain")  # not "fatal: bad object HEAD"
    for task_id in ("fault", "sibling"):
        assert run.state(task_id)["status"] == "done", run.state(task_id)
    assert git_as_root(run.repo, "show", "main:work.txt") == "honest work"
    assert git_as_root(run.repo, "show", "main:steer.txt") == "worktree"


def run_as(run: FaultRun, tmp: Path, uid: int | None) -> tuple[int, bytes]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    hand_over(tmp, uid)
    finished = run.run(env={"HOME": str(home)}, timeout=60, user=uid)
    return finished.returncode, finished.stderr


@pytest.mark.sandbox
@pytest.mark.parametrize("uid", as_users())
@pytest.mark.parametrize("how", ["pack-name", "pack-link"])
def test_objects_enter_by_content_and_main_keeps_its_history(
    tmp_path: Path, how: str, uid: int | None
) -> None:
    with user_dir(uid, tmp_path) as tmp:
        run = steer_run(tmp, how, "bubblewrap")
        packs = {p.name: p.read_bytes() for p in (run.repo / ".git/objects/pack").iterdir()}
        code, stderr = run_as(run, tmp, uid)
        assert_history_whole(run, code, stderr)
        # Every pack the repository had is still there, byte for byte.
        for name, data in packs.items():
            assert (run.repo / ".git/objects/pack" / name).read_bytes() == data, name
        if how == "pack-name":  # the CLI's blob came in, under its content's name
            assert git_as_root(run.repo, "cat-file", "-p", blob("a blob of the CLI's\n")) == (
                "a blob of the CLI's"
            )


def blob(text: str) -> str:
    return subprocess.run(
        ["git", "hash-object", "--stdin"], input=text, capture_output=True, text=True
    ).stdout.strip()


def landing(repo: Path, task_id: str) -> tuple[str, str]:
    """The first and second parents of ``task_id``'s landing on main."""
    found = git_as_root(
        repo, "log", "--first-parent", "--merges", "--format=%P", f"--grep=Council-Task: {task_id}",
        "main",
    )  # fmt: skip
    first, second = found.splitlines()[0].split()
    return first, second


@pytest.mark.parametrize(
    ("how", "sandbox", "uid"),
    [
        *(pytest.param(how, "none", None, id=f"{how}-nosandbox") for how in
          ("merge-head", "cli-merge", "assume-unchanged")),
        *(pytest.param(how, "bubblewrap", uid.values[0], id=f"{how}-{uid.id}",
                       marks=pytest.mark.sandbox)
          for how in ("merge-head", "cli-merge", "assume-unchanged") for uid in as_users()),
    ],
)  # fmt: skip
def test_git_state_the_cli_left_is_never_honoured(
    tmp_path: Path, how: str, sandbox: str, uid: int | None
) -> None:
    with user_dir(uid, tmp_path) as tmp:
        run = steer_run(tmp, how, sandbox)
        start = git_as_root(run.repo, "rev-parse", "main")
        code, stderr = run_as(run, tmp, uid)
        assert_history_whole(run, code, stderr)
        # What the CLI's branch brought is its own commits alone, on the base it started
        # from: no merge, nothing of the sibling's landing.
        _first, tip = landing(run.repo, "fault")
        _sibling_base, sibling_tip = landing(run.repo, "sibling")
        assert git_as_root(run.repo, "rev-list", "--merges", f"{start}..{tip}") == ""
        held = ["merge-base", "--is-ancestor", sibling_tip, tip]
        assert subprocess.run(["git", "-c", "safe.directory=*", "-C", str(run.repo), *held]
                              ).returncode == 1  # fmt: skip
        assert not list((run.repo / ".git" / "worktrees").glob("*/MERGE_HEAD"))
