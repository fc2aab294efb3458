"""An attempt's council tools made at the first phase that opens them (``ToolsLater``): the
desk, the notes and the radar's records they answer from are built, and their modules
imported, only for a CLI that takes MCP servers. A run whose CLIs take none (aider, a
``command`` or the offline ``scripted`` adapter) never imports them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.coordination.session_tools import OpenedTools, SessionTools

__all__ = ["ToolsLater"]


class ToolsLater:
    """``workflow.task_run.PhaseTools`` over the ``SessionTools`` that ``make`` builds, once,
    when the first phase opens them (blocking, in that phase's worker-thread call)."""

    def __init__(self, make: Callable[[], SessionTools]) -> None:
        self._make = make
        self._made: SessionTools | None = None

    def open(self) -> OpenedTools:
        if self._made is None:
            self._made = self._make()
        return self._made.open()
