"""Tables drawn with rich (``console.print_table``, ``console.live_table``, the live board's
``console.board_table``): on a terminal a boxed table as wide as the screen, its key columns never
cut, the lesser ones folded or dropped (``table_layout`` chooses); a layout stacked row by row
when not even the key columns fit. Imported with rich, when a table is drawn: a command that
prints none (``run --json``) imports neither."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from orchestrator.cli import console
from orchestrator.cli.table_layout import Column, Layout, choose_columns, plain_lines, table_width

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

__all__ = ["board", "draw", "redrawn", "wrapping"]

_ECHO_ROOM = 3
_FOLD_FLOOR = 6  # the narrowest a folding column is made when not even the key columns fit


def draw(
    specs: Sequence[Column], cells: Sequence[Sequence[str]], title: str | None, *, wide: bool
) -> None:
    """A table on stdout (``console.print_table``), its cells never read as markup.

    On a terminal: a boxed table as wide as the terminal, its key columns never cut; lesser
    columns fold or are dropped, and a dim line after it says which (``--wide shows: ...``).
    ``wide`` shows every column whole, however wide that makes it. Anywhere else (a pipe, a
    file, a CI log), on a terminal too narrow for even the key columns, and for more than
    ``console.BOXED_ROWS`` rows (a box costs rich some 0.2 ms a row to draw, a plain line next to
    nothing, and past a screenful nobody reads it boxed): the plain layout, every cell whole
    (``table_layout``)."""
    from rich.console import Console
    from rich.text import Text

    stdout = console._stdout()
    if title is not None:  # wrapped between words on a terminal, so an id stays on one line
        stdout.print(Text(title, style="bold"), soft_wrap=not stdout.is_terminal)
    # The columns are chosen only for a box: the plain layout shows every one, whole.
    plain = not stdout.is_terminal or len(cells) > console.BOXED_ROWS
    layout = (
        None if plain else choose_columns(specs, cells, stdout.width, console._cells, wide=wide)
    )
    if layout is None or layout.plain:
        console.print_lines(
            "\n".join(plain_lines([c.header for c in specs], cells, console._cells))
        )
        return
    table = _boxed(specs, cells, layout, wide=wide)
    if wide:
        # Console.print never draws wider than the console: a console as wide as the table.
        width = max(stdout.width, table_width([layout.widths[i] for i in layout.kept]))
        Console(file=stdout.file, width=width, highlight=False, force_terminal=True).print(table)
    else:
        stdout.print(table)
    if layout.dropped:
        stdout.print(Text(f"--wide shows: {', '.join(layout.dropped)}", style="dim"))


def _boxed(
    columns: Sequence[Column],
    cells: Sequence[Sequence[str]],
    layout: Layout,
    *,
    wide: bool = False,
    space: int | None = None,
) -> Table:
    # No outer edge: two more columns for the cells, which matters at 80. Every column gets
    # a fixed width (its natural one; a folding column its share of what is left), so rich
    # does not measure every cell again: the layout did, once.
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False)
    width = console._stdout().width if space is None else space
    widths = _fixed_widths(columns, layout, width, wide=wide)
    for index, width in zip(layout.kept, widths, strict=True):
        column = columns[index]
        if (column.wraps and not wide) or column.key:  # a key one folds if rich narrows it
            table.add_column(column.header, overflow="fold", width=width)
        else:
            table.add_column(column.header, no_wrap=True, width=width)
    for row in cells:
        table.add_row(*(Text(row[index]) for index in layout.kept))
    return table


def _fixed_widths(
    columns: Sequence[Column], layout: Layout, space: int, *, wide: bool
) -> list[int]:
    """Each kept column's width: its natural one, but a folding column shares what the others
    leave of ``space`` (at least its narrowest, ``Layout.narrowest``), in order from the left.
    Should even that be too wide (a live table of key columns only), the folding columns give
    up their narrowest first, from the right, down to ``_FOLD_FLOOR``: a status folded inside a
    word rather than a task id or a branch."""
    natural = [layout.widths[index] for index in layout.kept]
    folding = [n for n, i in enumerate(layout.kept) if columns[i].wraps and not wide]
    if not folding or table_width(natural) <= space:
        return natural
    widths = list(natural)
    for n in folding:
        widths[n] = layout.narrowest(layout.kept[n])
    left = space - table_width(widths)
    for n in reversed(folding) if left < 0 else ():
        give = max(0, min(widths[n] - _FOLD_FLOOR, -left))
        widths[n] -= give
        left += give
    for n in folding:
        grow = max(0, min(natural[n] - widths[n], left))
        widths[n] += grow
        left -= grow
    return widths


def redrawn(
    columns: Sequence[Column | str], rows: Iterable[Sequence[object]], title: str | None
) -> RenderableType:
    """The summary's layout redrawn in place: its title wrapped between words above it."""
    specs = [Column.of(column) for column in columns]
    cells = [[str(cell) for cell in row] for row in rows]
    return _titled(title, _fitted(specs, cells, console._stdout().width))


