"""A CLI that pushes its commit straight onto the team's base (``git push origin HEAD:main``),
through the real orchestrator (``council run`` in a clone of a bare remote, one PostgreSQL
database, real git, real CLI processes: ``fault_clis/push_base.py`` beside
``fault_clis/neighbours.py``):

- without a sandbox the push goes through: the run says the base moved outside the merge queue
  (a ``merge.outside`` event naming the commit, a warning on its output), the pushing task
  fails with the commit named (its work skipped review and the secret check), the sibling
  lands, and the run exits 1; whether the CLI left more work after the push or not;
- under the sandbox (bubblewrap) the push is refused by the operating system even where a
  ``write:`` path holds the remote (the repository's local remotes stay read-only): the
  remote's base gets only the queue's landings, both tasks land; in a team (as root) and with
  a plain remote and the file backend, as root and as an unprivileged user.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support import spare_user
from tests.support.fault_helpers import FAULT_CLIS
from tests.support.merge_repo import git
from tests.support.spare_user import place, spare_uid


def team_repo(root: Path) -> tuple[Path, Path]:
    """A bare remote under ``root/shared`` with one commit on main, and a workstation's
    clone of it at ``root/ws``."""
    remote = root / "shared" / "remote.git"
    seed = root / "seed"
    git(root, "init", "-q", "--bare", "-b", "main", str(remote))
    git(root, "init", "-q", "-b", "main", str(seed))
    (seed / "README.md").write_text("# team\n")
    git(seed, "add", "README.md")
    git(seed, "-c", "user.name=Seed", "-c", "user.email=seed@x", "commit", "-q", "-m", "first")
    git(seed, "push", "-q", str(remote), "main")
    clone = root / "ws"
    git(root, "clone", "-q", str(remote), str(clone))
    git(clone, "config", "user.name", "Test User")
    git(clone, "config", "user.email", "test@example.com")
    return remote, clone


def write_config(
    root: Path,
    clone: Path,
    sandbox: Any,
    then: str = "",
    backend: str = "postgresql",
    alone: bool = False,
) -> Path:
    clis = {
        "fault": ("push_base.py", {"FAULT_THEN": then}),
        "sibling": ("neighbours.py", {"FAULT_DOES": "work", "FAULT_WORK": "sibling.txt"}),
    }
    if alone:  # its landing is the run's first: nothing else read the base before it
        del clis["sibling"]
    adapters = {
        name: {
            "type": "command",
            "options": {"binary": sys.executable, "args": [str(FAULT_CLIS / script), "{prompt}"]},
            "env": env,
        }
        for name, (script, env) in clis.items()
    }
    config = {
        "sandbox": sandbox,
        "repo": str(clone),
        "adapters": adapters,
        "default_adapter": "fault",
        "capacity": {"sessions": 2},
        "workflow": {"phases": [{"name": "build"}]},
        "retry": {"max_retries": 0, "backoff_initial": 0.05, "backoff_max": 0.1},
        "scheduler": {"tick": 0.05, "heartbeat_interval": 0.5, "stale_threshold": 30},
        "state": {"backend": backend},
        "tasks": [{"id": name, "prompt": "Do the work.", "adapters": [name]} for name in clis],
    }
    path = root / "run.yaml"
    path.write_text(json.dumps(config))
    return path


def council_run(
    root: Path, config: Path, dsn: str, uid: int | None
) -> tuple[int, dict[str, Any], str]:
    env = {"COUNCIL_DATABASE_URL": dsn} if dsn else {}
    done = spare_user.council_run(config, root, uid, env)
    report = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    return done.returncode, report, done.stderr


def events(dsn: str, kind: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT data FROM council.events WHERE type = %s ORDER BY id", (kind,)
        ).fetchall()
    return [row[0] for row in rows]


def task(report: dict[str, Any], task_id: str) -> dict[str, Any]:
    return dict(next(t for t in report["tasks"] if t["task_id"] == task_id))


def pushed_commit(remote: Path) -> str | None:
    """The commit the CLI pushed, when the remote's main has it on its first-parent line (by
    its subject; through a landing it is the second parent's)."""
    out = git(remote, "log", "--first-parent", "--format=%H %s", "main")
    return next((line.split()[0] for line in out.splitlines() if "pushed by its CLI" in line), None)


