"""A CLI that echoes a secret from its environment (stdout, stderr, its messages, and a final
JSON answer in which only a JSON parser sees the secret whole), run by the real ``council run``
process through two phases: the secret, given through the run config's ``env`` or passed
through from the orchestrator's environment, is found byte for byte in no file under
``.council/`` (state records, events, handoffs, logs, the sessions' homes and worktrees) and
in none of the orchestrator's own output."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from fault_helpers import FaultRun

JSON_OUTPUT = {"output": "jsonl", "result_key": "result", "result_when": {"type": "result"}}
NAME = "FAULT_CANARY_SECRET"  # "SECRET" in the name makes its value one


@pytest.mark.parametrize("given", ["config env", "passthrough"])
def test_a_canary_secret_never_leaves_the_cli(tmp_path: Path, given: str) -> None:
    canary = f"canary-{secrets.token_hex(12)}"
    run = FaultRun(
        tmp_path,
        "canary.py",
        phases=[{"name": "build"}, {"name": "review"}],
        output=JSON_OUTPUT,
    )
    if given == "config env":
        run.env = {NAME: canary}
    else:
        run.passthrough = [NAME]
    run.write_config()
    finished = run.run(env={NAME: canary} if given == "passthrough" else None, as_json=False)

    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    needle = canary.encode()
    assert needle not in finished.stdout and needle not in finished.stderr
    leaks = [path for path in run.files() if needle in path.read_bytes()]
    assert leaks == []

    # It was there to leak: the CLI said it in every phase, and the logs show the mask.
    logs = run.logs()
    assert len(logs) == 2
    for log in logs:
        text = log.read_text()
        assert "stdout| " in text and "stderr| stderr: key=***" in text
    handoffs = list((run.council_dir / "state" / "records" / "handoffs").rglob("current.json"))
    assert handoffs and all(b"the key was ***" in path.read_bytes() for path in handoffs)
