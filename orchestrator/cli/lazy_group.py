"""A command group whose subcommands are imported only when one of them runs.

Each subcommand is a ``CommandRef``: where it lives (``"module:attribute"``, a function typer
makes a command of, or a ``typer.Typer`` sub-app) and the one line ``--help`` lists it with.
The group lists a light stand-in for each (``--help``, shell completion, "did you mean"), and
the stand-in loads the real command when click builds its context, which is the first thing
done when a command runs, shows its own help or completes its options. So ``council --help``
and ``council status`` do not import the modules of every other command.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from orchestrator.cli import startup_gc

__all__ = ["CommandRef", "LazyGroup", "load_command"]


@dataclass(frozen=True)
class CommandRef:
    """A subcommand not imported yet: ``target`` is ``"package.module:attribute"``, ``help``
    the line the group's ``--help`` shows for it (its docstring's first line, or its sub-app's
    ``help``; a test keeps the two the same)."""

    target: str
    help: str


def load_command(name: str, ref: CommandRef) -> Any:
    """The click command ``ref`` names, imported now (typed ``Any``: typer's click is private)."""
    module_name, _, attribute = ref.target.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    finally:
        startup_gc.settle()  # its modules are in: the collector resumes (``hold``)
    if isinstance(found, typer.Typer):
        return plain_usage(typer.main.get_group(found))
    if callable(found):
        single = typer.Typer(add_completion=False)
        single.command(name)(found)
        return plain_usage(typer.main.get_command(single))
    raise TypeError(f"{ref.target} is neither a typer app nor a function")


def plain_usage(command: Any) -> Any:
    """``command`` (and its subcommands) with usage lines as click writes them, ``FILE`` for a
    required argument and ``[FILE]`` for an optional one, the names the help texts use: typer
    0.28 writes ``{file}`` and ``[file]`` instead."""
    for param in getattr(command, "params", ()):
        if isinstance(param, TyperArgument):
            typer_metavar = param.make_metavar
            param.make_metavar = types.MethodType(  # type: ignore[method-assign]
                lambda self, ctx, *, usage=False, own=typer_metavar: (
                    _usage_metavar(self) if usage else own(ctx)
                ),
                param,
            )
    for sub in getattr(command, "commands", {}).values():
        plain_usage(sub)
    return command


def _usage_metavar(argument: Any) -> str:
    if argument.metavar and " " in str(argument.metavar):
        return str(argument.metavar)  # spelled out whole: ``[FILE] TASK`` (``cli.meant``)
    name = str(argument.metavar or argument.name or "").strip("[]{}").upper()
    if argument.nargs != 1:
        name += "..."
    return name if argument.required else f"[{name}]"


class _Deferred(TyperCommand):
    """What the group lists for a subcommand not loaded yet: its name and help line; making
    its context (running it, its own ``--help``, completing its options) loads the real one."""

    def __init__(self, name: str, ref: CommandRef) -> None:
        super().__init__(name, help=ref.help)
        self._ref = ref
        self._loaded: Any = None

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        if self._loaded is None:
            self._loaded = load_command(self.name or "", self._ref)
        return self._loaded.make_context(info_name, args, parent=parent, **extra)


class LazyGroup(TyperGroup):
    """A typer group that also has the subcommands of ``lazy_commands`` (name -> ref), after
    any registered with typer itself, in the table's order."""

    lazy_commands: ClassVar[Mapping[str, CommandRef]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, ref in self.lazy_commands.items():
            self.commands.setdefault(name, _Deferred(name, ref))
