"""Which columns of a table fit a terminal, and the plain layout for anything else.

A table's columns are of two kinds. A **key** column holds what people copy into the next
command (task, session, checkpoint and commit ids, branch names, paths) or what a row is
about (a task's status): it is never cut and never dropped. The others are **lesser**. A column
that ``wraps`` (a key one too: a long status, what a task waits for) is folded onto more lines
between its words, never narrower than its longest word (a word may be an id: ``after
add-word-count``, ``textkit/words.py``) nor than ``FOLDED``; when even that is not enough,
lesser columns are dropped: first those blank in every row, then the highest ``drop`` first
(rightmost first among equals), and the caller says which (``Layout.dropped``, blank ones
aside) so the user knows what ``--wide`` would add.

When the key columns alone do not fit, or the output is not a terminal (a pipe, a file, a CI
log, where nothing has a width), a table is printed in the plain layout: a header line and one
line per row, columns two spaces apart, every cell whole. Nothing here draws anything; widths
are measured by the caller's ``measure`` (terminal cells, not characters).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "FOLDED",
    "Column",
    "Layout",
    "choose_columns",
    "plain_lines",
    "table_width",
]

_BORDER = 3  # a column's share of a boxed table: one space each side and a rule
FOLDED = 16  # the narrowest a wrapping column is made before it is dropped instead
_GAP = "  "  # between the columns of the plain layout


@dataclass(frozen=True)
class Column:
    """One column of a table (see the module doc for ``key``, ``wraps`` and ``drop``)."""

    header: str
    key: bool = False
    wraps: bool = False
    drop: int = 0

    @classmethod
    def of(cls, column: Column | str) -> Column:
        """A bare header is a lesser column that wraps (how tables were before columns had
        kinds)."""
        return column if isinstance(column, Column) else cls(column, wraps=True)


@dataclass(frozen=True)
class Layout:
    """What to draw: the indexes of the columns kept (in their order), the headers of those
    dropped, and each kept column's natural width; ``plain`` when even the key columns do not
    fit the width."""

    kept: tuple[int, ...]
    dropped: tuple[str, ...]
    widths: tuple[int, ...]
    plain: bool = False
    least: tuple[int, ...] = ()  # each column's narrowest (``_least_widths``); natural if empty

    def narrowest(self, index: int) -> int:
        """The narrowest column ``index`` may be drawn without cutting a word."""
        return self.least[index] if self.least else self.widths[index]


def _natural_widths(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], measure: Callable[[str], int]
) -> list[int]:
    """The width each column needs to show its header and every cell on one line each."""
    widths = [measure(column.header) for column in columns]
    for row in rows:
        for index, cell in enumerate(row):
            for line in cell.splitlines() or [""]:
                widths[index] = max(widths[index], measure(line))
    return widths


def _least_widths(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    widths: Sequence[int],
    measure: Callable[[str], int],
) -> list[int]:
    """Each column's narrowest: its natural width, but a wrapping one's longest word (its
    header's too) or ``FOLDED``, whichever is wider, when that is narrower."""
    least = list(widths)
    for index, column in enumerate(columns):
        if column.wraps:
            cells = [column.header, *(row[index] for row in rows)]
            word = max((measure(w) for cell in cells for w in cell.split()), default=0)
            least[index] = min(widths[index], max(FOLDED, word))
    return least


def choose_columns(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    space: int,
    measure: Callable[[str], int],
    *,
    wide: bool = False,
) -> Layout:
    """The columns of a boxed table ``space`` cells wide (every one when ``wide``)."""
    widths = _natural_widths(columns, rows, measure)
    least = widths if wide else _least_widths(columns, rows, widths, measure)
    kept = list(range(len(columns)))

    def needed(indexes: Sequence[int]) -> int:
        return table_width([least[i] for i in indexes])

    # A column blank in every row says nothing: it goes first, and unmentioned.
    blank = {i for i in kept if all(not row[i].strip() for row in rows)}
    dropped: list[int] = []
    if not wide:
        lesser = [i for i in kept if not columns[i].key]
        for index in sorted(lesser, key=lambda i: (i not in blank, -columns[i].drop, -i)):
            if needed(kept) <= space:
                break
            kept.remove(index)
            dropped.append(index)
    if not wide and needed(kept) > space:
        # Not even the ids fit: the plain layout shows everything, lines as long as they are.
        return Layout(tuple(range(len(columns))), (), tuple(widths), True, tuple(least))
    return Layout(
        kept=tuple(kept),
        dropped=tuple(columns[i].header for i in sorted(dropped) if i not in blank),
        widths=tuple(widths),
        least=tuple(least),
    )


def table_width(widths: Sequence[int]) -> int:
    """The width of a boxed table whose columns are ``widths`` wide (drawn without its outer
    edge: each column takes its width, a space each side and a rule but the last)."""
    return sum(width + _BORDER for width in widths) - 1


def plain_lines(
    headers: Sequence[str], rows: Sequence[Sequence[str]], measure: Callable[[str], int]
) -> list[str]:
    """A header line and a line per row, columns aligned, every cell whole (a cell's own line
    breaks become spaces so that a row stays one line)."""
    cells = [[" ".join(cell.split("\n")) for cell in row] for row in [headers, *rows]]
    measured = [[measure(cell) for cell in row] for row in cells]  # each cell once
    widths = list(measured[0])
    for sizes in measured[1:]:
        for index, size in enumerate(sizes):
            widths[index] = max(widths[index], size)
    return [
        _GAP.join(
            [
                cell + " " * (widths[i] - size)
                for i, (cell, size) in enumerate(zip(row, sizes, strict=True))
            ]
        ).rstrip()
        for row, sizes in zip(cells, measured, strict=True)
    ]
