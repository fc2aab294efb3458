"""Secrets by reference through the ``council run`` process: a value brought in by ``${NAME}``
in an adapter's ``env``, and one handed over by its ``pass_env``, both under names that do not
look secret (so only their origin can make them secrets), reach the CLI; the CLI echoes them
everywhere, and neither is found in any git object, any file under ``.council/``, council's
own output, or ``council status`` (table and ``--json``). ``$${`` reaches the CLI as a
literal ``${``. A reference to an unset variable, or an option the adapter does not take,
stops ``council run`` with exit 2 before anything starts, naming the file, the line, the
adapter and the key."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
from pathlib import Path

from tests.support.canary import leaks
from tests.support.fault_helpers import COUNCIL, TASK, FaultRun
from tests.support.timing import patience

JSON_OUTPUT = {"output": "jsonl", "result_key": "result", "result_when": {"type": "result"}}
# Names without KEY/TOKEN/SECRET in them: the values are masked because of where they came from.
REFERENCED, HANDED = "TEAM_GATEWAY_REF", "TEAM_HANDED_OVER"


def _env_refs_run(tmp_path: Path) -> FaultRun:
    run = FaultRun(tmp_path, "canary.py", output=JSON_OUTPUT)
    run.env = {
        "FAULT_CANARY_NAMES": f"GATEWAY_ENDPOINT,{HANDED},LITERAL",
        "GATEWAY_ENDPOINT": "https://gw/${" + REFERENCED + "}",
        "LITERAL": "$${NOT_EXPANDED}",
    }
    config = run.config()
    config["adapters"][TASK]["pass_env"] = [HANDED]
    run.config_path.write_text(json.dumps(config, indent=2))
    return run


def _council(run: FaultRun, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COUNCIL, *args],
        cwd=run.tmp_path,
        env={**env, "COUNCIL_DISABLE_PLUGINS": "1", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=patience(30),
    )


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_referenced_and_passed_values_reach_the_cli_and_are_stored_nowhere(
    tmp_path: Path,
) -> None:
    run = _env_refs_run(tmp_path)
    referenced, handed = f"gw-{secrets.token_hex(12)}", f"handed-{secrets.token_hex(12)}"
    env = {**os.environ, REFERENCED: referenced, HANDED: handed}

    finished = run.run(env={REFERENCED: referenced, HANDED: handed})

    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
    assert finished.task()["status"] == "done", finished.task()
    # The CLI got each value (it wrote their digests, never the values, into its work).
    seen = subprocess.run(
        ["git", "-C", str(run.repo), "show", "main:canary-seen.txt"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert seen.splitlines() == [
        f"GATEWAY_ENDPOINT={_sha('https://gw/' + referenced)}",
        f"{HANDED}={_sha(handed)}",
        f"LITERAL={_sha('${NOT_EXPANDED}')}",
    ]
    # It said them in every output it has; nothing stored or shown holds them.
    canaries = {REFERENCED: referenced, HANDED: handed}
    assert leaks(run.repo, canaries) == []
    for value in canaries.values():
        assert value.encode() not in finished.stdout + finished.stderr
    (log,) = run.logs()
    assert "stderr| stderr: key=https://gw/*** *** ${NOT_EXPANDED}" in log.read_text()
    for args in (["status", str(run.config_path)], ["status", str(run.config_path), "--json"]):
        shown = _council(run, *args, env=env)
        assert shown.returncode == 0, shown.stderr
        assert TASK in shown.stdout
        assert referenced not in shown.stdout + shown.stderr
        assert handed not in shown.stdout + shown.stderr
    # The run config kept the reference, never the value.
    assert referenced not in run.config_path.read_text()


def test_an_unset_reference_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    run = _env_refs_run(tmp_path)
    line = next(
        number
        for number, text in enumerate(run.config_path.read_text().splitlines(), start=1)
        if '"GATEWAY_ENDPOINT": "https://gw/' in text
    )
    unset = {name: value for name, value in os.environ.items() if name != REFERENCED}
    stopped = _council(run, "run", str(run.config_path), env=unset)

    assert stopped.returncode == 2, stopped.stdout + stopped.stderr
    said = stopped.stdout + stopped.stderr
    assert f"{run.config_path}:{line}: adapters.{TASK}.env.GATEWAY_ENDPOINT:" in said
    assert f"${{{REFERENCED}}} is not set" in said
    validated = _council(run, "config", "validate", str(run.config_path), env=unset)
    assert validated.returncode == 2 and f"${{{REFERENCED}}} is not set" in validated.stderr


def test_an_option_the_adapter_does_not_take_stops_the_run_naming_it(tmp_path: Path) -> None:
    run = _env_refs_run(tmp_path)
    config = run.config()
    config["adapters"][TASK]["options"]["base_ulr"] = "http://127.0.0.1:1/v1"
    run.config_path.write_text(json.dumps(config, indent=2))
    line = next(
        number
        for number, text in enumerate(run.config_path.read_text().splitlines(), start=1)
        if '"base_ulr"' in text
    )

    stopped = _council(run, "run", str(run.config_path), env=dict(os.environ))

    assert stopped.returncode == 2, stopped.stdout + stopped.stderr
    said = stopped.stdout + stopped.stderr
    assert f"{run.config_path}:{line}: adapters.{TASK}.options.base_ulr:" in said
    assert "unknown option for adapter type 'command'" in said and "allowed: " in said
    assert not (run.council_dir / "state").exists()  # nothing started
