"""The report kept beside a file store (``run.reports.report_cache``): ``council status`` reads it
instead of every record while no record it was built from has been written, and never
otherwise: a task written, a session added, a timed wait run out, another version of the code,
a damaged file each mean the report is built again from the records."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from orchestrator.cli.store_access import newest_report
from orchestrator.config.origin import SESSION_KEY, ConfigOrigin
from orchestrator.models import TaskStatus, utcnow
from orchestrator.run.reports import report_cache
from orchestrator.run.reports.quick_report import quick_report
from orchestrator.run.reports.report import RunReport
from orchestrator.state import FileStateStore
from tests.support.cli_process_helpers import ENV
from tests.support.timing import patience

pytestmark = pytest.mark.anyio


async def new_store(tmp_path: Path, tasks: list[str]) -> tuple[Path, str]:
    """A state directory with one session of ``tasks``, the first one done."""
    root = tmp_path / "state"
    async with FileStateStore(root) as store:
        session = await store.create_session({}, tasks)
        await store.update_task_state(tasks[0], {"status": TaskStatus.DONE})
    return root, session.session_id


async def look(root: Path) -> RunReport:
    """What ``council status`` reads from the store (and keeps)."""
    report, _ = await newest_report(root)
    return report


async def write_task(root: Path, task_id: str, updates: dict[str, object]) -> None:
    async with FileStateStore(root) as store:
        await store.update_task_state(task_id, updates)


async def test_the_kept_report_is_the_built_one_until_a_task_is_written(tmp_path: Path) -> None:
    root, session = await new_store(tmp_path, ["a", "b", "c"])
    assert report_cache.kept_report(root) is None  # nothing kept before the first look

    built = await look(root)
    kept = report_cache.kept_report(root)
    assert kept is not None and kept == built and kept.session_id == session

    await write_task(root, "b", {"status": TaskStatus.FAILED, "error": "broke"})
    assert report_cache.kept_report(root) is None  # the write is seen, by any process
    again = await look(root)
    assert again.task("b").status == TaskStatus.FAILED
    assert report_cache.kept_report(root) == again


async def test_a_new_session_is_never_hidden_by_the_old_ones_kept_report(tmp_path: Path) -> None:
    root, _ = await new_store(tmp_path, ["a"])
    await look(root)
    async with FileStateStore(root) as store:
        newer = await store.create_session({}, ["x", "y"])
    assert report_cache.kept_report(root) is None
    assert (await look(root)).session_id == newer.session_id


async def test_a_configs_report_answers_a_look_with_none_only_while_its_the_newest(
    tmp_path: Path,
) -> None:
    """Kept for a config's newest session (a run keeps it so: ``kept_after_run``), a report
    also answers ``status`` with no config only when that session is the store's newest."""
    root = tmp_path / "state"
    first, second = ConfigOrigin("/w/a.yaml", "1" * 64), ConfigOrigin("/w/b.yaml", "2" * 64)
    async with FileStateStore(root) as store:
        await store.create_session({}, ["a"], metadata={SESSION_KEY: first.as_dict()})
        newer = await store.create_session({}, ["b"], metadata={SESSION_KEY: second.as_dict()})

    older = quick_report(root, first)
    assert older is not None and older.session_id != newer.session_id
    assert report_cache.kept_report(root, first) == older
    assert report_cache.kept_report(root, None) is None  # not the store's newest
    newest = quick_report(root, second)
    assert newest is not None and newest.session_id == newer.session_id
    assert report_cache.kept_report(root, None) == newest == report_cache.kept_report(root, second)
    assert report_cache.kept_report(root, first) is None  # kept for another config


async def test_a_timed_wait_ends_the_kept_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = await new_store(tmp_path, ["a", "b"])
    until = utcnow() + timedelta(minutes=5)
    await write_task(
        root, "b", {"status": TaskStatus.PARKED, "metadata": {"parked_until": until.isoformat()}}
    )
    shown = await look(root)
    assert shown.task("b").waiting is not None and "parked until" in shown.task("b").waiting
    assert report_cache.kept_report(root) == shown

    later = until + timedelta(seconds=1)
    monkeypatch.setattr(report_cache, "utcnow", lambda: later)
    assert report_cache.kept_report(root) is None  # the park is over: "parked until" is stale


