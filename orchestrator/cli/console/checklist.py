"""The doctor's checklist (``council doctor``) as people read it, drawn for
``console.print_checklist``: imported by it alone, so no other command pays for it."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from orchestrator.cli import console

__all__ = ["draw"]

_MARKS = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "bold red")}


def draw(rows: Sequence[tuple[str, str, str, str, str | None]], summary: str) -> None:
    """Rows of (section, verdict ok|warn|fail, name, detail, fix) on stdout, a fix on its own
    line under its row, then ``summary`` (red when a row failed). On a terminal: a title per
    section, a coloured mark per row, names in a column; elsewhere one plain line per row
    (``FAIL name: detail``) that grep and CI logs keep whole. Nothing is cut: a long line
    wraps."""
    if not console.stdout.is_terminal:
        for _, verdict, name, detail, fix in rows:
            console.print_plain(f"{verdict.upper():<4} {name}: {detail}")
            if fix:
                console.print_plain(f"     fix: {fix}")
        console.print_plain(summary)
        return
    width = min(max((len(row[2]) for row in rows), default=0), 24)
    section = None
    for title, verdict, name, detail, fix in rows:
        if title != section:
            console.stdout.print(Text(title, style="bold"))
            section = title
        mark, style = _MARKS.get(verdict, ("?", ""))
        line = Text(f"  {mark} ", style=style)
        line.append(f"{name:<{width}}  ", style="bold" if verdict != "ok" else "")
        line.append(detail)
        console.stdout.print(line)
        if fix:
            console.stdout.print(Text(f"    {'':<{width}}  fix: {fix}", style="cyan"))
    failed = any(row[1] == "fail" for row in rows)
    console.stdout.print(Text(summary, style="bold red" if failed else "green"))
