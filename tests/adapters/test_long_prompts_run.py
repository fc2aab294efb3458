"""A prompt too long for the command line, through real processes: the scripted CLI and a
stand-in for each built-in adapter's CLI (``fault_clis/prompt_probe.py``) get it whole, through
stdin or a file; a command that ``exec`` would refuse is never started, and a phase that would
need one fails for good instead of being retried as a crash."""

from __future__ import annotations

import errno
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.aider import MESSAGE_FILE
from adapters.scripted import Scripted
from orchestrator.adapter import AdapterRequest, OutcomeKind
from orchestrator.adapter.arg_limits import utf8_size
from orchestrator.errors import AdapterError
from orchestrator.process.launch import spawn_piped
from orchestrator.runner.cli_run import run_cli
from orchestrator.runner.launch import _start_error
from orchestrator.testing.fake_cli import FakeAdapter
from tests.adapters.test_long_prompts import BUILT_INS, LONG
from tests.support.fault_helpers import FAULT_CLIS, FaultRun

PROBE = FAULT_CLIS / "prompt_probe.py"


def _request(tmp_path: Path, prompt: str, env: dict[str, str] | None = None) -> AdapterRequest:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    return AdapterRequest(
        prompt=prompt,
        workdir=workdir,
        home=tmp_path / "home",
        task_id="t1",
        model="m1",
        env=env or {},
    )


def _digest(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


async def test_the_scripted_cli_gets_a_long_prompt_whole_on_stdin(tmp_path: Path) -> None:
    lines = [f"line {n}: ünïcode, and words enough to make it long" for n in range(4000)]
    prompt = "WRITE big.txt <<END\n" + "\n".join(lines) + "\nEND\nSAY wrote it\n"
    assert utf8_size(prompt) > 200 * 1024

    ran = await run_cli(Scripted({"delay": 0}), _request(tmp_path, prompt), log_dir=tmp_path)

    assert ran.outcome.kind == OutcomeKind.SUCCEEDED, ran.outcome.message
    # Every line of the prompt reached the CLI: it wrote all of them, the last one too.
    assert (tmp_path / "work" / "big.txt").read_text(encoding="utf-8") == "\n".join(lines) + "\n"
    assert not any(prompt in arg for arg in ran.argv)


@pytest.mark.parametrize("name", sorted(n for n in BUILT_INS if n != "scripted"))
async def test_each_builtin_adapters_cli_gets_a_long_prompt_whole(
    tmp_path: Path, name: str
) -> None:
    probe = tmp_path / f"{name}-probe"
    probe.write_text(f"#!{sys.executable}\n{PROBE.read_text()}")
    probe.chmod(0o755)
    kind, options, way = BUILT_INS[name]
    report_file = tmp_path / "seen.json"
    request = _request(tmp_path, LONG, {"PROMPT_PROBE_OUT": str(report_file)})

    ran = await run_cli(kind(options, executable=str(probe)), request, log_dir=tmp_path)

    assert ran.result.exit_code == 0, ran.result.stderr_tail
    seen: dict[str, Any] = json.loads(report_file.read_text(encoding="utf-8"))
    assert not any(LONG in arg for arg in seen["argv"])
    if way == "stdin":
        assert _digest(seen["stdin"]) == _digest(LONG)
        assert seen["message_file"] is None
    else:
        assert _digest(seen["message_file"]) == _digest(LONG)
        assert seen["argv"][seen["argv"].index("--message-file") + 1] == str(
            tmp_path / "home" / MESSAGE_FILE
        )


async def test_a_command_exec_would_refuse_is_never_started(tmp_path: Path) -> None:
    # The fake adapter, like many a plugin's, puts the prompt on the command line.
    marker = tmp_path / "started"
    options = {"argv": [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]}

    with pytest.raises(AdapterError) as refused:
        await run_cli(FakeAdapter(options), _request(tmp_path, LONG), log_dir=tmp_path / "logs")

    assert str(refused.value).startswith(
        f"adapter 'fake': cannot start {sys.executable!r}: its command line is too long "
        "(argument 4 of the command is "
    )
    assert str(refused.value).endswith(
        "an adapter must pass a prompt that long through stdin or a file"
    )
    assert not marker.exists()
    (log,) = (tmp_path / "logs").glob("t1-build-*.log")
    assert "not started: adapter 'fake': cannot start" in log.read_text()


async def test_an_e2big_from_exec_is_a_permanent_adapter_error(tmp_path: Path) -> None:
    # What exec itself says of a command too long, with nothing checking before it.
    with pytest.raises(OSError) as refused:
        await spawn_piped([sys.executable, "-c", "pass", LONG], tmp_path, {}, stdin=False)
    assert refused.value.errno == errno.E2BIG

    error = _start_error(refused.value, FakeAdapter(), sys.executable, tmp_path)

    assert isinstance(error, AdapterError)  # a phase fails for good on it, never retried
    assert str(error) == (
        f"adapter 'fake': cannot start {sys.executable!r}: its command line is too long (the "
        "system said: argument list too long); an adapter must pass a prompt that long "
        "through stdin or a file"
    )


async def test_a_review_prompt_grown_too_long_fails_the_task_once_not_as_a_crash(
    tmp_path: Path,
) -> None:
    """The task's prompt fits on the command line; the review's, with the build's diff added,
    does not, and the preset cannot pass it another way: the review fails at once, for good."""
    run = FaultRun(
        tmp_path,
        "prompt_probe.py",
        # The probe writes what it got, the whole prompt among it, as the build's work.
        env={"PROMPT_PROBE_OUT": "work.json"},
        phases=[{"name": "build"}, {"name": "review"}],
        retry={"max_retries": 2, "backoff_initial": 0.05, "backoff_max": 0.1},
    )
    config = run.config()
    config["tasks"][0]["prompt"] = "Keep all of this in mind. " * 4000  # 100 KB: it fits
    run.config_path.write_text(json.dumps(config))

    report = await run.run_here()

    (task,) = report["tasks"]
    assert task["status"] == "failed", task
    assert task["phases"]["build"] == "completed" and task["phases"]["review"] == "failed"
    assert task["attempts"] == 1  # not retried: the same command would be refused again
    assert "is too long for the command line" in task["error"]
    assert "set stdin_prompt: true in the preset" in task["error"]
    assert [e["data"]["phase"] for e in run.events("phase.failed")] == ["review"]