async def test_another_version_of_the_code_builds_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = await new_store(tmp_path, ["a"])
    await look(root)
    assert report_cache.kept_report(root) is not None  # every file of _MAKERS is there
    monkeypatch.setattr(report_cache, "_makers", lambda: [[1, 2, 3]])
    assert report_cache.kept_report(root) is None


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"{not json",
        b"[]",
        b'{"format": 1}',
    ],
)
async def test_a_damaged_file_is_only_a_rebuild(tmp_path: Path, damage: bytes) -> None:
    root, _ = await new_store(tmp_path, ["a", "b"])
    built = await look(root)
    (root / report_cache.CACHE_NAME).write_bytes(damage)
    assert report_cache.kept_report(root) is None
    assert await look(root) == built
    assert report_cache.kept_report(root) == built


async def test_a_report_that_no_longer_validates_is_only_a_rebuild(tmp_path: Path) -> None:
    root, _ = await new_store(tmp_path, ["a"])
    await look(root)
    path = root / report_cache.CACHE_NAME
    kept = json.loads(path.read_bytes())
    kept["report"]["tasks"][0]["status"] = "no such status"
    path.write_text(json.dumps(kept))
    assert report_cache.kept_report(root) is None


async def test_identities_are_taken_before_the_records_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write landing between the snapshot and the read leaves a kept report newer than its
    identities: the next look builds it again rather than trust it."""
    root, _ = await new_store(tmp_path, ["a", "b"])
    taken = report_cache.snapshot_tasks

    def then_written(*args: object) -> None:
        taken(*args)  # type: ignore[arg-type]
        anyio.from_thread.run(write_task, root, "b", {"status": TaskStatus.FAILED})

    monkeypatch.setattr("orchestrator.cli.store_access.snapshot_tasks", then_written)
    shown = await look(root)
    assert shown.task("b").status == TaskStatus.FAILED  # read after the write
    assert report_cache.kept_report(root) is None  # and kept as stale as its identities say


def test_status_on_a_kept_report_starts_without_the_store(tmp_path: Path) -> None:
    """The property behind ``bench/startup_bench.py``'s figure for a big run: a quick look
    imports neither the store nor an event loop, and shows what the full one showed."""
    root, _ = anyio.run(new_store, tmp_path, [f"t{n}" for n in range(50)])
    config = tmp_path / "run.yaml"
    probe = (
        "import json, sys\n"
        "sys.argv = ['council', 'status', sys.argv[1], '--json']\n"
        "from orchestrator.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(json.dumps(sorted(sys.modules)))\n"
    )
    repo = tmp_path / "repo"
    (repo / ".council").mkdir(parents=True)
    (root).rename(repo / ".council" / "state")
    config.write_text(
        f"repo: {repo}\nadapters: {{a: {{type: scripted}}}}\ntasks: [{{id: t0, prompt: x}}]\n"
    )

    def status() -> tuple[dict[str, object], list[str]]:
        done = subprocess.run(
            [sys.executable, "-c", probe, str(config)],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=patience(60),
            check=False,
        )
        modules = json.loads(done.stderr[done.stderr.index("[") :])
        return json.loads(done.stdout), modules

    built, first = status()
    kept, second = status()
    assert kept == built and len(built["tasks"]) == 50  # type: ignore[arg-type]
    # The first look builds it from the record files (``run.reports.quick_report``), the next one
    # reads it kept: neither opens the store or an event loop while nothing asks for them.
    assert "orchestrator.run.reports.quick_report" in first
    assert "orchestrator.run.reports.quick_report" not in second
    for modules in (first, second):
        assert "orchestrator.state.file.store" not in modules and "asyncio" not in modules

    (repo / ".council" / "state" / "transactions").mkdir()  # a transaction on disk
    (repo / ".council" / "state" / report_cache.CACHE_NAME).unlink()
    (repo / ".council" / "state" / "transactions" / "t.json").write_text("{}")
    _, third = status()  # the store's business: it is opened
    assert "orchestrator.state.file.store" in third and "asyncio" in third
