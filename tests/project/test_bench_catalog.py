"""Every script in ``bench/`` is listed in ``bench/quick_all.py``, as a bench or as a helper, so
a new bench cannot be left out of CI; every bench has a quick mode; CI runs them all. Running
the quick benches takes minutes, so that is ``.ci/run``'s (``bench/quick_all.py``), not these
tests': here each bench only has to start and describe its ``--quick`` (and ``--json``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


def catalog() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_quick_all", BENCH / "quick_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


QUICK_ALL = catalog()
BENCHES: dict[str, tuple[str, ...]] = QUICK_ALL.BENCHES
HELPERS: dict[str, str] = QUICK_ALL.HELPERS


def test_every_script_is_a_bench_or_a_helper() -> None:
    scripts = {path.name for path in BENCH.glob("*.py")}
    assert not set(BENCHES) & set(HELPERS), "a script listed both as a bench and as a helper"
    unlisted = scripts - set(BENCHES) - set(HELPERS)
    assert not unlisted, f"add these to BENCHES or HELPERS in bench/quick_all.py: {unlisted}"
    gone = (set(BENCHES) | set(HELPERS)) - scripts
    assert not gone, f"listed in bench/quick_all.py but not in bench/: {gone}"


def test_every_helper_is_used_by_another_script() -> None:
    """A helper is imported or run by another script (else it is a bench to list and run)."""
    texts = {path.name: path.read_text() for path in BENCH.glob("*.py")}
    for helper in set(HELPERS) - {"quick_all.py"}:
        stem = helper.removesuffix(".py")
        users = [
            name
            for name, text in texts.items()
            if name != helper
            and (f"import {stem}" in text or f"from {stem} import" in text or helper in text)
        ]
        assert users, f"bench/{helper} is listed as a helper but no other script uses it"


def test_text_only_benches_are_benches() -> None:
    assert set(QUICK_ALL.TEXT_ONLY) <= set(BENCHES)


def test_parts_a_bench_needs_are_known() -> None:
    for name, parts in BENCHES.items():
        for part in parts:
            assert part in {"postgres", "bwrap"}, f"{name}: unknown part {part!r}"


def test_ci_runs_every_quick_bench() -> None:
    # In a job of its own beside lint and types, joined (its log printed, its failure failing
    # the run) before the tests.
    ci = (ROOT / ".ci" / "run").read_text()
    assert (
        ".venv/bin/python bench/quick_all.py --jobs 2 >.ci-logs/benches.log 2>&1 &\n"
        "benches_job=$!\n" in ci
    )
    joined = ci.index('joined "$benches_job" benches')
    tests = ci.index("\n.venv/bin/python -m pytest\n")  # the tests' line, not a collection's
    assert ci.index("benches_job=$!") < joined < tests


@pytest.mark.parametrize("script", sorted(BENCHES))
def test_bench_has_a_quick_mode(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout
    if script not in QUICK_ALL.TEXT_ONLY:
        assert "--json" in done.stdout, f"{script} has no --json: give it one or list it"


def quick_all(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``bench/quick_all.py`` with ``args``, as a process; its output captured."""
    return subprocess.run(
        [sys.executable, str(BENCH / "quick_all.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_an_unknown_bench_is_refused_by_name() -> None:
    done = quick_all("--only", "no_such_bench.py")
    assert done.returncode == 2
    assert "no_such_bench.py" in done.stderr
    assert "BENCHES" in done.stderr


def test_benches_run_side_by_side_print_each_output_whole() -> None:
    done = quick_all("--jobs", "2", "--only", "summary_bench.py", "fund_bench.py", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    # Each bench's block starts with its header and runs to the next header: its own lines.
    blocks = {
        block.split(" ", 1)[0]: block
        for block in out.split("\n== quick benches")[0].split("== ")
        if block.strip()
    }
    assert set(blocks) == {"summary_bench.py", "fund_bench.py"}, out
    for name, block in blocks.items():
        assert "--quick (" in block.splitlines()[0] and ", ok)" in block.splitlines()[0], block
        assert len(block.splitlines()) > 1, f"{name} printed nothing: {block!r}"
    summary = out.split("\n== quick benches\n", 1)[1].splitlines()
    assert [line.split()[0] for line in summary] == ["summary_bench.py", "fund_bench.py"]
    assert all(line.split()[-1] == "ok" for line in summary), summary


def test_jobs_below_one_are_refused() -> None:
    done = quick_all("--jobs", "0")
    assert done.returncode == 2
    assert "--jobs must be 1 or more, not 0" in done.stderr
