"""Narrow terminals (40, 60 and 80 columns) never cut an id: the summary ``run`` and ``status``
print, the table ``status --watch`` redraws and the live board of ``council run``, each drawn
by rich as a terminal of that width would show it. A lesser column gives way and a dim line
says so; a task's status is never dropped; a headline wraps between words; when not even the
ids fit side by side, a live table stacks each row on lines of its own."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from functools import partial

import pytest
from rich.console import Console, RenderableType

from orchestrator.cli import console
from orchestrator.cli.console import tables
from orchestrator.cli.status.live_board import COLUMNS
from orchestrator.cli.status.summary import SUMMARY

SESSION = "s-20261126t171217648701-44595b"
TITLE = f"session {SESSION}: completed, 2/3 done, 1 failed, 0 in conflict"
ROWS = [
    ("add-word-count", "done", "alice", 1, "council/add-word-count/1", "4e9cb9d881", "1.4s", ""),
    (
        "document-the-usage",
        "waiting_for_checkout: base is dirty",
        "alice",
        1,
        "council/document-the-usage/1",
        "-",
        "0.8s",
        "",
    ),
    ("refused-login", "failed", "alice", 1, "council/refused-login/1", "-", "0.2s", "401 (x)"),
]
IDS = [SESSION, *(row[0] for row in ROWS), *(row[4] for row in ROWS), "4e9cb9d881"]
HEADLINE = "council: 0/7 done · 2 running · 1 merging · 3 waiting · 1 queued"
BOARD = [
    ("add-word-count", "running", "build", "claude", "3s", "writing textkit/words.py now"),
    ("document-usage", "waiting", "", "", "", "after add-cli"),
    ("add-slugify", "waiting", "", "", "", "textkit/words.py is held by add-word-count"),
]
WIDTHS = [40, 60, 80]


def screen(monkeypatch: pytest.MonkeyPatch, width: int) -> Console:
    shown = Console(
        file=io.StringIO(), width=width, force_terminal=True, highlight=False, soft_wrap=True
    )
    monkeypatch.setattr(console, "stdout", shown)
    return shown


def lines_of(shown: Console) -> list[str]:
    assert isinstance(shown.file, io.StringIO)
    return re.sub(r"\x1b\[[0-9;]*m", "", shown.file.getvalue()).splitlines()


def drawn(
    monkeypatch: pytest.MonkeyPatch, width: int, draw: Callable[[], RenderableType]
) -> list[str]:
    """What a live display draws of what ``draw`` makes for a terminal ``width`` wide (``Live``
    renders it as ``print`` does)."""
    shown = screen(monkeypatch, width)
    shown.print(draw())
    return lines_of(shown)


def assert_ids_whole(lines: list[str], ids: list[str]) -> None:
    for each in ids:
        assert any(each in line for line in lines), f"{each!r} is cut:\n" + "\n".join(lines)
    assert not any(re.search(r"\S…", line) for line in lines), "\n".join(lines)


def words(lines: list[str]) -> list[str]:
    return " ".join(lines).replace("│", " ").replace("┃", " ").split()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_summary_keeps_ids_and_the_status_at_any_width(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    shown = screen(monkeypatch, width)
    console.print_table(SUMMARY, ROWS, title=TITLE)
    lines = lines_of(shown)
    assert_ids_whole(lines, IDS)
    header = next(line for line in lines if line.split() and line.split()[0] == "task")
    assert "status" in header.split()  # never dropped
    assert words(lines).count("waiting_for_checkout:") == 1  # nor folded inside a word
    title = [line for line in lines[: lines.index(header)] if line.strip()]
    assert " ".join(" ".join(title).split()) == TITLE  # wrapped between words, every word
    assert all(len(line) <= width for line in title)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_watched_table_never_cuts_an_id_nor_its_headline(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    lines = drawn(monkeypatch, width, partial(tables.redrawn, SUMMARY, ROWS, TITLE))
    assert all(len(line) <= width for line in lines), "\n".join(lines)
    assert_ids_whole(lines, IDS)
    assert " ".join(words(lines)).startswith(TITLE)  # the headline wraps, nothing is cut
    for status in ("done", "failed"):  # every task's status is there
        assert status in words(lines)
    # What gave way, said once (wrapped between words where even that is too wide).
    notes = [n for n, line in enumerate(lines) if line.strip().startswith("too narrow to show: ")]
    assert len(notes) == 1
    said = " ".join(" ".join(lines[notes[0] :]).split())
    assert said.startswith("too narrow to show: adapter, attempts, time, error"), said


@pytest.mark.parametrize("width", WIDTHS)
def test_the_live_board_never_cuts_what_a_task_waits_for(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    lines = drawn(monkeypatch, width, partial(console.board_table, COLUMNS, BOARD, HEADLINE))
    # Narrower than the screen: the terminal's ^C echo must not wrap.
    assert all(len(line.rstrip()) <= width - 3 for line in lines), "\n".join(lines)
    assert_ids_whole(lines, [row[0] for row in BOARD] + ["textkit/words.py", "add-word-count"])
    text = " ".join(words(lines))
    assert text.startswith(HEADLINE)  # wrapped, not cut
    assert "after add-cli" in text and "is held by add-word-count" in text
    assert text.count("running") == 2 and text.count("waiting") >= 3  # statuses kept
    if width < 80:  # the lesser columns gave way, and a dim line says which
        assert any("too narrow to show: " in line and "adapter" in line for line in lines)


def test_a_live_board_wide_enough_shows_every_column(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = drawn(monkeypatch, 160, partial(console.board_table, COLUMNS, BOARD, HEADLINE))
    assert lines[0] == HEADLINE
    assert lines[1].split() == [
        "task",
        "status",
        "phase",
        "adapter",
        "time",
        "doing",
        "/",
        "waiting",
        "for",
    ]
    assert not any("too narrow" in line for line in lines)
    assert any(
        line.rstrip().endswith("textkit/words.py is held by add-word-count") for line in lines
    )


@pytest.mark.parametrize("width", [40, 60])
def test_a_short_narrow_screen_folds_rows_by_the_lines_they_take(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    # Eight tasks waiting on long reasons: at this width each row folds onto several lines,
    # so eight rows of room would draw past the screen's foot, cutting the "… more" line.
    from orchestrator.cli.status.live_board import fitted, headline, rows_for
    from orchestrator.council import TaskLine

    reason = "src/textkit/words_and_more.py is held by add-word-count-and-friends"
    lines = [TaskLine(task_id=f"task-{n}", status="queued", detail=reason) for n in range(8)]
    height = 16
    shown = screen(monkeypatch, width)
    title = headline(lines)
    rows = fitted(lines, height, title)
    assert len(rows_for(lines, height)) == 8  # by count alone, all eight had room
    assert len(rows) < 8
    assert rows[-1][:2] == ("…", f"{8 - len(rows) + 1} more")  # the folded ones, counted
    shown.print(console.board_table(COLUMNS, rows, title))
    drawn_lines = lines_of(shown)
    assert len(drawn_lines) <= height - 1, "\n".join(drawn_lines)
    assert " ".join(words(drawn_lines)).count(reason) == len(rows) - 1  # none cut
