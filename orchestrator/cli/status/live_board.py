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
drawn, rows folded onto more lines on a narrow screen included (``fitted``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import anyio

from orchestrator.cli import console
from orchestrator.council import Council, TaskLine

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
_ENDED = ("done", "failed", "conflict", "cancelled")
# Which lines go first when the screen is short: the lower, the longer it stays shown.
_KEEP = {"running": 0, "merging": 0, "in_review": 1, "waiting": 1, "parked": 1, "queued": 2}
_CHROME = 8  # lines the headline, the table's borders and header and the shell prompt take


class Stopping:
    """What the user asked with Ctrl-C, for the headline."""

    def __init__(self) -> None:
        self.said = ""


def headline(lines: Sequence[TaskLine], stopping: str = "") -> str:
    """``council: 3/7 done · 2 running · 1 merging · 2 waiting · 1 queued · 1 failed``."""
    kinds = Counter(_kind(line) for line in lines)
    parts = [f"{kinds.pop('done', 0)}/{len(lines)} done"]
    for kind in ("running", "merging", "in_review", "waiting", "parked", "queued", *_ENDED[1:]):
        if kinds.get(kind):
            parts.append(f"{kinds[kind]} {kind}")
    text = "council: " + " · ".join(parts)
    return f"{text} · {stopping}" if stopping else text


def rows_for(lines: Sequence[TaskLine], height: int) -> list[tuple[str, ...]]:
    """The table's rows for a screen ``height`` lines high (see the module doc)."""
    room = max(3, height - _CHROME)
    if len(lines) <= room:
        return [_row(line) for line in lines]
    # How many of each rank give way, first ones first (one pass: a run of 10,000 tasks is
    # drawn four times a second), leaving room for the line that counts them.
    ranks = [_rank(line) for line in lines]
    by_rank = Counter(ranks)
    left, quota = len(lines), Counter[str | int]()
    for rank in ("ended", 2, 1):
        if left + 1 <= room:
            break
        quota[rank] = min(by_rank[rank], left + 1 - room)
        left -= quota[rank]
    shown: list[TaskLine] = []
    folded: Counter[str] = Counter()
    for line, rank in zip(lines, ranks, strict=True):
        if quota[rank] > 0:
            quota[rank] -= 1
            folded[_kind(line)] += 1
        else:
            shown.append(line)
    rows = [_row(line) for line in shown]
    if folded:
        summary = ", ".join(f"{count} {kind}" for kind, count in sorted(folded.items()))
        rows.append(("…", f"{sum(folded.values())} more", "", "", "", summary))
    return rows


def fitted(lines: Sequence[TaskLine], height: int, title: str) -> list[tuple[str, ...]]:
    """``rows_for`` a screen ``height`` lines high, with as many rows left out as the folded
    ones take lines beyond one each: the board as drawn fits above the shell's line (or is
    three rows, the fewest it shows)."""
    room = height
    rows = rows_for(lines, room)
    while (over := console.board_height(COLUMNS, rows, title) - (height - 1)) > 0:
        room -= over
        fewer = rows_for(lines, room)
        if len(fewer) >= len(rows):
            break
        rows = fewer
    return rows


async def show_board(council: Council, stopping: Stopping) -> None:
    """Redraw the board until cancelled (the run's end)."""
    with console.live_table(COLUMNS, board=True) as update:
        while True:
            lines = council.board()
            title = headline(lines, stopping.said)
            update(fitted(lines, console.height(), title), title)
            await anyio.sleep(_REFRESH)


def _kind(line: TaskLine) -> str:
    if line.status in ("queued", "parked") and line.detail:
        return "parked" if line.status == "parked" else "waiting"
    return line.status


def _rank(line: TaskLine) -> str | int:
    kind = _kind(line)
    return "ended" if kind in _ENDED else _KEEP.get(kind, 0)


def _row(line: TaskLine) -> tuple[str, ...]:
    elapsed = f"{line.elapsed:.0f}s" if line.elapsed is not None else ""
    return (
        line.task_id,
        _kind(line),
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
