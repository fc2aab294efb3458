"""Every ``council run`` keeps its state healthy while it runs (``state.monitor``): a real run
on the scripted CLI takes auto-checkpoints of its session, removes a stale lock planted
beside its records while it goes on, and flags a record over the size threshold with a
warning event; none of it disturbs the run."""

from __future__ import annotations

import json
from pathlib import Path

import anyio

from orchestrator.state import FileStateStore
from orchestrator.state.file.record_files.codec import decode
from tests.support.council_process import events, seen, start, task, wait_for, write_config
from tests.support.scheduler_helpers import merged_tasks, new_repo
from tests.support.timing import patience

MONITOR = (
    "state: {monitor: {lock_cleanup: 0.2s, integrity_check: 0.3s, checkpoint_every: 0.3s, "
    "large_record: 3KiB}}\n"
)


def _config(tmp_path: Path, repo: Path, gate: Path) -> Path:
    build = f"WAIT_FOR {gate} 120\nWRITE slow.txt done"
    config = write_config(tmp_path, repo, task("slow", build))
    text = config.read_text()
    # The CLI waits for the test's gate: the sandbox shows it the test's directory.
    readable = f"sandbox: {{read: [{tmp_path}]}}\n"
    config.write_text(text.replace("tasks:\n", MONITOR + readable + "tasks:\n", 1))
    return config


async def _write_big_record(repo: Path) -> None:
    async with FileStateStore.for_repo(repo) as store:
        await store.put_record("notes", "big", {"text": "x" * 8000})


def _auto_checkpoints(repo: Path) -> list[dict[str, object]]:
    found = []
    for path in sorted((repo / ".council" / "state" / "checkpoints").glob("*.json")):
        checkpoint = json.loads(decode(path.read_bytes()))
        if checkpoint.get("reason") == "auto":
            found.append(checkpoint)
    return found


def test_a_run_checkpoints_cleans_a_stale_lock_and_flags_a_large_record(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    gate = tmp_path / "go"  # the task's CLI waits for it: the run lasts until the test is done
    config = _config(tmp_path, repo, gate)
    run = start("run", config)
    try:
        wait_for(lambda: seen(repo, "run.started"), "the run to start", 60)
        # What a writer killed mid-write leaves: the lock of a record that was never written
        # (its directory, empty).
        planted = repo / ".council" / "state" / "records" / "planted" / "ghost"
        planted.mkdir(parents=True)
        # A record far over the 3 KiB threshold, written beside the run's own.
        anyio.run(_write_big_record, repo)

        wait_for(lambda: not planted.exists(), "the monitor to remove the stale lock", 30)
        assert run.poll() is None, "the lock was cleaned while the run went on"
        wait_for(lambda: seen(repo, "lock.cleaned"), "the lock.cleaned event", 10)
        wait_for(lambda: seen(repo, "state.record_large", key="big"), "the large record flag", 30)
        wait_for(lambda: len(_auto_checkpoints(repo)) >= 2, "two auto-checkpoints", 30)
        assert run.poll() is None
    finally:
        gate.touch()
        _, err = run.communicate(timeout=patience(120))
    assert run.returncode == 0, err
    assert merged_tasks(repo) == ["slow"]
    sessions = {c["session_id"] for c in _auto_checkpoints(repo)}
    started = [e["data"]["session_id"] for e in events(repo) if e["type"] == "run.started"]
    assert sessions == set(started), "only the run's own session is checkpointed"
    # Only the big record is asserted on: a checkpoint of the run may outgrow 3 KiB too.
    flagged = [
        e for e in events(repo) if e["type"] == "state.record_large" and e["data"]["key"] == "big"
    ]
    assert len(flagged) == 1, "flagged once per record and run"
    assert flagged[0]["data"]["size"] > 8000 and flagged[0]["data"]["threshold"] == 3072
