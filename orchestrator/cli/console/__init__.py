"""Terminal output for the CLI; the only module that imports rich.

Data goes to stdout and diagnostics to stderr, so ``council ... --json | jq`` keeps working when
something fails. Lines are never wrapped: an error about one problem stays one line that tools
(editors, grep, CI annotations) can read as ``file:line: field: message``.

A reader that goes away (``council demo | head -1``, a ``| cat`` the Ctrl-C ended) is a broken
pipe on the next write: every print here catches it, points that stream at ``/dev/null`` (so no
later write, nor the flush at exit, fails again) and calls what ``on_output_closed`` registered
once (a run stops there: ``run_cmd``); ``output_closed`` says it happened (exit 141).

rich is imported when something is drawn or styled, not with this module: a plain line, JSON
(``run --json``) and the questions about the terminal need none of it (some 15 ms of every such
command's start). ``stdout`` and ``stderr``, rich's consoles, are made on first use.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from typing import IO, TYPE_CHECKING, cast

from orchestrator.cli.table_layout import (
    Column,
    Layout,
    choose_columns,
    plain_lines,
    table_width,
)

if TYPE_CHECKING:
    # Imported where they are drawn: a plain table (piped, or a long one) and a line of
    # progress need neither (some 6 ms of ``council status``'s CPU).
    from rich.console import Console, RenderableType
    from rich.live import Live
    from rich.status import Status
    from rich.table import Table
    from rich.text import Text

__all__ = [
    "Column",
    "WarningLines",
    "board_table",
    "height",
    "is_terminal",
    "live_table",
    "on_output_closed",
    "output_closed",
    "print_checklist",
    "print_error",
    "print_lines",
    "print_plain",
    "print_progress",
    "print_success",
    "print_table",
    "print_warning",
    "same_file_for_both",
    "show_log_warnings",
    "shown_live",
    "skip_warnings_for",
    "status",
    "stderr",
    "stdout",
    "stdout_gone",
]

# rich's consoles, made on first use (``__getattr__``): ``console.stdout``, ``console.stderr``.
# Without a file argument rich looks up sys.stdout / sys.stderr at each write, so output
# follows any redirection made after import (test runners do this).
stdout: Console
stderr: Console
BOXED_ROWS = 200  # past this many rows a table is printed in the plain layout


def __getattr__(name: str) -> Console:
    if name not in ("stdout", "stderr"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rich.console import Console

    made = Console(stderr=name == "stderr", highlight=False, soft_wrap=True)
    globals()[name] = made  # (a test may put another in its place)
    return made


def _stdout() -> Console:
    made: Console | None = globals().get("stdout")
    return made if made is not None else __getattr__("stdout")


def _stderr() -> Console:
    made: Console | None = globals().get("stderr")
    return made if made is not None else __getattr__("stderr")


def _file(err: bool = False) -> IO[str]:
    """The file a console writes to (``Console.file``), without making one: with no console
    made yet, ``sys.stdout`` or ``sys.stderr`` (what a console without a file writes to)."""
    made: Console | None = globals().get("stderr" if err else "stdout")
    if made is not None:
        return made.file
    file = sys.stderr if err else sys.stdout
    return file if file is not None else (_stderr() if err else _stdout()).file


# Opened once, with the module: a broken pipe is found while a run's event loop prints, which
# must not open files.
_DEVNULL = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
_closed: list[bool] = []  # a reader went away (once is enough)
_on_closed: list[Callable[[], None]] = []


def output_closed() -> bool:
    """A reader of stdout or stderr went away (a broken pipe) while this process wrote."""
    return bool(_closed)


def on_output_closed(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` once a reader goes away (at once if one has already); what it returns
    forgets the callback."""
    _on_closed.append(callback)
    if _closed:
        callback()
    return partial(_forget, callback)


def _forget(callback: Callable[[], None]) -> None:
    with suppress(ValueError):
        _on_closed.remove(callback)


@contextmanager
def _writing(target: Console | IO[str]) -> Iterator[None]:
    """Writes to ``target``; a broken pipe there ends its output, not the command."""
    try:
        yield
    except BrokenPipeError:
        made = sys.modules.get("rich.console")  # a console is one of rich's, imported then
        drawn = made is not None and isinstance(target, made.Console)
        _reader_gone(cast("Console", target).file if drawn else cast("IO[str]", target))


