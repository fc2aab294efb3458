"""The live view of ``council run`` on a terminal: every task, a line each where the screen is
wide enough, under a headline that counts them (``council: 3/7 done · 2 running · 1 waiting ·
1 queued``). Nothing on it is cut: on a narrow screen time, adapter and phase give way (a dim
line says so) and what a task does or waits for folds between words (``console``).

A running task shows its phase, adapter, time and the CLI's last message; a waiting one why it
waits (``after add-cli``, ``README.md is held by add-changelog``, ``parked until 14:03:10 on
claude``, ``lands after add-changelog (both change README.md)``); an ended one how it ended.
A task the collision radar finds overlapping another live session is marked ``! collides with
add-cli on README.md (hunks)`` after what it does; a running task whose session has services
(a run's ``services:``) shows them and their state after it too (``services: web ready, db
starting``).
When the terminal is too short for every task, ended tasks are folded into one line first,
then the queued ones, so what is happening stays on screen; the height counted is the one
drawn, rows folded onto more lines on a narrow screen included (``fitted``). A redraw costs
what changed since the last one and what it shows, never a line per task of the run: the
lines, their counts and which of them give way are kept by the scheduler's board book
(``scheduler.board_book``, ``Council.board_view``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import anyio

from orchestrator.cli import console
from orchestrator.council import BoardView, Council, TaskLine
from orchestrator.scheduler.board import ENDED
from orchestrator.scheduler.board_book import BoardBook, fold_rank

if TYPE_CHECKING:
    from orchestrator.cli.console.board import BoardLines

__all__ = ["COLUMNS", "Stopping", "fitted", "headline", "rows_for", "show_board"]

# The task and why it waits are what the board is for; time, adapter, phase give way first.
COLUMNS = (
    console.Column("task", key=True),
    console.Column("status", key=True),
    console.Column("phase", drop=1),
    console.Column("adapter", drop=2),
    console.Column("time", drop=3),
    # Never dropped, folded between words: a word of it may be an id (``after add-cli``).
    console.Column("doing / waiting for", key=True, wraps=True),
)
_REFRESH = 0.25
_CHROME = 8  # lines the headline, the table's borders and header and the shell prompt take

Views = Callable[[int], BoardView]  # the board as a screen of so many rows shows it


class Stopping:
    """What the user asked with Ctrl-C, for the headline."""

    def __init__(self) -> None:
        self.said = ""


def headline(lines: Sequence[TaskLine], stopping: str = "") -> str:
    """``council: 3/7 done · 2 running · 1 merging · 2 waiting · 1 queued · 1 failed``."""
    return _headline(Counter(line.kind for line in lines), len(lines), stopping)


def _headline(counted: Counter[str], total: int, stopping: str) -> str:
    kinds = Counter(counted)
    parts = [f"{kinds.pop('done', 0)}/{total} done"]
    for kind in ("running", "merging", "in_review", "waiting", "parked", "queued", *ENDED[1:]):
        if kinds.get(kind):
            parts.append(f"{kinds[kind]} {kind}")
    text = "council: " + " · ".join(parts)
    return f"{text} · {stopping}" if stopping else text


def rows_for(lines: Sequence[TaskLine], height: int) -> list[tuple[str, ...]]:
    """The table's rows for a screen ``height`` lines high (see the module doc)."""
    return _rows(_views(lines), height)


def _rows(views: Views, height: int) -> list[tuple[str, ...]]:
    # The lines that give way are chosen by the board's book, which goes over what it shows
    # and what changed, never every task (a run of 10,000 is drawn four times a second).
    view = views(max(3, height - _CHROME))
    rows = [_row(line) for line in view.lines]
    if view.folded:
        summary = ", ".join(f"{count} {kind}" for kind, count in sorted(view.folded.items()))
        rows.append(("…", f"{sum(view.folded.values())} more", "", "", "", summary))
    return rows


def fitted(lines: Sequence[TaskLine], height: int, title: str) -> list[tuple[str, ...]]:
    """``rows_for`` a screen ``height`` lines high, with as many rows left out as the folded
    ones take lines beyond one each: the board as drawn fits above the shell's line (or is
    three rows, the fewest it shows)."""
    return _fitted(_views(lines), height, title)


def _fitted(views: Views, height: int, title: str) -> list[tuple[str, ...]]:
    return _drawn(views, height, title)[0]


def _drawn(views: Views, height: int, title: str) -> tuple[list[tuple[str, ...]], BoardLines]:
    """``_fitted``'s rows and the board they draw, rendered once: the lines measured are the
    lines drawn."""
    from orchestrator.cli.console import board  # rich's drawing: a board drawn only

    room = height
    rows = _rows(views, room)
    lines = board.board_lines(COLUMNS, rows, title)
    while (over := lines.height - (height - 1)) > 0:
        room -= over
        fewer = _rows(views, room)
        if len(fewer) >= len(rows):
            break
        rows = fewer
        lines = board.board_lines(COLUMNS, rows, title)
    return rows, lines


async def show_board(council: Council, stopping: Stopping) -> None:
    """Redraw the board until cancelled (the run's end); on no terminal, nothing."""
    from orchestrator.cli.console import board

    with board.live_board() as draw:
        if draw is None:
            return
        while True:
            height = console.height()
            view = council.board_view(max(3, height - _CHROME))
            title = _headline(view.kinds, view.total, stopping.said)
            draw(_drawn(council.board_view, height, title)[1])
            await anyio.sleep(_REFRESH)


def _views(lines: Sequence[TaskLine]) -> Views:
    book = BoardBook.of_lines(lines)
    return book.view


def _kind(line: TaskLine) -> str:
    return line.kind


def _rank(line: TaskLine) -> str | int:
    return fold_rank(line.kind)


def _row(line: TaskLine) -> tuple[str, ...]:
    elapsed = f"{line.elapsed:.0f}s" if line.elapsed is not None else ""
    return (
        line.task_id,
        line.kind,
        line.phase or "",
        line.adapter or "",
        elapsed,
        _detail(line),
    )


def _detail(line: TaskLine) -> str:
    said = [line.detail] if line.detail else []
    if line.note:
        said.append(line.note)
    if line.collision:
        said.append(f"! {line.collision}")
    return " · ".join(said)
