"""A hostile CLI under the sandbox (a real bubblewrap), run by the real orchestrator: every way
out of its worktree is refused by the operating system, its own commits on its own branch are
its work, its sibling lands untouched, and nothing of the user's is reached.

The CLI (``fault_clis/escape.py``) records each attempt in ``escapes.json``, which it commits
with its work, so the test reads from ``main`` what the CLI saw: the attempt, and the error the
OS or git gave it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fault_helpers import FaultRun

pytestmark = pytest.mark.sandbox

REFUSED = (
    "write ~/.ssh/x",
    "read ~/.aws/credentials",
    "write .git/config",
    "append .git/config",
    "plant a hook",
    "write info/attributes",
    "write a sibling's worktree",
    "delete a sibling's admin dir",
    "write the user's checkout",
    "redirect its .git file",
    "point its admin dir elsewhere",
    "move the base",
    "move a sibling's branch",
    "read the orchestrator's state",
    "delete a shared object",
    "plant an object in the shared store",
    "git push",
)


def user_home(tmp_path: Path) -> Path:
    home = tmp_path / "user-home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text("[default]\naws_secret_access_key = x\n")
    return home


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def escape_run(tmp_path: Path, *, commit: bool) -> tuple[FaultRun, Path, Path]:
    home = user_home(tmp_path)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    run = FaultRun(
        tmp_path,
        "escape.py",
        env={
            "FAULT_USER_HOME": str(home),
            "FAULT_REMOTE": str(remote),
            "FAULT_COMMIT": "1" if commit else "0",
        },
        more={"sibling": ("shared_refs.py", {"FAULT_REFS": "honest", "FAULT_SLEEP": "3"})},
        sandbox="bubblewrap",
    )
    return run, home, remote


@pytest.mark.parametrize("commit", [False, True], ids=["orchestrator-commits", "cli-commits"])
def test_every_escape_is_refused_and_both_tasks_land(tmp_path: Path, commit: bool) -> None:
    run, home, remote = escape_run(tmp_path, commit=commit)
    config_before = (run.repo / ".git" / "config").read_bytes()
    hooks_before = sorted(p.name for p in (run.repo / ".git" / "hooks").iterdir())

    finished = run.run(env={"HOME": str(home)}, timeout=90)

    assert finished.returncode == 0, finished.stderr[-3000:]
    for task_id in ("fault", "sibling"):
        assert finished.task(task_id)["status"] == "done", finished.task(task_id)
    seen = {
        entry["name"]: entry
        for entry in map(json.loads, git(run.repo, "show", "main:escapes.json").splitlines())
    }
    assert seen["found a sibling"]["done"], seen["found a sibling"]
    for name in REFUSED:
        assert not seen[name]["done"], f"{name}: {seen[name]}"
    if commit:
        assert seen["commit on its own branch"]["done"], seen["commit on its own branch"]
    # Nothing of it reached anyone: the user's files, git's setup, the sibling's work.
    assert not (home / ".ssh" / "x").exists()
    assert (run.repo / ".git" / "config").read_bytes() == config_before
    assert sorted(p.name for p in (run.repo / ".git" / "hooks").iterdir()) == hooks_before
    assert not (run.repo / ".git" / "info" / "attributes").exists()
    assert not (run.repo / "planted.txt").exists()
    assert run.on_main("work.txt")
    assert git(run.repo, "show", "main:work.txt") == "honest work\n"
    assert not run.on_main("x.txt")  # what it tried to write into its sibling's worktree
    assert git(str(remote), "for-each-ref") == ""  # never pushed to
    assert not list((run.repo / ".git").rglob("*.council-tampered-*"))  # nothing to undo
    fsck = subprocess.run(["git", "-C", str(run.repo), "fsck", "--full"], capture_output=True)
    assert fsck.returncode == 0, fsck.stderr  # every object of every ref still there, intact
    merges = git(run.repo, "log", "--format=%s", "main").splitlines()
    assert sum("fault" in line for line in merges) >= 1


@pytest.mark.parametrize("sandbox", ["bubblewrap", "none"])
def test_a_verify_command_runs_the_clis_tests_inside_the_sandbox(
    tmp_path: Path, sandbox: str
) -> None:
    """A verify command runs tests a CLI wrote: inside the sandbox they reach what the CLI
    could (none of the user's HOME); without one, what the user can."""
    home = user_home(tmp_path)
    (home / ".bashrc").write_text("# the user's\n")
    # The user's HOME is under /tmp here, which a sandbox hides anyway: /tmp is shown, as
    # /home is, so what hides the HOME is the HOME's own rule.
    shown = {"mode": "bubblewrap", "read": [str(tmp_path)]} if sandbox == "bubblewrap" else sandbox
    run = FaultRun(tmp_path, "verify_escape.py", env={"FAULT_USER_HOME": str(home)}, sandbox=shown)
    config = run.config()
    config["verify"] = [[sys.executable, "check_escape.py"]]
    run.config_path.write_text(json.dumps(config))
    config_before = (run.repo / ".git" / "config").read_bytes()

    finished = run.run(env={"HOME": str(home)}, timeout=90)

    task = finished.task()
    if sandbox == "none":  # the same test gets through: what the sandbox is for
        assert task["status"] == "failed" and "escaped: write ~/.ssh/x" in task["error"], task
        return
    assert task["status"] == "done", task
    assert not (home / ".ssh" / "x").exists()
    assert (home / ".bashrc").read_text() == "# the user's\n"
    assert (run.repo / ".git" / "config").read_bytes() == config_before
    assert not (run.repo / ".git" / "hooks" / "post-merge").exists()
    assert not (run.repo / "planted.txt").exists()