@pytest.mark.postgres
@pytest.mark.parametrize("then", ["nothing", ""], ids=["tip-pushed", "more-after-push"])
def test_a_push_onto_the_teams_base_is_said_and_fails_its_task(
    tmp_path: Path, pg_dsn: str, then: str
) -> None:
    remote, clone = team_repo(tmp_path)
    config = write_config(tmp_path, clone, "none", then)

    code, report, err = council_run(tmp_path, config, pg_dsn, None)

    pushed = pushed_commit(remote)
    assert pushed is not None, err[-2000:]  # no sandbox: nothing kept the CLI from pushing
    assert code == 1, err[-2000:]
    fault = task(report, "fault")
    assert fault["status"] == "failed", fault
    said = events(pg_dsn, "task.failed")
    assert [e["error"] for e in said if e["task_id"] == "fault"] == [fault["error"]]
    assert fault["error"].startswith("its work reached origin/main outside the merge queue: ")
    assert f"{pushed[:10]} 'cli: work, pushed by its CLI' pushed straight onto it" in fault["error"]
    assert task(report, "sibling")["status"] == "done"
    kept = git(clone, "worktree", "list", "--porcelain")
    assert "branch refs/heads/council/fault/1" in kept  # its worktree and branch, for a human
    outside = events(pg_dsn, "merge.outside")
    assert [e["commit"] for e in outside] == [pushed]
    assert outside[0]["remote"] == "origin" and outside[0]["base_branch"] == "main"
    assert f"main moved outside the merge queue: {pushed}" in err  # said on its output
    # It stays on the team's base (nothing rewrites a shared branch); the sibling landed.
    assert git(remote, "merge-base", "--is-ancestor", pushed, "main", check=False) == ""
    assert git(remote, "show", "main:sibling.txt") == "sibling.txt: honest work"


@pytest.mark.postgres
def test_a_push_before_the_runs_first_landing_is_said_too(tmp_path: Path, pg_dsn: str) -> None:
    """The pushing task alone: no landing read the base before its push."""
    remote, clone = team_repo(tmp_path)
    config = write_config(tmp_path, clone, "none", alone=True)

    code, report, err = council_run(tmp_path, config, pg_dsn, None)

    pushed = pushed_commit(remote)
    assert pushed is not None and code == 1, err[-2000:]
    assert task(report, "fault")["status"] == "failed"
    assert pushed[:10] in task(report, "fault")["error"]
    assert [e["commit"] for e in events(pg_dsn, "merge.outside")] == [pushed]


@pytest.fixture(params=["root", "user"])
def run_as(request: pytest.FixtureRequest) -> Iterator[tuple[Path, int | None]]:
    """Where the run lives and who runs it: root, or the spare uid, in a directory of its own
    that it can reach (pytest's are root's alone)."""
    uid = None if request.param == "root" else spare_uid()
    with place(request.param) as where:
        yield where, uid


def refused_under_the_sandbox(root: Path, uid: int | None, backend: str, dsn: str) -> None:
    remote, clone = team_repo(root)
    # The remote sits under a path the sandbox makes writable: only the seal keeps it whole.
    sandbox = {"mode": "bubblewrap", "write": [str(root / "shared")]}
    config = write_config(root, clone, sandbox, backend=backend)
    before = git(remote, "rev-parse", "main")

    code, report, err = council_run(root, config, dsn, uid)

    assert code == 0, err[-2000:]
    assert pushed_commit(remote) is None
    landed_on = remote if backend == "postgresql" else clone  # a team lands on the remote
    said = git(landed_on, "show", "main:push.txt")
    assert said.startswith("refused:") and "unable to create temporary object directory" in said
    for task_id in ("fault", "sibling"):
        assert task(report, task_id)["status"] == "done", task(report, task_id)
    first_parents = git(remote, "log", "--first-parent", "--format=%P", f"{before}..main")
    assert all(len(line.split()) == 2 for line in first_parents.splitlines())  # landings only
    if backend == "file":
        assert git(remote, "rev-parse", "main") == before  # nothing of the run reached it


@pytest.mark.postgres
@pytest.mark.sandbox
def test_under_the_sandbox_a_push_onto_the_teams_local_remote_is_refused(pg_dsn: str) -> None:
    """As root (the unprivileged user cannot reach the test's database server: its socket is
    root's)."""
    with place("root") as root:
        refused_under_the_sandbox(root, None, "postgresql", pg_dsn)
    assert events(pg_dsn, "merge.outside") == []


@pytest.mark.sandbox
def test_under_the_sandbox_a_push_onto_a_plain_local_remote_is_refused(
    run_as: tuple[Path, int | None],
) -> None:
    """Without a team too: the repository's ``origin`` is a bare repository on disk."""
    root, uid = run_as
    refused_under_the_sandbox(root, uid, "file", "")
