"""A branch written, moved and deleted on git's files as git does it (``git.loose_refs``): git
reads the same values and reflogs, ``fsck`` finds nothing, wherever it cannot be done exactly
(or something was planted) nothing is written through it, and a SIGKILL at any system call of
a write leaves the ref at its old value or its new one and never a ``.lock``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.git.loose_refs import delete_branch, write_branch
from tests.support.worktree_helpers import git, git_ok, make_repo

ENV = {"GIT_COMMITTER_NAME": "CLI Council", "GIT_COMMITTER_EMAIL": "council@localhost"}
REF = "refs/heads/council/t1/1"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Only the repository's own config decides (not the machine's or the user's).
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "global.gitconfig"))
    return make_repo(tmp_path / "repo")


def _parsed(lines: list[str]) -> list[tuple[str, str, str, str]]:
    """Each reflog line as (old, new, who and when, message)."""
    parsed = []
    for line in lines:
        head, _, message = line.partition("\t")
        old, new, who = head.split(" ", 2)
        parsed.append((old, new, who, message))
    return parsed


def _log_lines(repo: Path, ref: str) -> list[str]:
    return (repo / ".git" / "logs" / ref).read_text().splitlines()


def test_a_branch_made_and_moved_reads_as_gits_own(repo: Path) -> None:
    common = repo / ".git"
    tip = git(repo, "rev-parse", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "next")
    after = git(repo, "rev-parse", "main")

    assert write_branch(common, REF, tip, None, "council: new session", ENV) is True
    assert git(repo, "rev-parse", REF) == tip
    assert write_branch(common, REF, after, tip, "council: commit", ENV) is True
    assert git(repo, "rev-parse", REF) == after

    # The same reflog lines git writes for the same two updates (the time aside).
    git(repo, "update-ref", "-m", "council: new session", "refs/heads/by-git", tip, "0" * 40)
    git(repo, "update-ref", "-m", "council: commit", "refs/heads/by-git", after, tip)
    ours, theirs = _parsed(_log_lines(repo, REF)), _parsed(_log_lines(repo, "refs/heads/by-git"))
    assert [(old, new, msg) for old, new, _, msg in ours] == [
        (old, new, msg) for old, new, _, msg in theirs
    ]
    assert all(re.fullmatch(r"CLI Council <council@localhost> \d+ [+-]\d{4}", who)
               for _, _, who, _ in ours)  # fmt: skip
    assert git(repo, "reflog", "show", "--format=%gs", REF).splitlines() == [
        "council: commit",
        "council: new session",
    ]
    assert git_ok(repo, "fsck", "--no-progress")
    assert not (common / f"{REF}.lock").exists()


def test_a_compare_that_fails_writes_nothing(repo: Path) -> None:
    common = repo / ".git"
    tip = git(repo, "rev-parse", "main")
    assert write_branch(common, REF, tip, None, "made", ENV) is True
    before = _log_lines(repo, REF)

    assert write_branch(common, REF, tip, None, "again", ENV) is False  # exists already
    assert write_branch(common, REF, tip, "1" * 40, "moved", ENV) is False  # not at old
    assert delete_branch(common, REF, "1" * 40) is False
    assert _log_lines(repo, REF) == before and git(repo, "rev-parse", REF) == tip
    assert not (common / f"{REF}.lock").exists()


def test_a_move_is_logged_in_the_head_of_the_worktree_on_it(repo: Path, tmp_path: Path) -> None:
    common = repo / ".git"
    tip = git(repo, "rev-parse", "main")
    git(repo, "worktree", "add", "-q", "-b", "council/t1/1", str(tmp_path / "wt"), tip)
    admin = common / "worktrees" / "wt"
    git(repo, "commit", "-q", "--allow-empty", "-m", "next")
    after = git(repo, "rev-parse", "main")
    head_lines = len((admin / "logs" / "HEAD").read_text().splitlines())

    assert write_branch(common, REF, after, tip, "council: commit", ENV, worktree_admin=admin)
    logged = (admin / "logs" / "HEAD").read_text().splitlines()
    assert len(logged) == head_lines + 1 and logged[-1].endswith("\tcouncil: commit")
    assert git(tmp_path / "wt", "rev-parse", "HEAD") == after


def test_a_deleted_branch_leaves_what_git_leaves(repo: Path) -> None:
    common = repo / ".git"
    tip = git(repo, "rev-parse", "main")
    assert write_branch(common, REF, tip, None, "made", ENV) is True

    assert delete_branch(common, REF, tip) is True
    assert not git_ok(repo, "rev-parse", "--verify", "--quiet", REF)
    # Its reflog and the directories left empty are gone, as ``update-ref -d`` leaves them.
    assert not (common / "logs" / "refs" / "heads" / "council").exists()
    assert not (common / "refs" / "heads" / "council").exists()
    assert (common / "refs" / "heads" / "main").exists()
    assert delete_branch(common, REF, tip) is False  # gone already
    assert git_ok(repo, "fsck", "--no-progress")


def test_git_is_asked_where_this_cannot_be_exact(repo: Path, tmp_path: Path) -> None:
    common = repo / ".git"
    tip = git(repo, "rev-parse", "main")
    # A packed branch is deleted by git (it rewrites packed-refs); a name beside a packed one.
    git(repo, "branch", "council/t2/1")
    git(repo, "pack-refs", "--all")
    assert delete_branch(common, "refs/heads/council/t2/1", tip) is None
    assert write_branch(common, "refs/heads/council/t2/1/x", tip, None, "m", ENV) is None
    # A lock another writer holds.
    (common / "refs" / "heads" / "council" / "t3").mkdir(parents=True)
    (common / "refs" / "heads" / "council" / "t3" / "1.lock").write_text("")
    assert write_branch(common, "refs/heads/council/t3/1", tip, None, "m", ENV) is None
    # Not a plain branch, no identity, a message git would rewrite.
    assert write_branch(common, "refs/council/rescue/s1", tip, None, "m", ENV) is None
    assert write_branch(common, "refs/heads/a/../b", tip, None, "m", ENV) is None
    assert write_branch(common, REF, tip, None, "m", {}) is None
    assert write_branch(common, REF, tip, None, "two\nlines", ENV) is None
    # A config this reader does not judge, or one that makes files shared.
    git(repo, "config", "core.sharedRepository", "group")
    assert write_branch(common, REF, tip, None, "m", ENV) is None
    git(repo, "config", "--unset", "core.sharedRepository")
    with (common / "config").open("a") as config:
        config.write("[include]\n\tpath = other\n")
    assert write_branch(common, REF, tip, None, "m", ENV) is None
    assert not git_ok(repo, "rev-parse", "--verify", "--quiet", REF)


def test_links_planted_in_the_tasks_ref_and_log_directories_are_never_followed(
    repo: Path, tmp_path: Path
) -> None:
    """A CLI writes its task's ref directory and the reflogs beside it: a link it left at
    the ref or its log is refused (git then answers), its target untouched."""
    common = repo / ".git"
    tip = git(repo, "rev-parse", "main")
    outside = tmp_path / "outside"
    outside.write_text("kept\n")
    refs = common / "refs" / "heads" / "council" / "t1"
    refs.mkdir(parents=True)
    os.symlink(outside, refs / "1")
    assert not write_branch(common, REF, tip, None, "m", ENV)  # there: not made again
    assert write_branch(common, REF, tip, "1" * 40, "m", ENV) is None
    assert delete_branch(common, REF, tip) is None
    os.unlink(refs / "1")
    logs = common / "logs" / "refs" / "heads" / "council" / "t1"
    logs.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, logs / "1")
    assert write_branch(common, REF, tip, None, "m", ENV) is None
    assert not os.path.lexists(refs / "1")  # refused before the ref was written
    os.unlink(logs / "1")
    os.symlink(outside, common / "logs" / "refs" / "heads" / "council" / "t9")
    assert write_branch(common, "refs/heads/council/t9/1", tip, None, "m", ENV) is None
    assert outside.read_text() == "kept\n"
    assert not (refs / "1").exists() and not (refs / "1.lock").exists()


def test_no_reflog_where_the_config_turns_them_off(repo: Path) -> None:
    common = repo / ".git"
    tip = git(repo, "rev-parse", "main")
    git(repo, "config", "core.logAllRefUpdates", "false")
    assert write_branch(common, REF, tip, None, "m", ENV) is True
    assert not (common / "logs" / REF).exists()
    git(repo, "update-ref", "-m", "m", "refs/heads/by-git", tip, "0" * 40)
    assert not (common / "logs" / "refs" / "heads" / "by-git").exists()  # git agrees


# A child that makes, moves and deletes the branch, killing itself (SIGKILL) at its n-th
# system call that touches a file (Python's audit events), as another thread's crash point
# or a kill from outside would stop the orchestrator there.
_CHILD = """
import os, signal, sys
from pathlib import Path
from orchestrator.git.loose_refs import delete_branch, write_branch
common, op, tip, after = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
stop = int(sys.argv[5])
seen = 0
def hook(event, args):
    global seen
    if event in ("open", "os.link", "os.rename", "os.replace", "os.remove", "os.mkdir", "os.rmdir"):
        seen += 1
        if seen == stop:
            os.kill(os.getpid(), signal.SIGKILL)
