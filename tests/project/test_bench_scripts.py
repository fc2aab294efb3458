"""The benches the manual quotes (docs/benchmarks.md) still start, and the overhead bench's two
sides do the same work: a tiny run of each as a process, every task landed once (the bench
checks it). No timing is asserted: the figures are the benches' to print, not the tests' to
judge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
QUOTED = [
    "overhead_bench.py",
    "startup_bench.py",
    "lock_bench.py",
    "team_speedup.py",
    "team_overhead.py",
    "radar_bench.py",
    "secret_scan_bench.py",
    "log_mask_bench.py",
    "fund_bench.py",
    "push_gate_bench.py",
]


@pytest.mark.parametrize("script", QUOTED)
def test_bench_says_how_to_run_it(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--quick" in done.stdout
    assert "--json" in done.stdout


def test_overhead_bench_runs_both_sides_as_processes() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "overhead_bench.py"),
            "--tasks",
            "2",
            "--rounds",
            "1",
            "--capacity",
            "2",
            "--files",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, f"the bench exited {done.returncode}:\n{done.stderr[-6000:]}"
    result = json.loads(done.stdout)
    assert result["git_per_task"]["bare"] >= 8  # 8, more only where git was tried again
    assert result["git_per_task"]["council"] > 0
    counted = result["per_task"]  # the counted run's figures, each beside its target or floor
    assert counted["git"] == result["git_per_task"]["council"]
    assert counted["hops"] > 0 and counted["writes"] >= 1 and counted["fsyncs"] >= 1
    assert result["targets"]["hops_per_task"] == 15
    assert result["floors"] == {"writes": 4, "fsyncs": 8}
    assert result["cpu_all"]["council"]["median"] > result["cpu_own"]["council"]["median"] > 0
