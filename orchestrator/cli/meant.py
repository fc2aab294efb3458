"""The run config a command means when it is given no FILE: the one ``council status`` finds
(``status.run_finder``: the run last started from this directory or one above it, else the
``council.yaml`` there), said on stderr, so every command taking FILE finds it the same way.

``meant_config(file, command)``: FILE as given, else the config found. ``file_and(args,
command, what)``: the ``[FILE] ARG`` of ``cancel``, ``budget raise`` and ``checkpoint
restore``: one value is ARG (FILE found), two are FILE and ARG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from orchestrator.cli import console
from orchestrator.cli.status.run_finder import find_config
from orchestrator.errors import UsageError

__all__ = ["file_and", "meant_config", "split_file_and"]


def meant_config(file: Path | None, command: str) -> Path:
    """``file``, or the run config meant here for ``council COMMAND`` (module doc)."""
    if file is not None:
        return file
    found, how = find_config(Path.cwd(), command)
    console.print_progress(f"{command}: {how}")
    return found


def file_and(what: str, help_text: str) -> Any:
    """The ``[FILE] WHAT`` argument (read by ``split_file_and``); ``help_text`` says WHAT."""
    return typer.Argument(
        metavar=f"[FILE] {what}",
        help=f"The run config (default: the one meant here) and {help_text}",
        show_default=False,
    )


def split_file_and(args: list[str], command: str, what: str) -> tuple[Path, str]:
    """``[FILE] WHAT`` as given: the config (found when left out) and WHAT."""
    if len(args) == 1:
        return meant_config(None, command), args[0]
    if len(args) == 2:
        return Path(args[0]), args[1]
    given = " ".join(args) or "nothing"
    raise UsageError(f"council {command} takes [FILE] {what}, not: {given}")
