"""The event loop never opens, locks, lists or renames a file during a run (issue 16): a real
run of three one-file tasks, each taking its file's lock and going through two phases of the
scripted CLI to its landing, watched by the audit hook of ``orchestrator.testing.loop_io``."""

from __future__ import annotations

from pathlib import Path

from orchestrator.council import Council
from orchestrator.testing.loop_io import watching
from tests.support.scheduler_helpers import merged_tasks, new_repo, run_config


def test_the_watcher_sees_a_file_opened_on_the_loop(tmp_path: Path) -> None:
    import anyio

    target = tmp_path / "seen.txt"

    async def opens_on_the_loop() -> None:
        target.write_text("x")
        await anyio.to_thread.run_sync(target.read_text)  # a worker thread: not counted

    with watching() as found:
        anyio.run(opens_on_the_loop)
    assert [(c.event, c.target) for c in found] == [("open", str(target))]


async def test_a_run_does_no_file_work_on_the_event_loop(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    tasks = [
        {"id": f"t{n}", "prompt": f"WRITE f{n}.txt from task {n}", "files": [f"f{n}.txt"]}
        for n in range(3)
    ]
    config = run_config(
        repo,
        tasks,
        adapters={"alpha": {"type": "scripted", "options": {"delay": 0}}},
        workflow={"phases": [{"name": "plan"}, {"name": "build"}]},
    )
    with watching() as found:
        async with Council(config) as council:
            report = await council.run()
    assert report.totals.done == 3, report
    assert sorted(merged_tasks(repo)) == ["t0", "t1", "t2"]
    calls = sorted({str(call) for call in found})
    assert not calls, f"{len(found)} file calls on the event loop:\n" + "\n".join(calls)
