"""The cyclic garbage collector paused while a command's modules import, then told to leave
what they built alone.

Importing a command's modules (``run``: about 800 of them, hundreds of pydantic models and
dataclasses) makes objects by the hundred thousand and almost no garbage, yet each 700 new
objects start a collection, and each tenth of those a pass over everything made so far: about
a tenth of the import's CPU. ``hold`` (the console script's ``main``, never a process the
commands run inside of, such as a test runner) pauses the collector; ``settle`` (once the
command's module is imported, ``lazy_group``) moves every object alive then into the
collector's permanent generation (``gc.freeze``: modules, classes, their schemas, which live as
long as the process) and resumes it, so the run's full collections no longer walk them. The
import's few garbage objects (about 1,700 for ``run``) are kept with them: a full collection
to free them would cost more than the pause saves.

``ending`` (the console script's ``main``, as the command returns or raises) freezes
everything alive once more: the interpreter's own last collection, as it shuts down, walks every
object the command left (a stopped run of 10,000 tasks: its records, reports and board, some
0.9 s at load 11 between the last ``atexit`` call and the exit), only to free memory the
process gives back by ending. The command's files are closed by the code that wrote them (each
in its own ``with``, the store by the run's end) and the interpreter flushes the standard
streams itself, so no buffer waits on that collection.
"""

from __future__ import annotations

import gc
import os
import sys

__all__ = ["ending", "hold", "hold_for_the_script", "is_the_command", "settle"]

_held = False
_command = False  # this process is the ``council`` command (``hold`` ran)


def hold() -> None:
    """Pause the collector until ``settle``; this process is the ``council`` command (the
    console script's ``main``, or ``hold_for_the_script`` before it)."""
    global _held, _command
    _command = True
    if gc.isenabled():
        gc.disable()
        _held = True


def hold_for_the_script() -> None:
    """``hold`` from the first of the command line's own modules (``orchestrator.cli``
    imports it), before typer, rich and the root app import (some 40 collections, about 10 ms
    of CPU), when this process is the ``council`` script: its ``argv[0]`` names it, and its
    ``main`` settles what this holds, or ``python -m orchestrator.cli.app``. Any other process
    that imports the package (a test runner, a program using the API) is left as it was;
    ``python -m orchestrator`` holds before its import (``orchestrator.__main__``)."""
    argv: list[str] = getattr(sys, "argv", None) or [""]
    if os.path.basename(argv[0]).removesuffix(".exe") == "council" or _run_as_the_app():
        hold()


def _run_as_the_app() -> bool:
    """``python -m orchestrator.cli.app``: the command's module run as the script (as the
    project's tests start it), whose ``main`` settles what ``hold`` paused. While the package
    imports, ``argv[0]`` is still ``-m``; the interpreter's own command line names the
    module."""
    orig: list[str] = getattr(sys, "orig_argv", None) or []
    args = iter(orig[1:])
    for arg in args:  # the interpreter's options, up to what it runs
        if arg == "-m":
            return next(args, None) == "orchestrator.cli.app"
        if arg in ("-X", "-W"):
            next(args, None)  # the option's value
        elif not arg.startswith("-") or (not arg.startswith("--") and ("m" in arg or "c" in arg)):
            # A script, code, or -m/-c joined to other letters (``-mpytest``, ``-Im``): not
            # told apart here, so not held (the collector is only paused for what is sure).
            return False
    return False


def is_the_command() -> bool:
    """Whether this process is the ``council`` command, which ends with its command (``hold``
    ran), not a process a command runs inside of."""
    return _command


def settle() -> None:
    """What ``hold`` paused: everything alive now frozen, the collector resumed. Nothing when
    ``hold`` was not called (or already settled)."""
    global _held
    if _held:
        _held = False
        gc.freeze()
        gc.enable()


def ending() -> None:
    """The command has ended: everything alive is frozen, so the interpreter's last collection
    at exit walks none of it (module doc). Nothing in a process the commands run inside of
    (``is_the_command``), which goes on."""
    if _command:
        gc.freeze()
