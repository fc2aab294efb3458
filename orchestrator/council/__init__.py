"""``Council``, the facade a Python user holds (``facade``), and the refusals the ``council``
command makes before a run (``checks``): every name imported from ``orchestrator.council``.
The facade's parts are rooms of this package: ``opening`` (what entering it opens) and
``listening`` (who hears the run's events)."""

from __future__ import annotations

from orchestrator.council.checks import (
    check_resumable,
    check_run_lock,
    check_team_resume,
    check_unblocked,
    nothing_to_resume,
    stored_report,
)
from orchestrator.council.facade import Council, LiveSession
from orchestrator.errors import CancelError
from orchestrator.scheduler.board import TaskLine
from orchestrator.scheduler.board_book import BoardView
from orchestrator.scheduler.cancel import request_cancel

__all__ = [
    "BoardView",
    "CancelError",
    "Council",
    "LiveSession",
    "TaskLine",
    "check_resumable",
    "check_run_lock",
    "check_team_resume",
    "check_unblocked",
    "nothing_to_resume",
    "request_cancel",
    "stored_report",
]
