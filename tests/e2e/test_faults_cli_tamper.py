"""CLIs that reach outside their worktree, run by the real orchestrator (``Council``): a hook
planted in the shared ``.git/hooks``, ``core.hooksPath``, an alias or a filter added to
``.git/config``, a file written into the main checkout or next to the worktree. Each is found
after the session and named in the task's error; the task fails without merging, its branch
keeps the work; git's setup is put back (the CLI's version kept aside), so neither the
orchestrator's git nor the user's later git ever runs what was planted: the planted commands
would append to a marker file, which stays absent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.fault_helpers import FaultRun

BLOCKED = "blocked, not merged: the CLI changed outside its worktree: "


def blocked(run: FaultRun) -> str:
    """The failed task's error, after checking what every blocked task shares."""
    state = run.state()
    assert state["status"] == "failed" and state["attempt"] == 1  # not retried
    assert state["error"].startswith(BLOCKED), state["error"]
    assert state["merged_commit"] is None and not run.on_main("work.txt")
    assert run.branch_has(state["branch"], "work.txt")  # the work is kept for a human
    assert Path(state["worktree"]).is_dir()
    return str(state["error"])


def user_commits(repo: Path) -> None:
    """What a user does next in the main checkout: commit (hooks run), look at the diff."""
    (repo / "user.txt").write_text("the user's own change\n")
    for args in (["add", "user.txt"], ["commit", "-q", "-m", "user"], ["diff", "HEAD~1"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.mark.parametrize(
    ("how", "named"),
    [
        ("hook", [".git/hooks/pre-commit: created", ".git/hooks/post-merge: created"]),
        ("hooks-path", [".git/config: added core.hookspath="]),
        ("alias", [".git/config: added alias.st=!echo ran"]),
        ("filter", [".git/config: added filter.evil.clean=", ".git/info/attributes: created"]),
    ],
)
async def test_tampering_with_git_is_undone_named_and_blocks_the_merge(
    tmp_path: Path, how: str, named: list[str]
) -> None:
    marker = tmp_path / "marker"
    run = FaultRun(
        tmp_path,
        "tamper.py",
        sandbox="none",
        env={
            "FAULT_TAMPER": how,
            "FAULT_MARKER": str(marker),
            "FAULT_HOOKS_DIR": str(tmp_path / "planted-hooks"),
        },
    )
    config_before = (run.repo / ".git" / "config").read_bytes()
    await run.run_here()

    error = blocked(run)
    for part in named:
        assert part in error
    git_dir = run.repo / ".git"
    assert (git_dir / "config").read_bytes() == config_before
    assert not (git_dir / "info" / "attributes").exists()
    active = [p.name for p in (git_dir / "hooks").iterdir() if not p.name.endswith(".sample")]
    assert all(".council-tampered-" in name for name in active)
    aside = [p for p in git_dir.rglob("*.council-tampered-*")]
    assert aside, "what the CLI wrote is kept for a human to look at"
    assert not marker.exists(), "the orchestrator's git ran what the CLI planted"
    user_commits(run.repo)
    assert not marker.exists(), "the user's git ran what the CLI planted"


@pytest.mark.parametrize(
    ("target", "named"),
    [
        ("{repo}/notes.txt", "main checkout notes.txt: untracked, new"),
        ("{repo}/README.md", "main checkout README.md: modified"),
        ("../escaped.txt", ".council/worktrees/escaped.txt: created"),
    ],
)
async def test_a_write_outside_the_worktree_is_named_and_blocks_the_merge(
    tmp_path: Path, target: str, named: str
) -> None:
    run = FaultRun(tmp_path, "outside.py", sandbox="none")
    run.env = {"FAULT_TARGET": target.format(repo=run.repo)}
    run.write_config()
    await run.run_here()

    assert named in blocked(run)
    if target.startswith("{repo}"):  # the user's checkout is reported, never touched
        written = Path(target.format(repo=run.repo)).read_text()
        assert written == "written from outside the worktree\n"


async def test_hooks_already_in_the_repository_never_run_in_the_orchestrators_git(
    tmp_path: Path,
) -> None:
    # Not tampering (they were there before the session), yet the orchestrator's commits,
    # merges, ref updates and fast-forward of the main checkout must not run them either.
    marker = tmp_path / "marker"
    run = FaultRun(tmp_path, "outside.py", sandbox="none", env={"FAULT_TARGET": "inside.txt"})
    hooks = run.repo / ".git" / "hooks"
    for name in ("pre-commit", "commit-msg", "post-commit", "post-merge", "post-checkout",
                 "reference-transaction", "post-rewrite", "pre-merge-commit"):  # fmt: skip
        (hooks / name).write_text(f"#!/bin/sh\necho {name} >> '{marker}'\n")
        (hooks / name).chmod(0o755)
    report = await run.run_here()

    assert report["totals"]["done"] == 1, report["tasks"]
    assert run.on_main("work.txt") and run.on_main("inside.txt")
    assert not marker.exists()
