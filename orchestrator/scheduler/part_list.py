"""The run's parts, listed once: the one place a new capability of the run is added.

A capability that takes part in the run (``parts.RunPart``) lives in a room of its own and is
added here, one line in ``run_parts``; the scheduler, the dispatcher and the attempt's modules
reach it only through ``RunParts``. The order is the order each point asks the parts in: the
first part that names a checkpoint names the run's (``ending``), the first that adopts a
worktree gives it (team mode before a pull request's feedback round), the first that holds a
dispatch says why.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.attempts.writes import AttemptWrites
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.parts import EndOnly, RunPart, RunParts
from orchestrator.scheduler.pulls.part import PullsPart
from orchestrator.scheduler.radar_watch import RadarWatch
from orchestrator.scheduler.rules.queue import CheckoutEnd
from orchestrator.scheduler.session_ports import SessionPortsPart
from orchestrator.scheduler.spending import BudgetEnd, Spending

__all__ = ["run_parts"]


def run_parts(
    run: RunContext,
    inflight: InFlight,
    writes: AttemptWrites,
    spending: Spending,
    wake: Callable[[], None],
) -> RunParts:
    """The parts of ``run``, each only when its feature is on."""
    services, config = run.services, run.services.config
    parts: list[RunPart] = [
        BudgetEnd(spending, run),  # budgets and quotas
        EndOnly(CheckoutEnd()),  # a landing that waited for the base's checkout
    ]
    # a feature's part is imported only when it is on: a run without it does not pay its
    # modules (tests/cli/test_cli_startup.py names them)
    if services.team is not None:  # several workstations on one queue
        from orchestrator.scheduler.team.part import TeamPart

        parts.append(TeamPart(run, services.team, inflight))
    parts.append(PullsPart(run, writes))  # landing.via: pull_request
    stacked = config.landing.pulls == "stacked" and config.landing.via == "pull_request"
    if stacked or any(config.stacked(task) for task in run.tasks.values()):  # issue 52
        from orchestrator.scheduler.pulls.stack import PullStack

        parts.append(PullStack(run))  # landing.pulls: stacked (tasks from issues too)
    if config.radar.on:  # the collision radar
        parts.append(RadarWatch(run, inflight, wake))
    if config.services:  # each session's own services (issue 50)
        from orchestrator.scheduler.session_services import SessionServicesPart

        parts.append(SessionServicesPart(run))
    parts.append(SessionPortsPart())  # each session's own range of ports (issue 50)
    return RunParts(parts)
