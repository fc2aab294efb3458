"""``council --help``: the root's help, drawn by ``console`` from the group's own table.

typer draws help with its ``rich_utils``, whose import (rich's markdown and traceback
renderers, markdown-it) costs more CPU than the rest of the help together, for a page that
shows neither. The root's help is the first thing a newcomer runs and is only a usage line,
its options and the table of commands, so it is drawn here in the same panels; a command's own
``--help`` (which imports that command anyway) stays typer's.
"""

from __future__ import annotations

from typing import Any

from orchestrator.cli import console

__all__ = ["print_root_help"]


def print_root_help(group: Any, ctx: Any) -> None:
    """The help of ``group`` (the root click group) in ``ctx``, on stdout."""
    usage = " ".join([ctx.command_path, *group.collect_usage_pieces(ctx)])
    options: list[tuple[str, str, str]] = []
    for param in group.get_params(ctx):
        if getattr(param, "hidden", False) or not getattr(param, "opts", None):
            continue
        names = [*param.opts, *param.secondary_opts]
        long = ",".join(name for name in names if name.startswith("--"))
        short = ",".join(name for name in names if not name.startswith("--"))
        options.append((long, short, getattr(param, "help", None) or ""))
    commands = [
        (name, command.get_short_help_str(limit=10_000))
        for name in group.list_commands(ctx)
        if (command := group.get_command(ctx, name)) is not None and not command.hidden
    ]
    console.print_help(usage, group.help or "", options, commands, group.epilog or "")
