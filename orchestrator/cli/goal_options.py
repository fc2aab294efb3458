"""The options goal mode adds to ``council run`` (``-g``'s ``--planner``, ``--rounds`` and
``--approve``), shared with ``council plan``: light, so ``run`` declares them without importing
goal mode (``goal_cmd``, ``approve_cmd``, ``orchestrator.run.goal``), which only ``-g`` uses."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.run.goal_rounds import DEFAULT_ROUNDS

__all__ = ["DEFAULT_ROUNDS", "ApproveOption", "PlannerOption", "RoundsOption"]

PlannerOption = Annotated[
    str | None,
    typer.Option(
        "--planner",
        metavar="NAME",
        help="The run config's adapter that plans (default: the plan phase's adapter).",
    ),
]
RoundsOption = Annotated[
    int,
    typer.Option(
        "--rounds",
        min=1,
        max=5,
        help="Plans asked for at most, an invalid one sent back with its problems.",
    ),
]
ApproveOption = Annotated[
    bool,
    typer.Option(
        "--approve",
        help="With -g: hold the plan until it is accepted (council approve, or the page with "
        "--web), then run the accepted tasks; refused: nothing runs.",
    ),
]
