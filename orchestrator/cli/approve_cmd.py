"""``council run -g GOAL --approve`` waits for its plan to be answered; ``council approve [FILE]``
answers it (``orchestrator.run.goal_hold``).

- ``run -g GOAL [FILE] --approve``: plans and saves as ``run -g`` does, then holds the plan in
  the repository's ``.council/goal-plan.json`` and waits until it is accepted (the run starts
  with the accepted tasks, as the saved config now holds them) or refused (exit 2, nothing
  run). With ``--web`` the page serves the plan while it waits (a list to edit or accept),
  then the run, on the same port and token.
- ``approve [FILE]``: accepts the plan held for FILE's repository (FILE: the run config or the
  planned one; default council.yaml here); ``--drop TASK`` (repeatable) leaves tasks out,
  checked as a hand-written config; ``--refuse`` refuses it instead.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli import console, event_loop
from orchestrator.cli.goal_cmd import config_file
from orchestrator.config.load import load_config
from orchestrator.errors import UsageError
from orchestrator.plugins.host import default_plugins
from orchestrator.run.goal_hold import (
    REFUSED,
    accept_plan,
    goal_config,
    hold_plan,
    read_plan,
    refuse_plan,
    wait_for_answer,
)

if TYPE_CHECKING:
    from orchestrator.run.goal import GoalPlan
    from orchestrator.web.guard import Keys

__all__ = ["Approval", "approve"]


def approve(
    file: Annotated[
        Path | None,
        typer.Argument(help="The run config or its planned config (default: council.yaml)."),
    ] = None,
    refuse: Annotated[
        bool, typer.Option("--refuse", help="Refuse the plan: nothing of it runs.")
    ] = False,
    drop: Annotated[
        list[str] | None,
        typer.Option("--drop", metavar="TASK", help="Leave this task of the plan out."),
    ] = None,
) -> None:
    """Accept (or refuse) the goal plan that council run -g --approve waits on."""
    repo = goal_config(config_file(file)).repo
    if refuse:
        if drop:
            raise UsageError("--drop and --refuse: a refused plan runs no task at all")
        console.print_success(refuse_plan(repo))
        return
    edits = None
    if drop:
        held = read_plan(repo)
        planned = [str(t.get("id")) for t in held.tasks] if held is not None else []
        unknown = [t for t in drop if t not in planned]
        if unknown:
            raise UsageError(f"--drop {', '.join(unknown)}: no such task in the plan")
        edits = [{"id": t} for t in planned if t not in drop]
    registry = default_plugins().registry
    said = event_loop.run(lambda: accept_plan(repo, registry, os.environ, edits))
    console.print_success(said)


@dataclass(frozen=True)
class Approval:
    """``--approve`` on ``run -g``: how the held plan is shown while it waits."""

    to_stderr: bool
    web: bool
    web_port: int
    keys: Keys | None  # the page's, kept for the run's page after it

    def wait(self, plan: GoalPlan, saved: Path) -> None:
        """Hold ``plan`` (saved as ``saved``) and wait for its answer; refused: exit 2."""
        repo = plan.config.repo
        hold_plan(repo, saved, plan.goal, plan.tasks)
        quoted = shlex.quote(str(saved))
        console.print_plain(
            f"the plan waits: accept it with council approve {quoted} (--drop TASK leaves one "
            f"out), refuse it with council approve --refuse {quoted}"
            + (", or answer it on the page" if self.web else ""),
            to_stderr=self.to_stderr,
        )
        try:
            with _plan_page(saved, self.web, self.web_port, self.keys):
                held = wait_for_answer(repo, saved, console.print_progress)
        except KeyboardInterrupt:
            # Nobody waits for it any more: an answer given now would run nothing.
            with contextlib.suppress(UsageError):
                refuse_plan(repo)
            raise
        if held.status == REFUSED:
            console.print_error("the plan was refused: nothing ran")
            raise typer.Exit(2)
        console.print_plain(
            f"plan accepted: {len(held.tasks)} task(s) run", to_stderr=self.to_stderr
        )


@contextmanager
def _plan_page(saved: Path, web: bool, port: int, keys: Keys | None) -> Iterator[None]:
    """The page serving the held plan while the command waits (``--web``)."""
    if not web:
        yield
        return
    from orchestrator.cli.web_beside import web_thread

    with web_thread(load_config(saved), port, keys, "the goal's plan"):
        yield
