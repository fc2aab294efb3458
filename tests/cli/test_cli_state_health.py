"""``council state health`` and ``council state import-legacy`` through the real command.

Health after a real run is a table (and ``--json``) with exit 0; a damaged record makes the
store unhealthy (exit 1, the record named), a stale lock is only a warning. A legacy state
file is imported into the configured store with a summary, again without duplicates, and a
file that is not one is refused naming it, with nothing written.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from orchestrator.state.legacy import LEGACY_STATE_PATH
from tests.state.test_state_legacy import LEGACY
from tests.support.cli_process_helpers import council
from tests.support.council_process import task, write_config
from tests.support.scheduler_helpers import new_repo


def _ran(tmp_path: Path) -> tuple[Path, Path]:
    repo = new_repo(tmp_path)
    config = write_config(tmp_path, repo, task("one", "WRITE one.txt 1"))
    done = council("run", config, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return repo, config


def test_health_of_a_run_and_of_a_damaged_store(tmp_path: Path) -> None:
    repo, config = _ran(tmp_path)
    shown = council("state", "health", config, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert ": healthy" in shown.stdout and "tasks 1" in shown.stdout
    assert "free disk" in shown.stdout and "last checkpoint" in shown.stdout
    report = json.loads(council("state", "health", config, "--json", cwd=tmp_path).stdout)
    assert report["healthy"] is True and report["record_counts"]["tasks"] == 1
    assert report["backend_details"]["free_disk_bytes"] > 0
    assert report["event_log_bytes"] > 0

    doctor = council("doctor", config, cwd=tmp_path)
    assert "state health: " in doctor.stdout and "MiB free" in doctor.stdout

    # A stale lock (a record never written: its directory, the lock, left empty) is worth a
    # warning; the store stays healthy.
    ghost = repo / ".council" / "state" / "records" / "planted" / "ghost"
    ghost.mkdir(parents=True)
    warned = council("state", "health", config, cwd=tmp_path)
    assert warned.returncode == 0 and "warning: 1 stale lock" in warned.stderr

    current = repo / ".council" / "state" / "tasks" / "one" / "current.json"
    current.write_bytes(current.read_bytes()[:-9])  # torn: its checksum line cut short
    sick = council("state", "health", config, cwd=tmp_path)
    assert sick.returncode == 1
    assert "UNHEALTHY" in sick.stdout and "problem: 1 damaged record(s): tasks/one" in sick.stderr
    data = json.loads(council("state", "health", config, "--json", cwd=tmp_path).stdout)
    assert data["healthy"] is False and [d["key"] for d in data["damaged"]] == ["one"]
    assert current.read_bytes().endswith(b"\n") is False, "looking repairs nothing"

    large = council("state", "health", config, "--large-record", "100B", cwd=tmp_path)
    assert "record(s) over 100 bytes" in large.stderr


def test_import_legacy_state_into_the_configured_store(tmp_path: Path) -> None:
    repo, config = _ran(tmp_path)
    legacy = repo / LEGACY_STATE_PATH
    legacy.parent.mkdir()
    legacy.write_text(json.dumps(LEGACY))
    original = legacy.read_bytes()

    first = council("state", "import-legacy", config, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "imported 2 session(s) with 3 task(s)" in first.stdout
    assert "session_2024-01-05, old-done" in first.stdout
    assert legacy.read_bytes() == original

    again = council("state", "import-legacy", config, str(legacy), "--json", cwd=tmp_path)
    summary = json.loads(again.stdout)
    assert summary["sessions_imported"] == []
    assert summary["sessions_skipped"] == ["session_2024-01-05", "old-done"]
    sessions = sorted(p.name for p in (repo / ".council" / "state" / "sessions").iterdir())
    assert len(sessions) == 3  # the run's own and the two imported, once each
    assert council("state", "verify", config, cwd=tmp_path).returncode == 0


def test_import_legacy_refuses_what_is_not_a_legacy_file(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = write_config(tmp_path, repo, task("one", "WRITE one.txt 1"))
    bad = tmp_path / "old-state.json"
    bad.write_text('{"version": "1.0", "sessions": []}')
    refused = council("state", "import-legacy", config, str(bad), cwd=tmp_path)
    assert refused.returncode == 2
    assert f"{bad}: expected legacy state format version 2.0, found '1.0'" in refused.stderr
    torn = tmp_path / "torn.json"
    torn.write_text('{"version": "2.0", "sess')
    refused = council("state", "import-legacy", config, str(torn), cwd=tmp_path)
    assert refused.returncode == 2 and f"{torn}: not a readable legacy state file" in refused.stderr
    missing = council("state", "import-legacy", config, cwd=tmp_path)
    assert missing.returncode == 2 and "no legacy state file there" in missing.stderr
    assert not (repo / ".council" / "state" / "sessions").exists()  # nothing written


def test_clean_drops_the_event_archives_of_the_sessions_it_removes(tmp_path: Path) -> None:
    repo, config = _ran(tmp_path)
    council_dir = repo / ".council"
    archive = council_dir / "events.20200101T000000000000Z.jsonl.gz"
    archive.write_bytes(gzip.compress(b'{"type": "old", "ts": "2020-01-01T00:00:00Z"}\n'))
    log = (council_dir / "events.jsonl").read_bytes()
    done = council("clean", config, "--older-than", "0s", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "removed 1 finished session" in done.stdout
    assert not archive.exists()
    assert (council_dir / "events.jsonl").read_bytes().startswith(log)  # never cut in place
