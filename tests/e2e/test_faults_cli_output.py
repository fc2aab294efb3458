"""Output floods through the real ``council run`` process: three CLIs at once print 256 MiB
of lines, one 16 MiB line without a newline, and 64 MiB of invalid UTF-8. The orchestrator's
peak memory stays under a fixed bound, each log stops at ``LOG_LIMIT``, nothing else under
``.council/`` grows with the output, and every task still lands.

The volumes are above every cap (the log's 50 MiB, the line cap's 1 MiB; the lines alone are
twice the memory bound) yet small enough to pass through the pipes in seconds; measured on a
loaded 2-core machine: about 10 s for the whole run, peak RSS 77 MiB against 51 MiB for a
quiet run. (The line and the invalid UTF-8 were 50 and 128 MiB: the test took 34.7 s beside
the real-CLI tier, over the suite's 30 s a test, for nothing a smaller flood past the caps
does not show.)
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.process.output import LINE_CAP, LOG_LIMIT
from tests.support.fault_helpers import FaultRun

MiB = 1024 * 1024
MEMORY_BOUND = 128 * MiB  # peak RSS of the orchestrator (or any process it waited for)
FLOODS = {
    "fault": ("lines", 256 * MiB),
    "line": ("line", 16 * MiB),
    "binary": ("binary", 64 * MiB),
}


def flood_env(kind: str, size: int) -> dict[str, str]:
    return {"FAULT_FLOOD": kind, "FAULT_BYTES": str(size)}


def test_floods_keep_memory_bounded_and_logs_capped(tmp_path: Path) -> None:
    more = {task: ("flood.py", flood_env(*FLOODS[task])) for task in ("line", "binary")}
    run = FaultRun(tmp_path, "flood.py", env=flood_env(*FLOODS["fault"]), more=more)
    finished = run.run(timeout=300)

    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.max_rss < MEMORY_BOUND, f"peak RSS {finished.max_rss / MiB:.0f} MiB"
    assert {t["task_id"]: t["status"] for t in finished.report["tasks"]} == {
        "fault": "done",
        "line": "done",
        "binary": "done",
    }
    assert run.on_main("work.txt")  # each wrote it (the same text) before its flood

    (lines_log,) = run.logs("fault")
    assert LOG_LIMIT - MiB < lines_log.stat().st_size < LOG_LIMIT + 4096
    with lines_log.open("rb") as log:
        log.seek(-400, os.SEEK_END)
        assert b"[log truncated] after " in log.read()

    (line_log,) = run.logs("line")
    text = line_log.read_bytes()
    assert len(text) < LINE_CAP + 8192
    assert f"[line truncated: {FLOODS['line'][1] - LINE_CAP} more bytes]".encode() in text

    (binary_log,) = run.logs("binary")
    assert binary_log.stat().st_size < LOG_LIMIT + 4096
    assert "\ufffd".encode() in binary_log.read_bytes()[:200_000]

    # The output went to the logs; state, events and handoffs keep bounded excerpts only.
    logs = {lines_log, line_log, binary_log}
    others = [path for path in run.files() if path not in logs]
    assert max(path.stat().st_size for path in others) < 4 * MiB


async def test_a_megabyte_final_answer_still_lets_the_next_phase_start(tmp_path: Path) -> None:
    # The build's final answer becomes the review prompt's summary; a prompt passed as one
    # argument over 128 KiB could not even be started (E2BIG).
    run = FaultRun(
        tmp_path,
        "flood.py",
        env=flood_env("answer", LINE_CAP - 64),
        phases=[{"name": "build"}, {"name": "review"}],
        output={"output": "jsonl", "result_key": "result", "result_when": {"type": "result"}},
    )
    report = await run.run_here()

    assert report["totals"]["done"] == 1, report["tasks"]
    review = next(path for path in run.logs() if "-review-" in path.name).read_bytes()
    header = review[: review.index(b"\nstdout| ")]  # the logged argv, prompt included
    assert b"bytes cut ..." in header and len(header) < 128 * 1024
