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
"""

from __future__ import annotations

import gc

__all__ = ["hold", "settle"]

_held = False


def hold() -> None:
    """Pause the collector until ``settle``."""
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def settle() -> None:
    """What ``hold`` paused: everything alive now frozen, the collector resumed. Nothing when
    ``hold`` was not called (or already settled)."""
    global _held
    if _held:
        _held = False
        gc.freeze()
        gc.enable()
