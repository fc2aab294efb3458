"""The radar reads a worktree's diff through a copy of its index, in a scratch directory of the
machine's temporary directory, removed when the look ends. A look killed with its process (a
crash sweep's SIGKILL, a machine that lost power) left it there for good: hundreds piled up on
a machine that runs the test suite. The next run removes those of its user once old enough
that no look can still be using one; a young one, another user's and anything else stay."""

from __future__ import annotations

import json
import os
from pathlib import Path

from orchestrator.radar.snapshot import STALE_AFTER, sweep_stale_indexes
from tests.support.cli_process_helpers import ENV
from tests.support.scheduler_helpers import new_repo
from tests.support.terminal import piped


def _left(root: Path, name: str, *, age: float) -> Path:
    """A scratch index as a killed look leaves it: its directory and the index's copy."""
    directory = root / f"council-index-{name}"
    directory.mkdir(mode=0o700)
    (directory / "index").write_bytes(b"DIRC\0\0\0\2")
    then = os.stat(directory).st_mtime - age
    os.utime(directory, (then, then))
    return directory


def test_only_this_users_old_scratch_indexes_go(tmp_path: Path) -> None:
    old = _left(tmp_path, "old", age=STALE_AFTER + 60)
    young = _left(tmp_path, "young", age=0)
    other = tmp_path / "council-mcp-unrelated"
    other.mkdir()
    os.utime(other, (1, 1))
    plain = tmp_path / "council-index-a-file"
    plain.write_text("not a directory")
    os.utime(plain, (1, 1))
    assert sweep_stale_indexes(str(tmp_path)) == 1
    assert not old.exists()
    assert young.exists() and other.exists() and plain.exists()


def test_the_next_run_removes_what_a_killed_look_left(tmp_path: Path) -> None:
    """End to end: the run's start sweeps its temporary directory (``TMPDIR``)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    left = _left(scratch, "killed", age=STALE_AFTER + 60)
    young = _left(scratch, "looking", age=0)
    new_repo(tmp_path)
    (tmp_path / "run.yaml").write_text(
        "repo: repo\n"
        "adapters:\n  fast: {type: scripted, options: {delay: 0}}\n"
        "default_adapter: fast\n"
        "workflow: {phases: [{name: build}]}\n"
        "tasks:\n  - {id: one, prompt: 'WRITE one.txt first'}\n"
    )
    done = piped("run", "run.yaml", "--json", cwd=tmp_path, env={**ENV, "TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    assert [t["status"] for t in json.loads(done.text)["tasks"]] == ["done"]
    assert not left.exists()
    assert young.exists()  # a look of another run may be using it this very moment
