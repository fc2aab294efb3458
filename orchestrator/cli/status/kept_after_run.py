"""A finished run leaves ``council status``'s summary kept, so the first look after it is a quick
one.

``status`` of a run whose records have not changed since the last look draws the summary kept
beside its report (``kept_view``), without pydantic or the report's models: about a third of
what the first look after a write costs at 1,024 tasks (0.13 s of CPU against 0.45 s). Without
this, the first look after every run paid the full price, though the run's own process had
every module it needs loaded already. So when ``run``, ``resume`` or ``serve`` has printed its
report, the same process builds the report ``status`` would (``quick_report``: the records'
identities taken before they are read, so a write meanwhile leaves it stale and the next look
builds it again) and keeps it, with the summary, for the run's config (``status`` with no
argument from where the run was started means that config).

Not after a stop by a signal, which is to exit at once, nor for a database-backed run (its
``status`` reads the database). Whatever keeping it meets (a record the read path leaves to the
store, a file it cannot write) only means no report is kept: the run's outcome and exit code
are already decided and printed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from orchestrator.errors import CouncilError

if TYPE_CHECKING:
    from orchestrator.config.run import RunConfig

__all__ = ["keep_for_status"]

log = logging.getLogger(__name__)


def keep_for_status(config: RunConfig) -> None:
    """Blocking: keep the newest report of ``config``'s file store, with the summary ``status``
    prints of it (module doc)."""
    if config.state.backend != "file":
        return
    from orchestrator.cli.status.kept_view import view_of
    from orchestrator.config.origin import origin_of
    from orchestrator.run.reports.quick_report import quick_report

    try:
        quick_report(config.state_dir, origin_of(config), view_of)
    except (OSError, ValueError, CouncilError) as exc:  # a cache: the run has ended as it did
        log.debug("no report kept for council status: %s", exc)