def stdout_gone() -> None:
    """A broken pipe no print here caught (another library's write to stdout): as if one had."""
    _reader_gone(_file())


def _reader_gone(file: IO[str]) -> None:
    with suppress(OSError, ValueError, AttributeError):  # not a real file (a test's capture)
        os.dup2(_DEVNULL, file.fileno())
    if _closed:
        return
    _closed.append(True)
    for callback in list(_on_closed):
        callback()


def is_terminal() -> bool:
    """Standard output is a terminal (so tables may be redrawn in place). rich's answer; but
    where it can only be no (no console made yet, neither ``TTY_COMPATIBLE`` nor
    ``FORCE_COLOR`` set, and not a tty: rich says yes only for one of those), said without it."""
    if "stdout" not in globals() and not {"TTY_COMPATIBLE", "FORCE_COLOR"} & os.environ.keys():
        isatty = getattr(sys.stdout, "isatty", None)
        try:
            if isatty is None or not isatty():
                return False
        except ValueError:  # closed (rich says no too)
            return False
    return _stdout().is_terminal


_live: list[Live] = []  # the live display drawn now, if any
_ECHO_ROOM = 3
_FOLD_FLOOR = 6  # the narrowest a folding column is made when not even the key columns fit


def height() -> int:
    """Lines of the terminal standard output is (24 when it is not one)."""
    return _stdout().size.height


def _diagnostics() -> Console:
    # While a live display is drawn, a line written to stderr lands inside the drawing and
    # the next redraw erases it (rich writes past its own stderr redirection). Printed
    # through the display's console, it goes above the drawing and stays.
    return _stdout() if _live and _stderr().is_terminal else _stderr()


def print_error(message: str) -> None:
    """Each line of ``message`` in red on stderr, exactly as given (no markup, no wrapping)."""
    from rich.text import Text

    target = _diagnostics()
    with _writing(target):
        for line in message.splitlines() or [""]:
            target.print(Text(line, style="bold red"))


def print_warning(message: str) -> None:
    """Each line of ``message`` in yellow on stderr, exactly as given."""
    from rich.text import Text

    target = _diagnostics()
    with _writing(target):
        for line in message.splitlines() or [""]:
            target.print(Text(line, style="yellow"))


def print_success(message: str) -> None:
    """A green confirmation line on stdout."""
    from rich.text import Text

    out = _stdout()
    with _writing(out):
        out.print(Text(message, style="green"))


def print_progress(message: str) -> None:
    """A dim progress line on stderr (stdout stays data for ``--json``)."""
    from rich.text import Text

    target = _diagnostics()
    with _writing(target):
        target.print(Text(message, style="dim"))


class WarningLines(logging.Handler):
    """Log records at warning level and above, as one line each on stderr: ``warning: `` (or
    ``error: ``) and the message, never a logger name or a traceback (an exception adds its
    own one line). Without it Python's last-resort handler prints bare messages."""

    said_elsewhere: frozenset[str] = frozenset()  # event types another line already says

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "council_event", None) in self.said_elsewhere:
            return
        try:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text = f"{text}: {record.exc_info[1]}"
            if record.levelno >= logging.ERROR:
                print_error(f"error: {text}")
            else:
                print_warning(f"warning: {text}")
        except Exception:
            self.handleError(record)


def same_file_for_both() -> bool:
    """stdout and stderr are the same file (``> log 2>&1``, nohup): what one says, the
    other need not."""
    try:
        return os.path.samestat(os.fstat(_file().fileno()), os.fstat(_file(True).fileno()))
    except (OSError, ValueError, AttributeError):  # not real files (a test's capture)
        return False


def skip_warnings_for(event_types: Iterable[str]) -> None:
    """Warnings about events of ``event_types`` are said by the caller in lines of its own."""
    WarningLines.said_elsewhere = frozenset(event_types)


def show_log_warnings() -> None:
    """Route the library's warnings to ``WarningLines`` (once per process)."""
    root = logging.getLogger()
    if not any(isinstance(handler, WarningLines) for handler in root.handlers):
        root.addHandler(WarningLines(logging.WARNING))