def _fitted(
    specs: Sequence[Column], cells: Sequence[Sequence[str]], width: int, *, board: bool = False
) -> RenderableType:
    """A table ``width`` wide at most, for a live display: the lesser columns that do not fit
    are dropped, said in a dim line under it; when not even the key columns fit side by side,
    each row is stacked (``_stacked``): a redrawn display has no plain layout to fall back on."""
    from rich import box
    from rich.constrain import Constrain

    layout = choose_columns(specs, cells, width, console._cells)
    if layout.plain:
        return Constrain(_stacked(specs, cells), width)
    table = _boxed(specs, cells, layout, space=width)
    if board:
        table.box = box.SIMPLE_HEAD
    if layout.dropped:
        table.caption = f"too narrow to show: {', '.join(layout.dropped)}"
    return table


def _stacked(specs: Sequence[Column], cells: Sequence[Sequence[str]]) -> RenderableType:
    """Each row on lines of its own: its first two key columns (a task and its status), then
    each other key column as ``header: value``, indented; every line wrapped between words.
    The lesser columns are said dropped in one dim line."""
    from rich.console import Group
    from rich.padding import Padding

    keys = [i for i, column in enumerate(specs) if column.key]
    lines: list[RenderableType] = []
    for row in cells:
        lines.append(wrapping("  ".join(row[i] for i in keys[:2] if row[i].strip())))
        for i in keys[2:]:
            if row[i].strip():
                lines.append(Padding(wrapping(f"{specs[i].header}: {row[i]}"), (0, 0, 0, 2)))
    lesser = [i for i, column in enumerate(specs) if not column.key]
    if dropped := [specs[i].header for i in lesser if any(row[i].strip() for row in cells)]:
        lines.append(wrapping(f"too narrow to show: {', '.join(dropped)}", "dim"))
    return Group(*lines)


def wrapping(text: str, style: str = "") -> Text:
    """``text`` wrapped between words at the edge, never cut (a word wider than the screen
    folds)."""
    from rich.text import Text

    return Text(text, style=style, no_wrap=False, overflow="fold")


def _titled(title: str | None, table: RenderableType, width: int | None = None) -> RenderableType:
    """``table`` under ``title``, the title wrapped between words (never cut at the edge),
    ``width`` wide at most."""
    if title is None:
        return table
    from rich.console import Group
    from rich.constrain import Constrain

    text = wrapping(title, "bold")
    return Group(text if width is None else Constrain(text, width), table)


def board(
    columns: Sequence[Column | str], rows: Sequence[Sequence[object]], title: str | None
) -> RenderableType:
    """``console.board_table``."""
    specs = [Column.of(column) for column in columns]
    cells = [[str(cell) for cell in row] for row in rows]
    # Narrower than the screen by _ECHO_ROOM: the terminal echoes ``^C`` after the last line
    # drawn, and an echo that wraps shifts the drawing by a line the next redraw leaves behind.
    width = max(20, console._stdout().width - _ECHO_ROOM)
    return _titled(title, _fitted(specs, cells, width, board=True), width)
