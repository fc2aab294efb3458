"""CLIs that run real git against the repository's shared state, through the real orchestrator.

Git's own housekeeping (``git gc`` in the user's checkout) is not tampering. A CLI that moves
the base ref, deletes other sessions' branches and rescue refs, checks the base branch out in
a worktree of its own or switches its own worktree to the base is found after its session,
only its attempt fails, the refs are put back from what the orchestrator recorded (what the
CLI made kept under ``refs/council/tampered/``), no merge waits for its checkout, and no
cleanup ever commits onto the base.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import anyio

from orchestrator.worktrees.manager import WorktreeManager
from tests.support.fault_helpers import COUNCIL, TASK, FaultRun
from tests.support.merge_repo import git
from tests.support.scheduler_helpers import new_repo

BLOCKED = "blocked, not merged: the CLI changed outside its worktree: "


def refs(repo: Path, *patterns: str) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", *patterns)
    return dict(line.split(" ", 1) for line in out.splitlines())


def kept(repo: Path) -> dict[str, str]:
    return refs(repo, "refs/council/tampered")


async def run_within(run: FaultRun, seconds: float = 40.0) -> dict[str, object]:
    with anyio.fail_after(seconds):  # a merge waiting forever fails the test, never hangs it
        return await run.run_here()


async def test_git_gc_in_the_users_checkout_is_not_tampering(tmp_path: Path) -> None:
    run = FaultRun(tmp_path, "shared_refs.py", sandbox="none", env={"FAULT_REFS": "gc"})
    for n in range(3):  # loose refs for gc to pack, and a remote-style ref namespace
        git(run.repo, "branch", f"user-{n}")
    report = await run_within(run)

    assert report["totals"]["done"] == 1, run.state()["error"]  # type: ignore[index]
    assert run.on_main("work.txt")
    assert (run.repo / ".git" / "packed-refs").is_file()  # gc did run, and pack refs


async def test_a_cli_moving_the_base_ref_fails_and_the_base_is_put_back(tmp_path: Path) -> None:
    run = FaultRun(tmp_path, "shared_refs.py", sandbox="none", env={"FAULT_REFS": "move-base"})
    before = git(run.repo, "rev-parse", "main")
    await run_within(run)

    state = run.state()
    assert state["status"] == "failed" and state["error"].startswith(BLOCKED), state["error"]
    assert "refs/heads/main: moved from" in state["error"]
    assert "restored to" in state["error"]
    assert git(run.repo, "rev-parse", "main") == before
    assert run.on_main("README.md") and not run.on_main("work.txt")
    evil = [sha for ref, sha in kept(run.repo).items() if ref.endswith("/heads/main")]
    assert evil and git(run.repo, "log", "-1", "--format=%s", evil[0]) == "evil"


async def test_a_cli_deleting_other_sessions_refs_fails_and_they_are_restored(
    tmp_path: Path,
) -> None:
    run = FaultRun(tmp_path, "shared_refs.py", sandbox="none", env={"FAULT_REFS": "delete-others"})
    # What earlier runs left: a kept branch with work on it and a rescue ref.
    git(run.repo, "switch", "-q", "-c", "council/earlier/1")
    (run.repo / "earlier.txt").write_text("earlier work\n")
    git(run.repo, "add", "earlier.txt")
    git(run.repo, "commit", "-q", "-m", "earlier work")
    git(run.repo, "switch", "-q", "main")
    earlier = git(run.repo, "rev-parse", "council/earlier/1")
    git(run.repo, "update-ref", "refs/council/rescue/earlier-s1", earlier)
    before = refs(run.repo, "refs/heads/council/earlier", "refs/council/rescue")
    await run_within(run)

    state = run.state()
    assert state["status"] == "failed" and state["error"].startswith(BLOCKED), state["error"]
    for ref in before:
        assert f"{ref}: deleted (it was at {earlier[:10]}) (restored" in state["error"]
    assert refs(run.repo, "refs/heads/council/earlier", "refs/council/rescue") == before
    assert not run.on_main("work.txt")


async def test_honest_sessions_side_by_side_are_not_blamed_for_the_orchestrators_ref_writes(
    tmp_path: Path,
) -> None:
    # While the slow session runs, the quick one's branch is created, committed, merged into
    # the base and dropped by the orchestrator: none of that is the slow CLI's doing.
    run = FaultRun(
        tmp_path,
        "shared_refs.py",
        sandbox="none",
        env={"FAULT_REFS": "honest", "FAULT_SLEEP": "2.5"},
        more={"quick": ("outside.py", {"FAULT_TARGET": "quick.txt"})},
    )
    report = await run_within(run)

    assert report["totals"]["done"] == 2, [run.state(t)["error"] for t in (TASK, "quick")]
    assert run.on_main("work.txt") and run.on_main("quick.txt")
    assert not kept(run.repo)


async def test_a_worktree_of_the_base_added_by_a_cli_never_makes_merges_wait(
    tmp_path: Path,
) -> None:
    checkout = tmp_path / "base-checkout"
    run = FaultRun(
        tmp_path,
        "shared_refs.py",
        sandbox="none",
        env={"FAULT_REFS": "add-base", "FAULT_DIR": str(checkout)},
        more={"after": ("outside.py", {"FAULT_TARGET": "after.txt"})},
    )
    config = run.config()
    config["capacity"] = {"sessions": 1}  # the honest task runs after the CLI, and merges
    config["tasks"][0]["priority"] = 10
    run.config_path.write_text(json.dumps(config))
    report = await run_within(run)

    state = run.state()
    assert state["status"] == "failed" and state["error"].startswith(BLOCKED), state["error"]
    assert f"worktree {checkout}: has the base branch main checked out (detached" in state["error"]
    assert report["totals"]["done"] == 1 and run.on_main("after.txt")
    assert git(checkout, "symbolic-ref", "-q", "HEAD", check=False) == ""  # detached
    work = [sha for ref, sha in kept(run.repo).items() if "/worktree-" in ref]
    assert work, kept(run.repo)
    readme = git(run.repo, "show", f"{work[0]}:README.md")
    assert "changed in a checkout of the base" in readme  # the CLI's work is kept
    assert "changed in a checkout of the base" not in git(run.repo, "show", "main:README.md")


async def test_a_cli_switching_its_worktree_to_the_base_fails_and_prune_never_commits_to_it(
    tmp_path: Path,
) -> None:
    run = FaultRun(tmp_path, "shared_refs.py", sandbox="none", env={"FAULT_REFS": "switch-base"})
    before = git(run.repo, "rev-parse", "main")
    await run_within(run)

    state = run.state()
    assert state["status"] == "failed" and state["error"].startswith(BLOCKED), state["error"]
    assert "has the base branch main checked out (detached" in state["error"]
    worktree = Path(state["worktree"])
    # The base's checkout was released (detached), and the session's own commit put HEAD back
    # on the session's branch, never the base's (``own_commit``).
    assert git(worktree, "symbolic-ref", "-q", "HEAD", check=False) in (
        "",
        f"refs/heads/{state['branch']}",
    )
    pruned = subprocess.run(
        [*COUNCIL, "worktrees", "prune", str(run.config_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COUNCIL_DISABLE_PLUGINS": "1"},
    )
    assert pruned.returncode == 0, pruned.stderr
    assert git(run.repo, "rev-parse", "main") == before  # nothing was committed onto the base
    work = [sha for ref, sha in kept(run.repo).items() if "/worktree-" in ref]
    assert work and git(run.repo, "show", f"{work[0]}:switched.txt") == "left on the base"


async def test_no_cleanup_commits_onto_a_branch_the_task_does_not_own(tmp_path: Path) -> None:
    # A worktree left on the base however it got there (a crash before the tamper check ran,
    # another orchestrator's CLI): removing it commits the work on a detached HEAD, kept by
    # the rescue ref, never on the base.
    repo = new_repo(tmp_path)
    before = git(repo, "rev-parse", "main")
    manager = WorktreeManager(repo, base_branch="main")
    session = await manager.create_session_worktree("s1", "claude", "t1")
    git(session.path, "switch", "-q", "--ignore-other-worktrees", "main")
    (session.path / "left.txt").write_text("left on the base\n")

    removed = await manager.remove_session_worktree(session)

    assert git(repo, "rev-parse", "main") == before
    assert removed.rescue_commit and removed.rescue_ref
    assert git(repo, "show", f"{removed.rescue_ref}:left.txt") == "left on the base"
    assert git(repo, "branch", "--list", "council/t1/1") == ""  # merged (at the base): dropped
