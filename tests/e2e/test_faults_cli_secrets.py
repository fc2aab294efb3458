"""A CLI that echoes a secret from its environment (stdout, stderr, its messages, and a final
JSON answer in which only a JSON parser sees the secret whole), run through two phases: the
secret, given through the run config's ``env`` (a ``Council`` in this process) or passed
through from the orchestrator's environment (the ``council run`` process, with its live
table), is found byte for byte in no file under ``.council/`` (state records, events,
handoffs, logs, the sessions' homes and worktrees) and in none of the orchestrator's own
output or log records."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.support.fault_helpers import FaultRun

JSON_OUTPUT = {"output": "jsonl", "result_key": "result", "result_when": {"type": "result"}}
NAME = "FAULT_CANARY_SECRET"  # "SECRET" in the name makes its value one


def canary_run(tmp_path: Path) -> tuple[FaultRun, str]:
    run = FaultRun(
        tmp_path, "canary.py", phases=[{"name": "build"}, {"name": "review"}], output=JSON_OUTPUT
    )
    return run, f"canary-{secrets.token_hex(12)}"


def nowhere_under_council(run: FaultRun, canary: str) -> None:
    needle = canary.encode()
    assert [path for path in run.files() if needle in path.read_bytes()] == []
    # It was there to leak: the CLI said it in every phase, and the logs show the mask.
    logs = run.logs()
    assert len(logs) == 2
    for log in logs:
        text = log.read_text()
        assert "stdout| " in text and "stderr| stderr: key=***" in text
    handoffs = list((run.council_dir / "state" / "records" / "handoffs").rglob("current.json"))
    assert handoffs and all(b"the key was ***" in path.read_bytes() for path in handoffs)


async def test_a_secret_from_the_run_config_never_leaves_the_cli(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    run, canary = canary_run(tmp_path)
    run.env = {NAME: canary}
    run.write_config()
    caplog.set_level("DEBUG")
    report = await run.run_here()

    assert report["totals"]["done"] == 1, report["tasks"]
    nowhere_under_council(run, canary)
    assert canary not in str(report)
    assert caplog.records and canary not in caplog.text
    assert all(canary not in str(record.args) for record in caplog.records)
    printed = capsys.readouterr()
    assert canary not in printed.out and canary not in printed.err


def test_a_secret_passed_through_never_leaves_the_cli(tmp_path: Path) -> None:
    run, canary = canary_run(tmp_path)
    run.passthrough = [NAME]
    run.write_config()
    finished = run.run(env={NAME: canary}, as_json=False)

    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    assert b"done" in finished.stdout  # the summary table
    needle = canary.encode()
    assert needle not in finished.stdout and needle not in finished.stderr
    nowhere_under_council(run, canary)
