"""Issue 30: the events example of docs/python-api.md runs as printed (issue 48: as the page
says, saved as events.py in an empty directory, and again there), gets the events it
asks for (``events(types=...)``) and the run's report, and the library prints nothing on
stderr unasked (the package logger has a ``NullHandler``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from orchestrator.run.demo_config import shipped_demo_config

ROOT = Path(__file__).resolve().parents[2]


def _example() -> str:
    text = (ROOT / "docs" / "python-api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    runnable = [block for block in blocks if "anyio.run(main)" in block and "events(" in block]
    assert len(runnable) == 1, "one whole events script in docs/python-api.md"
    return runnable[0]


def test_the_documented_events_example_runs_and_gets_both_events_and_report(
    tmp_path: Path,
) -> None:
    # As the page says: saved as events.py, run in an empty directory.
    script = tmp_path / "events.py"
    script.write_text(_example())

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "events.py"], cwd=tmp_path, capture_output=True, text=True, timeout=240
        )

    done = run()

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.splitlines()
    landed = [line for line in lines if " landed in " in line]
    assert len(landed) == 7, lines
    assert {line.split()[0] for line in landed} == set(_printed_tasks()), lines
    assert lines[-1] == "completed: 7/7 done", lines
    assert done.stderr == ""  # a library prints nothing unasked
    # It wrote the demo's config as `council demo --dir d` does.
    assert (tmp_path / "d" / "demo.yaml").read_bytes() == shipped_demo_config()

    again = run()  # "Run again in the same directory ... it prints only the report."
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert again.stdout.splitlines() == ["completed: 7/7 done"], again.stdout


def _printed_tasks() -> list[str]:
    """The tasks the page's sample output shows landing."""
    text = (ROOT / "docs" / "python-api.md").read_text()
    sample = re.search(r"```text\n(.*?)```", text, re.S)
    assert sample is not None, "the page shows what the script prints"
    return [line.split()[0] for line in sample[1].splitlines() if " landed in " in line]
