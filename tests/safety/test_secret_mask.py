"""No secret is stored: each sink masks the values of the orchestrator's sensitive-named
variables and of the keys handed to children (``orchestrator.safety.secret_mask``), one choke point
per sink (state records, checkpoints, the event log and its subscribers, session context,
handoffs). Settings in ``*_KEY`` variables (``ollama``, ``false``, a path) are not secrets and
never rewrite what a record holds. Children that are not CLIs get the allow-list, not the
orchestrator's environment. All against real files and real processes."""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import pytest

from orchestrator.events import Event
from orchestrator.process.command import run_command
from orchestrator.safety import secret_mask
from orchestrator.sandbox.commands import CommandPlace
from orchestrator.state.context import ContextManager
from orchestrator.state.file.store import FileStateStore
from orchestrator.workflow.checks.verify import run_verify
from orchestrator.workflow.handoffs.document import (
    Handoff,
    load_handoff,
    sha256_text,
    store_handoff,
)


def canary() -> str:
    return f"Tok-{secrets.token_hex(10)}"


def every_file(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def holding(root: Path, value: str) -> list[Path]:
    forms = {value.encode(), json.dumps(value)[1:-1].encode()}
    return [p for p, data in every_file(root).items() if any(f in data for f in forms)]


async def test_every_store_masks_a_secret_of_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = canary()
    monkeypatch.setenv("GITHUB_TOKEN", token)
    said = f'a test printed GITHUB_TOKEN={token} and "quoted {token}"'
    seen: list[Event] = []
    async with FileStateStore.for_repo(tmp_path) as store:
        store.subscribe(seen.append)
        await store.create_session({"note": said}, ["t1"], session_id="s1")
        await store.update_task_state("t1", {"error": said, "metadata": {"out": [said]}})
        await store.emit(Event(type="verify.failed", data={"output": said, "n": 3}))
        await store.put_record("notes", "k1", {"text": said, "ok": True})
        await store.create_checkpoint("s1", said)
        await ContextManager(store, tmp_path).update_context("s1", message=said)
        state = await store.get_task_state("t1")
        events = list(store.events.read())

    assert holding(tmp_path, token) == []
    assert state is not None and state.error == said.replace(token, "***")
    assert state.metadata == {"out": [said.replace(token, "***")]}
    assert {"output": said.replace(token, "***"), "n": 3} in [e.data for e in seen]
    assert any(e.data.get("output") == said.replace(token, "***") for e in events)
    masked = [p for p, data in every_file(tmp_path).items() if b"GITHUB_TOKEN=***" in data]
    assert len(masked) >= 5  # task, session, record, checkpoint, events, context


async def test_settings_in_key_variables_are_not_taken_for_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "ollama")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("SSH_KEY_PATH", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "development")
    text = f"adapter ollama, parallel false, development build in {tmp_path}"
    async with FileStateStore.for_repo(tmp_path) as store:
        await store.create_session({}, ["t1"], session_id="s1")
        await store.update_task_state("t1", {"adapter": "ollama", "error": text})
        state = await store.get_task_state("t1")
    assert state is not None and state.adapter == "ollama" and state.error == text
    assert not secret_mask.storable("ollama") and not secret_mask.storable(str(tmp_path))
    assert secret_mask.storable("sk-ant-api03-abc") and secret_mask.storable("hunter2!x")


async def test_a_key_handed_to_a_child_is_masked_from_then_on(tmp_path: Path) -> None:
    key = canary()  # in no environment variable of this process: only a CLI got it
    async with FileStateStore.for_repo(tmp_path) as store:
        await store.create_session({}, ["t1"], session_id="s1")
        await store.update_task_state("t1", {"error": f"before: {key}"})
        secret_mask.remember([key])
        await store.update_task_state("t1", {"error": f"after: {key}"})
        state = await store.get_task_state("t1")
        history = await store.task_history("t1")
    assert state is not None and state.error == "after: ***"
    assert any(h.error == f"before: {key}" for h in history)  # stored before it was known


async def test_a_handoff_is_masked_and_still_matches_its_digests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = canary()
    monkeypatch.setenv("ANTHROPIC_API_KEY", token)
    diff = f"+++ b/work.txt\n+key={token}\n"
    summary = f"I wrote {token} into work.txt"
    handoff = Handoff(
        task="t1",
        phase="build",
        adapter="cli",
        branch="council/t1/1",
        summary=summary,
        diff=diff,
        sha256={"summary": sha256_text(summary), "diff": sha256_text(diff)},
        verify=[{"argv": ["pytest"], "ok": False, "returncode": 1, "output_tail": token}],
    )
    assert token not in handoff.model_dump_json()
    assert handoff.diff == "+++ b/work.txt\n+key=***\n" and handoff.verify[0].output_tail == "***"
    async with FileStateStore.for_repo(tmp_path) as store:
        await store_handoff(store, handoff)
        loaded = await load_handoff(store, "t1", "build", handoff.digest)
    assert loaded == handoff  # a resumed run recognises it: digests describe what is stored
    assert holding(tmp_path, token) == []


PRINT_ENV = "import json, os; print(json.dumps(dict(os.environ)))"


async def test_commands_get_the_allow_list_not_the_orchestrators_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = canary()
    monkeypatch.setenv("GITHUB_TOKEN", token)
    monkeypatch.setenv("JAVA_HOME", "/opt/java")
    monkeypatch.setenv("PLAIN_SETTING", "x")

    result = await run_command([sys.executable, "-c", PRINT_ENV], cwd=tmp_path)
    env = json.loads(result.output)
    assert "GITHUB_TOKEN" not in env and "PLAIN_SETTING" not in env and "JAVA_HOME" not in env
    assert env["PATH"] == os.environ["PATH"] and env["HOME"] == os.environ["HOME"]

    home = tmp_path / "command-home"
    place = CommandPlace(tmp_path, home)
    checks = await run_verify([[sys.executable, "-c", PRINT_ENV]], place, passthrough=["JAVA_HOME"])
    env = json.loads(checks[0].output_tail)
    assert env["JAVA_HOME"] == "/opt/java" and "GITHUB_TOKEN" not in env
    # A verify command's HOME is the session's private one, never the user's.
    assert env["HOME"] == str(home) and env["XDG_CACHE_HOME"] == f"{home}/.cache"
