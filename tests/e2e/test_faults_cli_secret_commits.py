"""A CLI given a secret on purpose (the run config's adapter ``env:``, or passed through from
the orchestrator's environment) commits it on its own branch: in a file, in a path name, in
its commit message, base64-encoded. The task fails, not retried, naming the secret by its
name and where it was found; the sibling task lands; the base holds no value, and neither
does any ref, any git object (``cat-file --batch-all-objects``), ``git log --all -p`` nor any
file under ``.council/``."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.fault_helpers import FaultRun

LEAKS = "file,path,message,base64"
CLEAN = ("secret_commit.py", {"FAULT_LEAK_IN": ""})


def one_at_a_time(run: FaultRun) -> None:
    """One session at a time: a CLI moving its own branch while another session runs is
    taken for tampering by that session's check (its blame is another piece of work)."""
    config = run.config()
    config["capacity"] = {"sessions": 1}
    run.config_path.write_text(json.dumps(config, indent=2))


def forms(value: str) -> list[bytes]:
    raw = value.encode()
    return [raw, base64.b64encode(raw)[:16], raw.hex().encode()]


def nowhere(run: FaultRun, value: str) -> None:
    repo = run.repo
    objects = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch"],
        capture_output=True,
        check=True,
    ).stdout
    history = subprocess.run(
        ["git", "-C", str(repo), "log", "--all", "-p", "--format=%H %an %ae %B"],
        capture_output=True,
        check=True,
    ).stdout
    grep = subprocess.run(
        ["git", "-C", str(repo), "grep", "-I", "-e", value, "main"], capture_output=True
    )
    assert grep.returncode == 1, grep.stdout  # nothing found on the base
    council = b"".join(path.read_bytes() + str(path).encode() for path in run.files())
    for form in forms(value):
        assert form not in objects
        assert form not in history
        assert form not in council


def check_failed(run: FaultRun, report: dict[str, Any], name: str, value: str) -> None:
    tasks = {task["task_id"]: task for task in report["tasks"]}
    assert tasks["sibling"]["status"] == "done", tasks
    leaked = tasks["fault"]
    assert leaked["status"] == "failed", leaked
    error = str(run.state()["error"])
    assert name in error and value not in error
    assert "file settings.env" in error
    assert "path name keys/***.pem" in error
    assert "message holds the value" in error and "commit " in error
    assert "file docker.json holds the value of" in error and "(base64-encoded)" in error
    # Never retried, though two retries were allowed: one failed attempt, the secret's. (Its
    # attempt number may be 2 on a loaded machine: a first attempt sent round again by the
    # tamper check, or swept, is no failure.)
    assert run.state()["metadata"]["failures"] == 1
    assert run.state()["metadata"]["outcome"] == "secret_in_work"
    assert run.on_main("sibling.txt") or run.on_main("work.txt")
    nowhere(run, value)


async def test_a_secret_from_the_adapter_env_committed_by_the_cli_never_lands(
    tmp_path: Path,
) -> None:
    value = f"leak-{secrets.token_hex(12)}"
    run = FaultRun(
        tmp_path,
        "secret_commit.py",
        env={"MY_TOKEN": value, "FAULT_LEAK_NAME": "MY_TOKEN", "FAULT_LEAK_IN": LEAKS},
        more={"sibling": CLEAN},
        retry={"max_retries": 2, "backoff_initial": 0.05, "backoff_max": 0.1},
    )
    one_at_a_time(run)
    report = await run.run_here()
    check_failed(run, report, "adapters.fault.env.MY_TOKEN", value)


async def test_a_secret_passed_through_and_committed_by_the_cli_never_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = f"pass-{secrets.token_hex(12)}"
    monkeypatch.setenv("FAULT_PASSED_TOKEN", value)
    run = FaultRun(
        tmp_path,
        "secret_commit.py",
        env={"FAULT_LEAK_NAME": "FAULT_PASSED_TOKEN", "FAULT_LEAK_IN": LEAKS},
        more={"sibling": CLEAN},
        passthrough=["FAULT_PASSED_TOKEN"],
        retry={"max_retries": 2, "backoff_initial": 0.05, "backoff_max": 0.1},
    )
    one_at_a_time(run)
    report = await run.run_here()
    check_failed(run, report, "FAULT_PASSED_TOKEN", value)


async def test_a_council_winner_holding_a_secret_never_lands(tmp_path: Path) -> None:
    """Best of 2: the candidate that fails leaves one ready, which wins without a judge; its
    merge is refused by the gate like any other."""
    value = f"best-{secrets.token_hex(12)}"
    run = FaultRun(
        tmp_path,
        "secret_commit.py",
        env={"MY_TOKEN": value, "FAULT_LEAK_NAME": "MY_TOKEN", "FAULT_LEAK_IN": LEAKS},
        more={"loser": ("fail.py", {})},
    )
    config = run.config()
    config["tasks"] = [
        {"id": "feature", "prompt": "Do the work.", "council": True, "adapters": ["fault", "loser"]}
    ]
    config["capacity"] = {"sessions": 1}
    run.config_path.write_text(json.dumps(config, indent=2))

    report = await run.run_here()

    feature = next(task for task in report["tasks"] if task["task_id"] == "feature")
    assert feature["status"] == "failed", report["tasks"]
    error = str(run.state("feature")["error"])
    assert "adapters.fault.env.MY_TOKEN" in error and value not in error
    assert "file settings.env" in error
    assert run.state("feature")["metadata"]["outcome"] == "secret_in_work"
    assert not run.on_main("work.txt")
    nowhere(run, value)
