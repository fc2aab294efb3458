"""The scripted stand-in CLI, run for real: it edits files, resumes sessions, rate-limits, fails."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import adapters.scripted_cli as stand_in
from adapters.scripted import SCRIPT, Scripted
from orchestrator.adapter import AdapterRequest, EventKind, OutcomeKind
from orchestrator.runner.cli_run import CliRun, run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


async def scripted(
    tmp_path: Path,
    prompt: str,
    *,
    resume: str | None = None,
    options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> CliRun:
    request = AdapterRequest(
        prompt=prompt, workdir=tmp_path / "repo", home=tmp_path / "home", task_id="t1"
    )
    adapter = Scripted({"delay": 0, **(options or {})})
    return await run_cli(
        adapter,
        request,
        log_dir=tmp_path / "logs",
        resume_session_id=resume,
        **kwargs,
    )


async def test_it_edits_files_for_real(tmp_path: Path, workdir: Path) -> None:
    (workdir / "old.txt").write_text("bye\n")
    prompt = (
        "Add the greeting module.\n"
        "WRITE src/hello.py <<PY\n"
        "def hello():\n"
        "    return 'hi'\n"
        "PY\n"
        "APPEND notes.md first note\n"
        "APPEND notes.md second note\n"
        "DELETE old.txt\n"
        "READ src/hello.py\n"
    )
    run = await scripted(tmp_path, prompt)
    assert run.outcome.kind is OutcomeKind.SUCCEEDED
    assert (workdir / "src" / "hello.py").read_text() == "def hello():\n    return 'hi'\n"
    assert (workdir / "notes.md").read_text() == "first note\nsecond note\n"
    assert not (workdir / "old.txt").exists()
    tools = [event.tool for event in run.events if event.kind is EventKind.TOOL_CALL]
    assert tools == ["Write", "Edit", "Edit", "Bash", "Read"]
    assert "wrote src/hello.py" in run.outcome.message
    usage = run.outcome.usage
    assert usage is not None and usage.input_tokens > 0 and (usage.cost_usd or 0) > 0


async def test_it_stays_inside_its_working_directory(tmp_path: Path, workdir: Path) -> None:
    run = await scripted(tmp_path, "WRITE ../escaped.txt nope\nWRITE /tmp/abs.txt nope")
    assert not (tmp_path / "escaped.txt").exists()
    results = [event for event in run.events if event.kind is EventKind.TOOL_RESULT]
    assert all(event.data["is_error"] for event in results) and len(results) == 2


async def test_resume_continues_the_same_session(tmp_path: Path, workdir: Path) -> None:
    first = await scripted(tmp_path, "Plan the work.")
    session = first.native_session_id
    assert session is not None and first.outcome.ok
    second = await scripted(tmp_path, "Now build it.\nWRITE built.txt yes", resume=session)
    assert second.native_session_id == session and second.outcome.ok
    (started,) = [event for event in second.events if event.kind is EventKind.STARTED]
    assert started.data["resumed"] is True
    opening = next(event.text for event in second.events if event.kind is EventKind.MESSAGE)
    assert "continuing; earlier I was asked: Plan the work." in opening
    missing = await scripted(tmp_path, "again", resume="no-such-session")
    assert missing.outcome.kind is OutcomeKind.FAILED
    assert "No conversation found with session ID: no-such-session" in missing.outcome.message


async def test_it_rate_limits_n_times_per_session_then_succeeds(
    tmp_path: Path, workdir: Path
) -> None:
    prompt = "Build it.\nRATE_LIMIT reset=120 times=2\nWRITE done.txt ok"
    before = datetime.now(UTC)
    first = await scripted(tmp_path, prompt)
    after = datetime.now(UTC)
    assert first.outcome.kind is OutcomeKind.RATE_LIMITED and first.result.exit_code == 1
    retry_at = first.outcome.retry_at
    assert retry_at is not None
    # 120 s from when the CLI said it (between the call's start and end), however slow.
    assert before + timedelta(seconds=119) < retry_at < after + timedelta(seconds=121)
    assert not (workdir / "done.txt").exists()
    session = first.native_session_id
    second = await scripted(tmp_path, prompt, resume=session)
    assert second.outcome.kind is OutcomeKind.RATE_LIMITED
    third = await scripted(tmp_path, prompt, resume=session)
    assert third.outcome.kind is OutcomeKind.SUCCEEDED and third.native_session_id == session
    assert (workdir / "done.txt").read_text() == "ok\n"
    fresh = await scripted(tmp_path, prompt)  # a new session is limited again
    assert fresh.outcome.kind is OutcomeKind.RATE_LIMITED


async def test_a_reset_time_can_be_given_as_a_date(tmp_path: Path, workdir: Path) -> None:
    run = await scripted(tmp_path, "RATE_LIMIT reset=2031-05-01T10:00:00Z")
    assert run.outcome.retry_at == datetime(2031, 5, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instruction", "kind", "message"),
    [
        ("FAIL the tests do not pass", OutcomeKind.FAILED, "the tests do not pass"),
        ("AUTH_ERROR", OutcomeKind.AUTH_REQUIRED, "401"),
        ("DENY secrets.env", OutcomeKind.PERMISSION_DENIED, "secrets.env"),
        ("CRASH", OutcomeKind.CRASHED, "signal 9"),
        ("CRASH SIGABRT", OutcomeKind.CRASHED, "signal 6"),
        ("EXIT 3", OutcomeKind.FAILED, "exit code 3"),
    ],
)
async def test_failures_are_classified(
    tmp_path: Path, workdir: Path, instruction: str, kind: OutcomeKind, message: str
) -> None:
    run = await scripted(tmp_path, f"Try.\n{instruction}")
    assert run.outcome.kind is kind
    assert message in run.outcome.message


async def test_a_permission_denial_exits_zero_but_is_not_success(
    tmp_path: Path, workdir: Path
) -> None:
    run = await scripted(tmp_path, "DENY a.txt\nWRITE b.txt fine")
    assert run.result.exit_code == 0 and run.outcome.kind is OutcomeKind.PERMISSION_DENIED


async def test_hang_and_ignore_term_end_in_a_timeout(tmp_path: Path, workdir: Path) -> None:
    run = await scripted(tmp_path, "IGNORE_TERM\nSAY waiting\nHANG", idle_timeout=0.5, grace=0.3)
    assert run.outcome.kind is OutcomeKind.TIMED_OUT and run.result.signal == 9


async def test_it_sees_only_the_environment_it_is_given(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOT_FOR_CLIS", "x")
    run = await scripted(tmp_path, "ECHO_ENV NOT_FOR_CLIS\nECHO_ENV HOME")
    said = [event.text for event in run.events if event.kind is EventKind.MESSAGE]
    assert "NOT_FOR_CLIS is not set" in said
    assert f"HOME={tmp_path / 'home'}" in said


async def test_persona_options_shape_the_messages(tmp_path: Path, workdir: Path) -> None:
    run = await scripted(
        tmp_path, "Review.\nSAY looks fine", options={"persona": "reviewer", "personality": "Hm."}
    )
    said = [event.text for event in run.events if event.kind is EventKind.MESSAGE]
    assert said == ["Hm. Working on: Review.", "Hm. looks fine"]
    assert run.outcome.message.startswith("Hm. Done")
    careful = Scripted({"persona": "careful"})
    request = AdapterRequest(prompt="p", workdir=workdir, home=tmp_path, model="m1")
    argv = careful.build_command(request).argv
    assert argv[-2:] == ["-p", "p"] and argv[6:8] == ["--persona", "careful"]
    assert "--model" in argv and "--delay" not in argv


def test_the_stand_in_runs_as_a_module_and_needs_no_command_on_path() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "adapters.scripted_cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert version.stdout.strip() == "scripted-cli 1.0.0 (cli-council)"
    # A test helper: the package puts no command of its own on users' PATH...
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"council": "orchestrator.cli.app:main"}
    # ...and the adapter starts the module's own file with this interpreter, with no PATH at all.
    assert Path(SCRIPT) == Path(stand_in.__file__ or "")
    argv = Scripted({}).version_command()
    assert argv[0] == sys.executable and SCRIPT in argv
    found = subprocess.run(argv, capture_output=True, text=True, check=True, env={"PATH": ""})
    assert found.stdout == version.stdout


def test_the_stand_in_starts_without_typing_or_uuid(tmp_path: Path) -> None:
    """A process per phase of every offline run: it imports neither ``typing`` nor ``uuid``
    (which brings ``platform``), nor argparse's ``shutil`` (``bz2``, ``lzma``) nor ``base64``
    for the one step that needs it, and its ids keep ``uuid4``'s form."""
    request = AdapterRequest(prompt="WRITE a.txt hi", workdir=tmp_path, home=tmp_path)
    command = Scripted({"delay": 0}).build_command(request)
    argv = command.argv
    assert command.stdin is None  # the prompt is on the command line
    assert argv[1:3] == ["-I", "-S"]  # as its adapter starts it; -X importtime lists imports
    ran = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"HOME": str(tmp_path), "PATH": ""},
    )
    assert (tmp_path / "a.txt").read_text() == "hi\n", ran.stderr
    modules = [line.split("|")[-1].strip() for line in ran.stderr.splitlines() if "|" in line]
    assert "json" in modules  # the listing is read
    unpaid = ("typing", "uuid", "platform", "shutil", "bz2", "lzma", "base64")
    assert [m for m in unpaid if m in modules] == []
    session = json.loads(ran.stdout.splitlines()[0])["session_id"]
    assert str(uuid.UUID(session)) == session and uuid.UUID(session).version == 4
