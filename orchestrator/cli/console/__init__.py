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

from orchestrator.cli.table_layout import Column

if TYPE_CHECKING:
    # Imported where they are drawn: a plain table (piped, or a long one) and a line of
    # progress need neither (some 6 ms of ``council status``'s CPU).
    from rich.console import Console, RenderableType
    from rich.live import Live
    from rich.status import Status

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
    """A table on stdout; cells are shown with ``str``, never read as markup (``tables.draw``:
    boxed on a terminal, key columns never cut; the plain layout elsewhere)."""
    from orchestrator.cli.console import tables

    specs = [Column.of(column) for column in columns]
    cells = [[str(cell) for cell in row] for row in rows]
    with _writing(_stdout()):
        tables.draw(specs, cells, title, wide=wide)


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

    from orchestrator.cli.console import tables

    draw = partial(tables.redrawn, columns)
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
    and the lesser columns that do not fit are dropped, said in a dim line (``tables``)."""
    from orchestrator.cli.console import tables

    return tables.board(columns, list(rows), title)


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

    from orchestrator.cli.console.tables import wrapping as _wrapping

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