def print_plain(line: str, *, to_stderr: bool = False) -> None:
    """One line as it is, flushed at once (a log line a pipe or a file shows right away)."""
    target = _file(to_stderr)
    with _writing(target):
        target.write(line + "\n")
        target.flush()


def print_lines(text: str) -> None:
    """Plain text on stdout, byte for byte (for JSON and other machine-read output)."""
    target = _file()
    with _writing(target):
        target.write(text if text.endswith("\n") else text + "\n")
        target.flush()


def _cells(text: str) -> int:
    """How many terminal cells ``text`` takes (rich's ``cell_len``): printable ASCII, what
    table cells almost always are, one cell a character without asking rich."""
    if text.isascii() and text.isprintable():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def print_table(
    columns: Sequence[Column | str],
    rows: Iterable[Sequence[object]],
    title: str | None = None,
    *,
    wide: bool = False,
) -> None:
    """A table on stdout (``_print_table``)."""
    with _writing(_stdout()):
        _print_table(columns, rows, title, wide=wide)


def _print_table(
    columns: Sequence[Column | str],
    rows: Iterable[Sequence[object]],
    title: str | None = None,
    *,
    wide: bool = False,
) -> None:
    """A table on stdout; cells are shown with ``str`` and never read as markup.

    On a terminal: a boxed table as wide as the terminal, its key columns never cut; lesser
    columns fold or are dropped, and a dim line after it says which (``--wide shows: ...``).
    ``wide`` shows every column whole, however wide that makes it. Anywhere else (a pipe, a
    file, a CI log), on a terminal too narrow for even the key columns, and for more than
    ``BOXED_ROWS`` rows (a box costs rich some 0.2 ms a row to draw, a plain line next to
    nothing, and past a screenful nobody reads it boxed): the plain layout, every cell whole
    (``table_layout``)."""
    from rich.console import Console
    from rich.text import Text

    stdout = _stdout()
    specs = [Column.of(column) for column in columns]
    cells = [[str(cell) for cell in row] for row in rows]
    if title is not None:  # wrapped between words on a terminal, so an id stays on one line
        stdout.print(Text(title, style="bold"), soft_wrap=not stdout.is_terminal)
    # The columns are chosen only for a box: the plain layout shows every one, whole.
    plain = not stdout.is_terminal or len(cells) > BOXED_ROWS
    layout = None if plain else choose_columns(specs, cells, stdout.width, _cells, wide=wide)
    if layout is None or layout.plain:
        print_lines("\n".join(plain_lines([c.header for c in specs], cells, _cells)))
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
    width = _stdout().width if space is None else space
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


def _table(
    columns: Sequence[Column | str], rows: Iterable[Sequence[object]], title: str | None
) -> RenderableType:
    """The summary's layout redrawn in place: its title wrapped between words above it."""
    specs = [Column.of(column) for column in columns]
    cells = [[str(cell) for cell in row] for row in rows]
    return _titled(title, _fitted(specs, cells, _stdout().width))


def _fitted(
    specs: Sequence[Column], cells: Sequence[Sequence[str]], width: int, *, board: bool = False
) -> RenderableType:
    """A table ``width`` wide at most, for a live display: the lesser columns that do not fit
    are dropped, said in a dim line under it; when not even the key columns fit side by side,
    each row is stacked (``_stacked``): a redrawn display has no plain layout to fall back on."""
    from rich import box
    from rich.constrain import Constrain

    layout = choose_columns(specs, cells, width, _cells)
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
        lines.append(_wrapping("  ".join(row[i] for i in keys[:2] if row[i].strip())))
        for i in keys[2:]:
            if row[i].strip():
                lines.append(Padding(_wrapping(f"{specs[i].header}: {row[i]}"), (0, 0, 0, 2)))
    lesser = [i for i, column in enumerate(specs) if not column.key]
    if dropped := [specs[i].header for i in lesser if any(row[i].strip() for row in cells)]:
        lines.append(_wrapping(f"too narrow to show: {', '.join(dropped)}", "dim"))
    return Group(*lines)


