"""The safety-net factor (``orchestrator.testing.patience``): the user's number, else the load
measured as each timeout is taken, never going down; pytest's per-test timeout scaled by it as
each test starts (``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.testing import patience


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(patience.PATIENCE_ENV, raising=False)
    monkeypatch.setattr(patience, "_highest", [1.0])


def test_the_users_number_wins_and_is_at_least_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patience, "_load_per_core", lambda: 5.0)
    monkeypatch.setenv(patience.PATIENCE_ENV, "2.5")
    assert patience.factor() == 2.5 and patience.patience(10) == 25.0
    monkeypatch.setenv(patience.PATIENCE_ENV, "0.2")
    assert patience.factor() == 1.0
    monkeypatch.setenv(patience.PATIENCE_ENV, "lots")  # not a number: measured instead
    assert patience.factor() == 5.0


def test_a_load_that_rises_is_met_and_the_net_never_shrinks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads = iter([0.3, 3.0, 1.2, 40.0])
    monkeypatch.setattr(patience, "_load_per_core", lambda: next(loads))
    seen = [patience.factor() for _ in range(4)]
    assert seen == [1.0, 3.0, 3.0, patience.MAX_MEASURED]


def test_the_runnable_count_is_read_from_proc_loadavg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "loadavg"
    source.write_text("0.50 0.40 0.30 9/512 12345\n")
    monkeypatch.setattr(patience, "_LOADAVG", str(source))
    assert patience._runnable_now() == 8  # but this process
    source.write_text("garbled\n")
    assert patience._runnable_now() == 0.0


@pytest.mark.timeout(7)
def test_the_per_test_timeout_was_scaled_as_this_test_started(
    request: pytest.FixtureRequest,
) -> None:
    mark = request.node.get_closest_marker("timeout")
    assert mark is not None
    assert 7 <= mark.args[0] <= 7 * patience.MAX_MEASURED
