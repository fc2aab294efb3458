"""A Council subscriber gets every event once: lifecycle from the store, CLI output besides."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from orchestrator.council import Council
from orchestrator.events import Event
from tests.support.scheduler_helpers import new_repo, run_config


async def test_each_phase_event_reaches_a_subscriber_once(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    tasks = [
        {
            "id": "one",
            "prompt": "write a file",
            "metadata": {"phase_instructions": {"build": "SAY working\nWRITE one.txt hello"}},
        }
    ]
    events: list[Event] = []
    async with Council(run_config(repo, tasks)) as council:
        council.subscribe(events.append)
        report = await council.run()

    assert report.exit_code == 0
    lifecycle = Counter(
        (e.type, e.data.get("phase")) for e in events if e.type.startswith("phase.")
    )
    assert lifecycle[("phase.started", "build")] == 1
    assert lifecycle[("phase.completed", "build")] == 1
    assert lifecycle[("phase.event", "build")] >= 1  # the CLI's own output, seen live
