"""A run's live board on a terminal, rendered once a redraw: ``board_lines`` renders the board
(``console.board_table``) into the lines the screen gets, so the height a caller measures to fit
the board is that of the lines drawn, not of a second rendering; ``live_board`` draws them in
place, only when they differ from those on the screen, with no refresh thread of rich's redrawing
meanwhile, and renders nothing when standard output is no terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.segment import Segment

from orchestrator.cli import console
from orchestrator.cli.table_layout import Column

__all__ = ["BoardLines", "board_lines", "live_board"]


class BoardLines:
    """A live board rendered once, as drawn on this terminal (``board_lines``): its height is
    measured from the lines the screen gets, and the screen gets those lines, not a second
    rendering of the table."""

    def __init__(self, lines: list[list[Segment]]) -> None:
        self._lines = lines

    @property
    def height(self) -> int:
        return len(self._lines)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BoardLines) and other._lines == self._lines

    __hash__ = None  # type: ignore[assignment]  # compared, never a key

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        new_line = Segment.line()
        for line in self._lines:
            yield from line
            yield new_line


def board_lines(
    columns: Sequence[Column | str], rows: Iterable[Sequence[object]], title: str | None
) -> BoardLines:
    """A live board of ``rows`` rendered for this terminal, its rows folded as drawn (its
    ``height`` the lines it takes)."""
    return BoardLines(
        console.stdout.render_lines(console.board_table(columns, rows, title), pad=False)
    )


@contextmanager
def live_board() -> Iterator[Callable[[BoardLines], None] | None]:
    """The live board drawn in place while the block runs: yields ``draw(lines)``, which
    redraws only when the lines differ from those on the screen (no refresh thread redraws
    it meanwhile), or None when standard output is no terminal (nothing is drawn, so nothing
    need be rendered). It disappears at the end, as ``live_table``'s does."""
    if not console.stdout.is_terminal:
        yield None
        return
    shown: list[BoardLines] = [BoardLines([])]
    live = Live(shown[0], console=console.stdout, transient=True, auto_refresh=False)
    with live, console.shown_live(live):

        def draw(lines: BoardLines) -> None:
            if lines != shown[0]:
                shown[0] = lines
                live.update(lines, refresh=True)

        yield draw
