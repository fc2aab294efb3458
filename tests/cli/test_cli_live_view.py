"""``council run`` on a terminal, as a person sees it (a real pseudo-terminal read back through
a terminal emulator, at 60, 80 and 160 columns): every task under a headline that counts them,
why each waiting task waits, Ctrl-C acknowledged on screen, and a stop that ends with the
exact command that continues the run."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.cli.status import live_board
from orchestrator.cli.status.live_board import headline, rows_for
from orchestrator.council import TaskLine
from tests.support.terminal import Terminal

ROOT = Path(__file__).resolve().parents[2]


def _demo(tmp_path: Path) -> Path:
    """The shipped offline demo, its sample repository under ``tmp_path``."""
    (tmp_path / "configs").mkdir()
    shutil.copy(ROOT / "configs" / "demo.yaml", tmp_path / "configs" / "demo.yaml")
    return tmp_path / "configs" / "demo.yaml"


@pytest.mark.parametrize("columns", [60, 80, 160])
def test_the_live_view_shows_every_task_and_why_it_waits(tmp_path: Path, columns: int) -> None:
    _demo(tmp_path)
    terminal = Terminal(["run", "configs/demo.yaml"], tmp_path, columns)
    try:
        # Early in the demo: document-usage waits for add-cli, add-slugify for the file
        # add-word-count holds.
        screen = terminal.read_until(lambda s: "after add-cli" in s and "running" in s)
        board = screen[screen.index("council: ") :]
        assert board.splitlines()[0].startswith("council: 0/7 done · ")
        for task_id in (
            "add-word-count",
            "add-slugify",
            "add-license-note",
            "add-changelog",
            "add-cli",
            "write-tests",
            "document-usage",
        ):
            assert f" {task_id} " in board  # whole, never cut
        # Nor in what a task waits for: cut between words ("after add-word-coun…" was).
        assert not re.search(r"[\w-]…", board), board
        assert "…" not in board  # nor dropped whole ("after …" was)
        assert "after add-cli" in board
        assert "waiting" in board
        assert terminal.wait() == 0
    finally:
        terminal.kill()
    final = terminal.text()
    assert "completed, 7/7 done" in final
    assert "council: " not in final  # the live view is gone once the summary is printed


@pytest.mark.parametrize("columns", [80, 160])
def test_ctrl_c_is_acknowledged_and_the_run_ends_with_the_command_that_continues_it(
    tmp_path: Path, columns: int
) -> None:
    _demo(tmp_path)
    terminal = Terminal(["run", "configs/demo.yaml"], tmp_path, columns)
    try:
        terminal.read_until(lambda s: " running" in s and "council: " in s)
        terminal.ctrl_c()
        # Said on screen while the sessions commit their work, not erased by the redraw.
        terminal.read_until(lambda s: "stopping: no new sessions" in s)
        assert terminal.wait() == 130
    finally:
        terminal.kill()
    final = terminal.text()
    assert "stopping: no new sessions; running ones commit their work" in final
    assert ": interrupted, " in final
    assert "continue with:\n  council resume configs/demo.yaml\n" in final
    # No line of the live view is left behind (a ^C echo once shifted the drawing).
    assert "council: " not in final
    assert "doing / waiting for" not in final


def _line(task_id: str, status: str, detail: str = "") -> TaskLine:
    return TaskLine(task_id, status, detail=detail)


def test_the_headline_counts_every_kind_of_task() -> None:
    lines = [
        _line("a", "done"),
        _line("b", "running"),
        _line("c", "queued", "after b"),
        _line("d", "queued"),
        _line("e", "failed", "boom"),
        _line("f", "merging", "lands after b (both change README.md)"),
    ]
    assert headline(lines) == (
        "council: 1/6 done · 1 running · 1 merging · 1 waiting · 1 queued · 1 failed"
    )
    assert headline(lines, "stopping").endswith(" · stopping")


def test_a_short_screen_folds_ended_tasks_first_then_queued_ones() -> None:
    lines = [_line(f"done-{n}", "done") for n in range(30)]
    lines += [_line(f"run-{n}", "running") for n in range(3)]
    lines += [_line(f"wait-{n}", "queued", "after run-0") for n in range(3)]
    lines += [_line(f"queue-{n}", "queued") for n in range(10)]
    rows = rows_for(lines, height=24)  # 16 rows of room
    shown = [row[0] for row in rows]
    assert len(rows) == 16
    assert all(f"run-{n}" in shown and f"wait-{n}" in shown for n in range(3))
    assert not any(name.startswith("done-") for name in shown)
    assert rows[-1][:2] == ("…", "40 more") or rows[-1][1].endswith("more")
    assert "30 done" in rows[-1][-1]


_KINDS = ["done", "failed", "running", "merging", "queued", "parked", "in_review", "cancelled"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(_KINDS), st.booleans()), max_size=60),
    st.integers(min_value=0, max_value=40),
)
def test_the_rows_kept_are_the_first_of_each_rank_to_stay(
    kinds: list[tuple[str, bool]], height: int
) -> None:
    # The fold as it was first written (a task removed from the list one at a time), against
    # the one pass it is now: the same rows, the same count of what gave way.
    lines = [
        _line(f"t{n}", kind, "after t0" if waits else "") for n, (kind, waits) in enumerate(kinds)
    ]
    room = max(3, height - 8)
    shown, folded = list(lines), Counter[str]()
    for rank in ("ended", 2, 1):
        if len(shown) + (1 if folded else 0) <= room:
            break
        for line in [x for x in shown if live_board._rank(x) == rank]:
            if len(shown) + 1 <= room:
                break
            shown.remove(line)
            folded[live_board._kind(line)] += 1
    rows = rows_for(lines, height)
    assert [row[0] for row in rows if row[0] != "…"] == [line.task_id for line in shown]
    if folded:
        assert rows[-1][1] == f"{sum(folded.values())} more"
