"""Each session's own range of ports (issue 50) in ``council run`` as a process, on the scripted
CLI: two tasks side by side, each session's CLI and verify command given one block of ports
(``COUNCIL_PORT``, ``COUNCIL_PORTS``), the two blocks apart, each let go when the run ends. As
root and as a user who is not, and under the sandbox."""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator.services.ports import BLOCK, FIRST
from tests.support.council_process import task_record
from tests.support.scheduler_helpers import git, new_repo
from tests.support.spare_user import as_users, council_run, git_as_root, spare_uid, user_dir

PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"
TASKS = ("alpha", "beta")
# Fails without a block; given a place to meet, writes the block there and waits (bounded) for
# the other session's, so both sessions hold theirs at once.
CHECK = """\
import os, sys, time
me, other, meet = sys.argv[1], sys.argv[2], sys.argv[3]
first, ports = os.environ["COUNCIL_PORT"], os.environ["COUNCIL_PORTS"]
low, high = (int(p) for p in ports.split("-"))
if int(first) != low or high - low != 9:
    sys.exit("a block of ten ports from COUNCIL_PORT, not " + ports)
if meet != "-":
    with open(os.path.join(meet, me), "w") as out:
        out.write(ports)
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(meet, other)):
        if time.monotonic() > deadline:
            sys.exit("the other session never held its block")
        time.sleep(0.05)
"""


def _config(root: Path, repo: Path, sandbox: str) -> Path:
    meet = root / "meet"
    meet.mkdir(exist_ok=True)

    def one(name: str, other: str) -> dict[str, Any]:
        met = "-" if sandbox != "none" else str(meet)
        return {
            "id": name,
            "prompt": f"Write {name}.txt.",
            "files": [f"{name}.txt"],
            "verify": [[PYTHON, "check.py", name, other, met]],
            "metadata": {
                "phase_instructions": {"build": f"ECHO_ENV COUNCIL_PORTS\nWRITE {name}.txt {name}"}
            },
        }

    data: dict[str, Any] = {
        "repo": str(repo),
        "adapters": {"cli": {"type": "scripted", "executable": PYTHON, "options": {"delay": 0}}},
        "default_adapter": "cli",
        "workflow": {"phases": [{"name": "build"}]},
        "capacity": {"sessions": 2},
        "retry": {"max_retries": 0},
        "scheduler": {"tick": 0.05, "heartbeat_interval": 0.5, "stale_threshold": "10m"},
        "sandbox": sandbox,
        "tasks": [one("alpha", "beta"), one("beta", "alpha")],
    }
    config = root / "run.json"
    config.write_text(json.dumps(data))
    return config


def _cli_said(repo: Path, name: str) -> str:
    """The block the task's CLI said it was given (its ECHO_ENV line, in its log)."""
    logs = sorted((repo / ".council" / "logs").glob(f"{name}-build-*.log"))
    text = "".join(log.read_text(errors="replace") for log in logs)
    said = re.findall(r"COUNCIL_PORTS=(\d+-\d+)", text)
    assert said, text[-2000:]
    return said[-1]


def _free(uid: int | None, ports: str) -> bool:
    """Is the block's lock free now (its run over)?"""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    directory = Path(tempfile.gettempdir()) / f"cli-council-{uid or os.getuid()}" / "ports"
    if uid is None and os.path.isabs(runtime) and os.path.isdir(runtime):
        directory = Path(runtime) / "cli-council" / "ports"
    index = (int(ports.split("-")[0]) - FIRST) // BLOCK
    fd = os.open(directory / f"block-{index}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _each_session_gets_its_block(root: Path, uid: int | None, sandbox: str) -> None:
    repo = new_repo(root)
    (repo / "check.py").write_text(CHECK)
    git(repo, "add", "check.py")
    git(repo, "commit", "-qm", "the check")
    config = _config(root, repo, sandbox)
    done = council_run(config, root, uid, timeout=150)
    said = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, said
    blocks = {}
    for name in TASKS:
        record = task_record(repo, name)
        assert record is not None and record["status"] == "done", (name, record, said)
        assert git_as_root(repo, "show", f"main:{name}.txt") == name
        blocks[name] = _cli_said(repo, name)
        if sandbox == "none":  # the verify command was given the CLI's block
            assert (root / "meet" / name).read_text() == blocks[name]
    alpha, beta = (range(int(b.split("-")[0]), int(b.split("-")[1]) + 1) for b in blocks.values())
    assert set(alpha).isdisjoint(beta), blocks
    assert all(_free(uid, ports) for ports in blocks.values()), blocks


@pytest.mark.parametrize("uid", as_users())
def test_two_sessions_side_by_side_each_get_a_block_of_ports(
    uid: int | None, tmp_path: Path
) -> None:
    if uid is not None:
        uid = spare_uid()
    with user_dir(uid, tmp_path) as root:
        _each_session_gets_its_block(root, uid, "none")


@pytest.mark.sandbox
def test_under_the_sandbox_the_cli_and_its_checks_get_the_block(tmp_path: Path) -> None:
    _each_session_gets_its_block(tmp_path, None, "bubblewrap")
