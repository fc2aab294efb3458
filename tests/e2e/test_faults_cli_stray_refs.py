"""Refs and files a CLI makes beside its own branch are blamed on the session whose name or
reach they carry, never on a sibling: the real orchestrator (``council run``), real git, real
CLI processes (``fault_clis/stray_refs.py`` beside ``fault_clis/neighbours.py``).

- Under the sandbox (bubblewrap), as root and as an unprivileged user: a CLI's extra branches
  in its own ref directory (``git branch council/<task>/99``, writable there by design) are its
  session's alone: it is blocked on its first attempt, the branches are moved aside (kept under
  ``refs/council/tampered/``), and the sibling running beside it lands on its first attempt,
  never rechecked. Garbage in its own reflogs (a reflog of no ref, lines that are none or name
  a missing commit) is its session's too: put right, so ``git fsck`` passes while its branch is
  kept. Stray files in its own admin directory are its own: nobody is blamed.
- Without a sandbox a ref's name proves nothing: a branch made in the sibling's namespace (with
  git, or straight into ``packed-refs``) is undone, both sessions are rechecked once, and both
  land; the sibling never fails.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import spare_user
from tests.support.fault_helpers import FaultRun
from tests.support.merge_repo import git
from tests.support.spare_user import place, spare_uid

SIBLING = "sibling"


def stray_run(base: Path, stray: str, *, sandbox: str, **env: str) -> FaultRun:
    run = FaultRun(
        base,
        "stray_refs.py",
        env={"FAULT_STRAY": stray, "FAULT_WAIT": "1", "FAULT_SLEEP": "0.5", **env},
        more={
            SIBLING: (
                "neighbours.py",
                {"FAULT_DOES": "work", "FAULT_WORK": "sibling.txt", "FAULT_SLEEP": "4"},
            )
        },
        sandbox=sandbox,
    )
    run.retry = {"max_retries": 2, "backoff_initial": 0.05, "backoff_max": 0.1}
    run.write_config()
    return run


@pytest.fixture(params=["root", "user"])
def as_user(request: pytest.FixtureRequest) -> int | None:
    """None: the run as root (as CI runs); else the spare uid it runs as."""
    return None if request.param == "root" else spare_uid()


@pytest.fixture
def base(tmp_path: Path, as_user: int | None) -> Iterator[Path]:
    """Where the run lives: ``tmp_path`` as root; for the spare user a directory it can reach."""
    if as_user is None:
        yield tmp_path
        return
    with place("user") as where:
        yield where


def council_run(run: FaultRun, uid: int | None) -> tuple[int, str]:
    """``council run --json`` as a process, as ``uid`` when given; exit code and stderr."""
    done = spare_user.council_run(run.config_path, run.tmp_path, uid)
    return done.returncode, done.stderr


def attempts(run: FaultRun) -> dict[str, list[dict[str, Any]]]:
    """What the stray CLI tried, from the ``stray.json`` it committed with its work (on main
    when it landed, else on its kept branch)."""
    for where in ("main", "refs/heads/council/fault/1"):
        shown = git(run.repo, "show", f"{where}:stray.json", check=False)
        if shown:
            break
    found: dict[str, list[dict[str, Any]]] = {}
    for line in shown.splitlines():
        entry = json.loads(line)
        found.setdefault(entry["name"], []).append(entry)
    return found


def refs(repo: Path, *prefixes: str) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", *prefixes).split()


def fsck(repo: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(repo), "fsck", "--full"], capture_output=True)


def sibling_landed_first_time(run: FaultRun) -> None:
    sibling = run.state(SIBLING)
    assert sibling["status"] == "done" and sibling["attempt"] == 1, sibling["error"]
    assert sibling["metadata"].get("rechecks", 0) == 0
    assert sibling["metadata"].get("failures", 0) == 0
    assert run.on_main("sibling.txt")
    assert not [e for e in run.events("task.retry") if e["data"]["task_id"] == SIBLING]


@pytest.mark.sandbox
def test_branches_a_cli_makes_in_its_own_namespace_are_its_alone(
    base: Path, as_user: int | None
) -> None:
    run = stray_run(base, "own", sandbox="bubblewrap")

    code, err = council_run(run, as_user)

    assert code != 0, err[-2000:]  # a task failed: the run says so
    tried = attempts(run)
    assert tried["own 99"][0]["done"] and tried["own wip/x"][0]["done"], tried
    sibling_landed_first_time(run)
    fault = run.state()
    assert fault["status"] == "failed" and fault["attempt"] == 1, fault["error"]
    assert fault["error"].startswith("blocked, not merged: the CLI changed outside its worktree")
    for name in ("council/fault/99", "council/fault/wip/x"):
        assert f"refs/heads/{name}: created at" in fault["error"]
        assert "(moved aside to refs/council/tampered/" in fault["error"]
    assert refs(run.repo, "refs/heads/council/fault/") == ["refs/heads/council/fault/1"]
    kept = refs(run.repo, "refs/council/tampered/")
    assert sorted(ref.split("/heads/", 1)[1] for ref in kept) == [
        "council/fault/99",
        "council/fault/wip/x",
    ]
    assert not run.on_main("work.txt")
    assert fsck(run.repo).returncode == 0


@pytest.mark.sandbox
def test_forged_reflogs_in_its_own_directory_are_put_right_and_its_alone(
    base: Path, as_user: int | None
) -> None:
    run = stray_run(base, "reflog", sandbox="bubblewrap")

    code, err = council_run(run, as_user)

    assert code != 0, err[-2000:]
    tried = attempts(run)
    assert all(entry["done"] for each in tried.values() for entry in each), tried
    sibling_landed_first_time(run)
    fault = run.state()
    assert fault["status"] == "failed" and fault["attempt"] == 1, fault["error"]
    assert "logs/refs/heads/council/fault/ghost: a reflog of no ref (removed)" in fault["error"]
    assert (
        "logs/refs/heads/council/fault/1: 2 line(s) not a reflog line or naming a missing "
        "commit (dropped)"
    ) in fault["error"]
    assert refs(run.repo, "refs/heads/council/fault/") == ["refs/heads/council/fault/1"]
    checked = fsck(run.repo)  # its branch is kept for a human: its reflog is git's again
    assert checked.returncode == 0, checked.stderr
    log = git(run.repo, "reflog", "show", "--format=%H", "refs/heads/council/fault/1")
    assert log.split()[0] == git(run.repo, "rev-parse", "refs/heads/council/fault/1")


@pytest.mark.sandbox
def test_stray_files_in_its_own_admin_directory_are_its_own_and_nobody_is_blamed(
    base: Path, as_user: int | None
) -> None:
    run = stray_run(base, "admin", sandbox="bubblewrap")

    code, err = council_run(run, as_user)

    assert code == 0, err[-2000:]
    tried = attempts(run)
    assert tried and all(entry["done"] for each in tried.values() for entry in each), tried
    sibling_landed_first_time(run)
    fault = run.state()
    assert fault["status"] == "done" and fault["attempt"] == 1, fault["error"]
    assert run.on_main("work.txt") and run.on_main("sibling.txt")
    assert refs(run.repo, "refs/heads/council/") == []  # both landed: branches retired
    checked = fsck(run.repo)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("stray", ["sibling", "sibling-packed"])
def test_without_a_sandbox_a_ref_in_the_siblings_name_never_fails_the_sibling(
    tmp_path: Path, stray: str
) -> None:
    marker = tmp_path / "made"
    run = stray_run(tmp_path, stray, sandbox="none", FAULT_MARKER=str(marker))

    code, err = council_run(run, None)

    assert code == 0, err[-2000:]
    assert marker.exists()
    for task_id in ("fault", SIBLING):  # each rechecked once, neither failed
        state = run.state(task_id)
        assert state["status"] == "done", state["error"]
        assert state["metadata"].get("failures", 0) == 0
    said = [e["data"]["error"] for e in run.events("task.retry")]
    assert said and all("refs/heads/council/sibling/99: created at" in line for line in said)
    assert all("council/fault/1, council/sibling/1 ran then" in line for line in said)
    assert refs(run.repo, "refs/heads/council/") == []  # undone, both branches retired
    assert len(refs(run.repo, "refs/council/tampered/")) == 1  # kept aside, nothing lost
    assert run.on_main("work.txt") and run.on_main("sibling.txt")
