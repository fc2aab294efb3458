"""``council status``'s summary as it was printed, kept with the report it was printed from, so a
look while nothing changed prints it again without reading the report back.

Reading a kept report back costs pydantic, the report's models and their validation: most of
what ``status`` of a finished run of 1,024 tasks costs, and all of it spent on a table that is
the same on every look. So whoever keeps a report for ``status`` (``run.reports.report_cache``,
``keep``'s ``view``) keeps beside it what ``summary.print_summary`` prints of it (``view_of``):
the table's columns, its rows (commit ids whole: ``--wide`` or not is chosen when it is
drawn), its title and the lines after it, as plain JSON values. ``print_view`` draws them with
the same calls ``print_summary`` makes, so the output is the same byte for byte.

A summary that depends on when or where it is drawn is not kept (``view_of`` is None): a team
run's leases and workstations (their age), a parked task (its park's end in the local time
zone). The report is then read back as before.

The kept file is read as untrusted (``checked``): a view of another format, another set of
columns, a row of another length or a cell of another type than the summary makes is no view,
and the report is read back and validated as before. Nothing in it runs; its strings are drawn
as the report's own are, never read as markup. Light on purpose: rich (the console) and the
standard library only, never pydantic or the report's models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from orchestrator.cli import console
from orchestrator.cli.status.summary_columns import SERVICES, SHORT_COMMIT, SUMMARY

if TYPE_CHECKING:
    from orchestrator.run.reports.report import RunReport

__all__ = ["checked", "print_made", "print_view", "view_of"]

_FORMAT = 1
# The tables a kept view may have: the summary's columns, with the services' when a task has
# services. A team run's (``held by``) is never kept.
_TABLES = {
    tuple(c.header for c in SUMMARY): SUMMARY,
    tuple(c.header for c in (*SUMMARY, SERVICES)): (*SUMMARY, SERVICES),
}
_ATTEMPTS = 3  # the one cell of a row that is a number
_MERGED = 5  # the commit id, cut when drawn unless --wide


def view_of(report: RunReport) -> dict[str, object] | None:
    """What ``print_summary`` prints of ``report``, as plain JSON values (module doc); None
    when that depends on when or where it is drawn."""
    from orchestrator.cli.status.summary import spend_lines, summary_table
    from orchestrator.models import TaskStatus

    if report.team is not None or any(
        task.status == TaskStatus.PARKED and task.parked_until is not None for task in report.tasks
    ):
        return None
    columns, rows, title = summary_table(report, wide=True)
    return {
        "format": _FORMAT,
        "columns": [column.header for column in columns],
        "rows": [list(row) for row in rows],
        "title": title,
        "lines": spend_lines(report),
    }


def checked(
    view: object,
) -> tuple[tuple[console.Column, ...], list[list[str | int]], str, list[str]] | None:
    """A kept view's columns, rows, title and lines, if it is one as ``view_of`` makes them;
    else None (module doc)."""
    if not isinstance(view, Mapping) or view.get("format") != _FORMAT:
        return None
    names, rows, title, lines = (view.get(k) for k in ("columns", "rows", "title", "lines"))
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        return None
    columns = _TABLES.get(tuple(names))
    if columns is None or not isinstance(title, str) or not _strings(lines):
        return None
    if not isinstance(rows, list) or not all(_row(row, len(columns)) for row in rows):
        return None
    return columns, rows, title, lines  # type: ignore[return-value]  # checked just above


def _strings(values: object) -> bool:
    return isinstance(values, list) and all(isinstance(value, str) for value in values)


def _row(row: object, width: int) -> bool:
    """A row of the summary: its attempts a number, every other cell a string."""
    if not isinstance(row, list) or len(row) != width:
        return False
    return all(
        type(cell) is int if n == _ATTEMPTS else isinstance(cell, str) for n, cell in enumerate(row)
    )


def print_view(view: object, wide: bool = False) -> bool:
    """Draw a kept view as ``print_summary`` draws its report; False (nothing drawn) when it is
    not one (``checked``)."""
    found = checked(view)
    if found is None:
        return False
    _draw(*found, wide)
    return True


def print_made(view: Mapping[str, object], wide: bool = False) -> bool:
    """Draw a view ``view_of`` has just made in this process (not read back: nothing to check)
    as ``print_view`` draws a kept one; False when it has columns no kept view has."""
    columns = _TABLES.get(tuple(view["columns"]))  # type: ignore[arg-type]  # view_of's
    if columns is None:
        return False
    rows, title, lines = view["rows"], view["title"], view["lines"]
    _draw(columns, rows, title, lines, wide)  # type: ignore[arg-type]  # view_of's own values
    return True


def _draw(
    columns: tuple[console.Column, ...],
    rows: list[list[str | int]],
    title: str,
    lines: list[str],
    wide: bool,
) -> None:
    if not wide:
        rows = [_short(row) for row in rows]
    console.print_table(columns, rows, title=title, wide=wide)
    for line in lines:
        console.print_lines(line)


def _short(row: Sequence[str | int]) -> list[str | int]:
    """The row with its commit id cut as ``summary`` cuts it (``-``, none, stays whole)."""
    cells = list(row)
    cells[_MERGED] = str(cells[_MERGED])[:SHORT_COMMIT]  # a string (checked)
    return cells
