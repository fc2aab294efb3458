"""The ``council`` command with ``overhead_counts``' wrappers in place: its counts to a file.

    python bench/counted_council.py OUT.json run CONFIG --json

runs ``council run CONFIG --json`` in this process, counting (``overhead_counts``) from before
the command is parsed to its exit, and writes the counts as JSON to ``OUT.json``. The benches
run it once, apart from their timed rounds (the wrappers cost a little): the counts are the
same whatever the load, so one run is enough.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from overhead_counts import Counts, counting, install


def dump(counts: Counts) -> dict[str, list[list[object]]]:
    def rows(counter: object) -> list[list[object]]:
        out: list[list[object]] = []
        for key, value in counter.items():  # type: ignore[attr-defined]
            out.append([*(key if isinstance(key, tuple) else (key,)), value])
        return out

    return {
        "git": rows(counts.git),
        "processes": rows(counts.processes),
        "hops": rows(counts.hops),
        "writes": rows(counts.writes),
        "fsyncs": rows(counts.fsyncs),
        "loads": rows(counts.loads),
        "worker_cpu": rows(counts.worker_cpu),
    }


def load(data: dict[str, list[list[object]]]) -> Counts:
    counts = Counts()
    for name, entries in data.items():
        if not isinstance(entries, list):
            continue  # a figure beside the counts (the run's wall)
        counter = getattr(counts, name)
        for *key, value in entries:
            counter[tuple(key) if len(key) > 1 else key[0]] = value
    return counts


def main() -> None:
    out = Path(sys.argv.pop(1))
    sys.argv[0] = "council"
    install()
    from orchestrator.cli.app import main as council

    code: object = 0
    with counting() as counts:
        try:
            council()
        except SystemExit as stop:
            code = stop.code
    out.write_text(json.dumps(dump(counts)))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