env = {"GIT_COMMITTER_NAME": "CLI Council", "GIT_COMMITTER_EMAIL": "council@localhost"}
ref = "refs/heads/council/t1/1"
sys.addaudithook(hook)
if op == "make":
    print(write_branch(common, ref, tip, None, "council: new session", env))
elif op == "move":
    print(write_branch(common, ref, after, tip, "council: commit", env))
else:
    print(delete_branch(common, ref, after))
"""


@pytest.mark.parametrize("op", ["make", "move", "delete"])
def test_a_kill_at_any_step_leaves_no_lock_and_the_ref_old_or_new(
    repo: Path, tmp_path: Path, op: str
) -> None:
    tip = git(repo, "rev-parse", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "next")
    after = git(repo, "rev-parse", "main")
    before, wanted = {"make": (None, tip), "move": (tip, after), "delete": (after, None)}[op]
    stop = 0
    while True:
        stop += 1
        assert stop < 200, "the write never ended"
        work = tmp_path / f"{op}-{stop}"
        subprocess.run(["cp", "-a", str(repo), str(work)], check=True)
        wc = work / ".git"
        if before is not None:
            git(work, "update-ref", REF, before)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(wc), op, tip, after, str(stop)],
            env=env, capture_output=True, text=True, timeout=25,
        )  # fmt: skip
        killed = done.returncode == -signal.SIGKILL
        assert killed or done.returncode == 0, done.stderr
        assert not list(wc.rglob("*.lock")), f"a lock left by a kill at step {stop}"
        found = git(work, "rev-parse", "--verify", "--quiet", REF, check=False) or None
        assert found in ({before, wanted} if killed else {wanted}), (stop, found)
        assert git_ok(work, "fsck", "--no-progress")
        # Nothing left in the way: git writes the ref after the kill as if nothing happened.
        git(work, "update-ref", REF, tip)
        git(work, "update-ref", "-d", REF)
        if not killed:
            assert done.stdout.strip() == "True"
            break
    assert stop > 3  # the kill met the write's steps before it ended