def _wrapping(text: str, style: str = "") -> Text:
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

    text = _wrapping(title, "bold")
    return Group(text if width is None else Constrain(text, width), table)


@contextmanager
def live_table(
    columns: Sequence[Column | str],
) -> Iterator[Callable[[Iterable[Sequence[object]], str | None], None]]:
    """A table redrawn in place on a terminal while the block runs; yields ``update(rows,
    title)``. It disappears at the end (the caller prints a summary), and on anything but a
    terminal nothing is drawn, so piped output stays clean. The summary's layout (``_table``):
    it cuts neither an id nor its headline. (A run's live board: ``console.board``.)"""
    if not is_terminal():
        yield lambda rows, title: None
        return
    from rich.live import Live

    draw = partial(_table, columns)
    with Live(draw([], None), console=_stdout(), transient=True) as live, shown_live(live):

        def update(rows: Iterable[Sequence[object]], title: str | None) -> None:
            live.update(draw(rows, title))

        yield update


@contextmanager
def shown_live(live: Live) -> Iterator[None]:
    """``live`` the display drawn now while the block runs (what is printed goes above it)."""
    _live.append(live)
    try:
        yield
    finally:
        _live.remove(live)


def board_table(
    columns: Sequence[Column | str], rows: Iterable[Sequence[object]], title: str | None
) -> RenderableType:
    """A live board: the headline wrapped between words, then the rows; what a row says folds
    onto more lines between words rather than losing one (``after add-cli`` was ``after …``),
    and the lesser columns that do not fit are dropped, said in a dim line (``_fitted``)."""
    specs = [Column.of(column) for column in columns]
    cells = [[str(cell) for cell in row] for row in rows]
    # Narrower than the screen by _ECHO_ROOM: the terminal echoes ``^C`` after the last line
    # drawn, and an echo that wraps shifts the drawing by a line the next redraw leaves behind.
    width = max(20, _stdout().width - _ECHO_ROOM)
    return _titled(title, _fitted(specs, cells, width, board=True), width)


@contextmanager
def status() -> Iterator[Callable[[str], None]]:
    """A status line on stderr while the block runs; yields ``say(message)``, which replaces
    it. On a terminal it is one line with a spinner that disappears at the end; elsewhere each
    message is a progress line, so logs keep what happened."""
    stderr = _stderr()
    if not stderr.is_terminal:
        yield print_progress
        return
    from rich.text import Text

    shown: list[Status] = []

    def say(message: str) -> None:
        if shown:
            shown[0].update(Text(message, style="dim"))
        else:
            shown.append(stderr.status(Text(message, style="dim")))
            shown[0].start()

    try:
        yield say
    finally:
        for line in shown:
            line.stop()


def print_checklist(rows: Sequence[tuple[str, str, str, str, str | None]], summary: str) -> None:
    """A checklist on stdout (``checklist.draw``)."""
    from orchestrator.cli.console.checklist import draw

    with _writing(_stdout()):
        draw(rows, summary)


def print_help(usage: str, text: str, boxed: Sequence[tuple[str, Sequence[Sequence[str]]]]) -> None:
    """A group's help as typer draws it: usage, ``text``'s first line, each panel (title, rows:
    a name first, a help text last), then ``text``'s other lines (its epilog)."""
    from rich.padding import Padding
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    stdout = _stdout()
    head, _, epilog = text.partition("\n")
    lines = ["", Text.assemble(" ", ("Usage: ", "yellow"), (usage, "bold")), "", head, ""]
    with _writing(stdout):
        for line in lines:
            stdout.print(Padding(_wrapping(line), (0, 1)) if isinstance(line, str) else line)
        for title, rows in boxed:
            grid = Table.grid(padding=(0, 1))
            for column in range(len(rows[0])):
                last = column == len(rows[0]) - 1
                grid.add_column(style="" if last else ("bold green", "bold cyan")[column == 0])
            for row in rows:
                grid.add_row(*row[:-1], _wrapping(row[-1]))
            stdout.print(Panel(grid, title=title, title_align="left", border_style="dim"))
        stdout.print(Padding(_wrapping(f"\n{epilog}\n"), (0, 1)) if epilog else "")
