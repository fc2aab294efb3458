"""Team mode never pushes a secret (issue 46): a CLI that commits a secret the run knows on its
own branch (as aider does: ``fault_clis/secret_commit.py``, as is, wrapped over two lines,
base64-encoded and wrapped) is checked before its branch is published for takeover
(``merge.push_gate``), through the real orchestrator: ``council run`` in a clone of a bare
remote, one PostgreSQL database, real git, real CLI processes.

- a hit pushes nothing: no object reachable from any ref of the remote holds the value in any
  form, the warning names the file and line (never the value), the task fails, not retried
  (``secret_in_work``), its work kept on the clone's branch; the clean sibling is published
  and lands;
- a check past its budget (``COUNCIL_SECRET_SCAN_SECONDS`` tiny) pushes nothing either.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support import spare_user
from tests.support.fault_helpers import FAULT_CLIS
from tests.support.merge_repo import git

pytestmark = pytest.mark.postgres

LEAKS = "file,wrapped,base64wrapped,message"


def team_repo(root: Path) -> tuple[Path, Path]:
    """A bare remote with one commit on main, and a workstation's clone of it."""
    remote = root / "remote.git"
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


def write_config(root: Path, clone: Path, value: str) -> Path:
    """Task ``fault`` commits ``value`` (known as ``adapters.fault.env.MY_TOKEN``) where
    ``LEAKS`` says; task ``sibling`` commits clean work. One session at a time: a CLI moving its
    own branch while another session runs is taken for tampering by that one's check."""
    clis = {
        "fault": {"MY_TOKEN": value, "FAULT_LEAK_NAME": "MY_TOKEN", "FAULT_LEAK_IN": LEAKS},
        "sibling": {"FAULT_LEAK_IN": ""},
    }
    script = str(FAULT_CLIS / "secret_commit.py")
    config = {
        "sandbox": "none",
        "repo": str(clone),
        "adapters": {
            name: {
                "type": "command",
                "options": {"binary": sys.executable, "args": [script, "{prompt}"]},
                "env": env,
            }
            for name, env in clis.items()
        },
        "default_adapter": "sibling",
        "capacity": {"sessions": 1},
        "workflow": {"phases": [{"name": "build"}]},
        "retry": {"max_retries": 2, "backoff_initial": 0.05, "backoff_max": 0.1},
        "scheduler": {"tick": 0.05, "heartbeat_interval": 0.5, "stale_threshold": 30},
        "state": {"backend": "postgresql"},
        "tasks": [{"id": name, "prompt": "Do the work.", "adapters": [name]} for name in clis],
    }
    path = root / "run.yaml"
    path.write_text(json.dumps(config))
    return path


def council_run(
    root: Path, config: Path, dsn: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], str]:
    done = spare_user.council_run(config, root, None, {"COUNCIL_DATABASE_URL": dsn, **(env or {})})
    report = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
    return done.returncode, report, done.stderr


def events(dsn: str, kind: str, task_id: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT data FROM council.events WHERE type = %s AND data->>'task_id' = %s ORDER BY id",
            (kind, task_id),
        ).fetchall()
    return [row[0] for row in rows]


def task(report: dict[str, Any], task_id: str) -> dict[str, Any]:
    return dict(next(t for t in report["tasks"] if t["task_id"] == task_id))


def remote_refs(remote: Path) -> dict[str, str]:
    out = git(remote, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ", 1) for line in out.splitlines() if line)  # type: ignore[misc]


def reachable_bytes(remote: Path) -> bytes:
    """Every object reachable from any ref of ``remote``, as ``cat-file --batch`` gives it."""
    listing = git(remote, "rev-list", "--all", "--objects")
    ids = "".join(line.split(" ")[0] + "\n" for line in listing.splitlines() if line)
    return subprocess.run(
        ["git", "-C", str(remote), "cat-file", "--batch"],
        input=ids.encode(),
        capture_output=True,
        check=True,
    ).stdout


def all_bytes(remote: Path) -> bytes:
    """Every object of ``remote``'s store, reachable or not (a push's objects stay until gc)."""
    return subprocess.run(
        ["git", "-C", str(remote), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout


def nowhere_on(remote: Path, value: str) -> None:
    """No form of ``value`` in the remote's objects, whitespace put anywhere in it."""
    raw = value.encode()
    for data in (reachable_bytes(remote), all_bytes(remote)):
        assert b"nothing secret here" in data  # real work was read (the sibling's)
        squeezed = re.sub(rb"\s+", b"", data)
        for form in (raw, base64.b64encode(raw), raw.hex().encode()):
            assert form not in data
            assert form not in squeezed


def test_a_secret_committed_by_the_cli_is_never_pushed(tmp_path: Path, pg_dsn: str) -> None:
    value = f"leak-{secrets.token_hex(12)}"
    remote, clone = team_repo(tmp_path)
    config = write_config(tmp_path, clone, value)

    code, report, err = council_run(tmp_path, config, pg_dsn)

    assert code == 1, err[-2000:]
    sibling = task(report, "sibling")
    assert sibling["status"] == "done", sibling
    assert git(remote, "show", "main:work.txt") == "nothing secret here"
    fault = task(report, "fault")
    assert fault["status"] == "failed", fault
    # Nothing of its work on the remote: no ref, no object holding the value in any form.
    refs = remote_refs(remote)
    assert not [ref for ref in refs if "/fault/" in ref], refs
    assert [ref for ref in refs if ref.startswith("refs/council/branches/council/sibling/")]
    nowhere_on(remote, value)
    # Refused at its first publication: said where, never the value.
    refused = events(pg_dsn, "task.publish_failed", "fault")
    assert refused, err[-2000:]
    said = refused[0]["error"]
    assert said.startswith("not pushed to origin, kept on this clone's branch: ")
    assert "adapters.fault.env.MY_TOKEN" in said and value not in said
    assert "file settings.env holds the value" in said and "at line 1" in said
    assert "file wrapped.txt holds the value" in said
    assert "file blob.b64 holds the value" in said and "(base64-encoded)" in said
    # Failed once, not retried though two retries were allowed, as a landing's hit fails.
    failed = events(pg_dsn, "task.failed", "fault")
    assert [e["outcome"] for e in failed] == ["secret_in_work"], failed
    assert value not in fault["error"] and "MY_TOKEN" in fault["error"]
    # Its work is kept on this clone's branch, masked as a landing's hit leaves it.
    branches = git(clone, "for-each-ref", "--format=%(refname)", "refs/heads/council/fault/")
    assert len(branches.split()) == 1, branches
    assert git(clone, "show", f"{branches.strip()}:settings.env") == "API_KEY=***"


def test_a_scan_past_its_budget_pushes_nothing(tmp_path: Path, pg_dsn: str) -> None:
    value = f"late-{secrets.token_hex(12)}"
    remote, clone = team_repo(tmp_path)
    config = write_config(tmp_path, clone, value)
    before = remote_refs(remote)

    code, report, err = council_run(
        tmp_path, config, pg_dsn, {"COUNCIL_SECRET_SCAN_SECONDS": "0.000001"}
    )

    assert code == 1, err[-2000:]
    assert remote_refs(remote) == before  # nothing published, nothing landed
    assert value.encode() not in all_bytes(remote)
    for task_id in ("fault", "sibling"):
        assert task(report, task_id)["status"] == "failed", report
        refused = events(pg_dsn, "task.publish_failed", task_id)
        assert refused, err[-2000:]
        assert all("too large to check in time" in e["error"] for e in refused), refused
        assert all(value not in e["error"] for e in refused)
