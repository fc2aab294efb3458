"""Issue 30: the events example of docs/python-api.md runs as printed, gets the events it
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
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "demo.yaml").write_bytes(shipped_demo_config())
    script = tmp_path / "example.py"
    script.write_text(_example())

    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=240
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len([line for line in lines if " landed in " in line]) == 7, lines
    assert lines[-1] == "completed: 7/7 done", lines
    assert done.stderr == ""  # a library prints nothing unasked
