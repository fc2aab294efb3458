"""``council run``, ``council resume`` and ``council status``: run a config, continue one, look.

- ``run FILE``: runs every task of FILE with a live table of the sessions (task, phase,
  adapter, status, elapsed, last message), then prints a summary table. ``--json`` prints the
  ``RunReport`` as JSON instead (and no table); ``--dry-run`` prints the plan (task order,
  phases, adapters) and the exact redacted command of each phase's first adapter, and runs
  nothing. In team mode (``scheduler.team.definitions``) a workstation whose tasks are not the
  team run's is refused before it writes anything, one line per task naming the fields that
  differ: ``--adopt`` works on the team's definitions instead (never changing them),
  ``--add-tasks`` adds this config's tasks the team run lacks to it.
- ``run -g GOAL [FILE]``: the tasks planned from GOAL by the config's planning CLI
  (``goal_cmd``, ``orchestrator.run.goal``), shown, saved beside FILE and run.
- ``resume FILE``: continues the newest interrupted (or killed) session of FILE's repository
  (in a team, on the team's definitions, with the same ``--adopt`` and ``--add-tasks``).
- ``serve FILE``: the long-running mode for a config with ``sources:``: the newest unfinished
  session resumed, else a new one; the sources read every ``poll``, new tasks run as capacity
  allows, pull requests followed, and a settled queue waits for more rather than ending. A
  Ctrl-C or SIGTERM stops it cleanly (exit 0 once stopped, the session left for the next
  ``serve`` or ``resume``: nothing runs twice).
- ``status [FILE]``: the report of the newest session (of FILE's repository; without FILE, of
  the run meant here, see ``run_finder``: the one last started from this directory or one
  above it, else the ``.council/state`` of the repository you stand in; exit 2 when there is
  none), ``--json`` for machine output. A parked task shows
  ``parked until HH:MM:SS (adapter, park n)`` (``parked_until``, ``parked_adapter`` and
  ``parks`` in the JSON); a failed one its ``outcome`` (``rate_limited``, ...) in the JSON.
  ``--watch`` redraws the table on each change any process writes (on anything but a
  terminal: one line per task status change) until every task has ended, the run stopped,
  or its orchestrator is gone, then prints the report and exits with the run's exit code;
  Ctrl-C exits 130.

Tables keep ids (task, branch, commit) whole; a terminal too narrow for the rest drops lesser
columns and says which, ``--wide`` shows them all and full commit ids, and piped output is the
plain layout, every cell whole (``console.print_table``).

``run`` and ``resume`` refuse, before they write anything, a config or a setup that cannot
work (``preflight``: a missing CLI binary, a symlinked ``.council``...) and a repository on
which another orchestrator is running (``run_lock``), each in one line.

Ctrl-C (or SIGTERM) stops gracefully: no new sessions, running CLIs cancelled with their work
committed, a checkpoint written; a second one stops at once, CLIs killed. So does a reader of
the output that goes away (``council demo | head -1``; a ``| cat`` the Ctrl-C ended too): the
broken pipe stops the run the same way, said in one line on stderr. Exit codes: 0 every task
done, 1 some task did not end done, 2 bad usage or config (or another orchestrator runs on the
repository), 130 interrupted, 141 stopped by a broken pipe (a signal too: 130).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio
import typer

from orchestrator.cli import console, event_loop
from orchestrator.cli.goal_options import DEFAULT_ROUNDS, ApproveOption, PlannerOption, RoundsOption
from orchestrator.cli.meant import meant_config
from orchestrator.cli.status import run_finder
from orchestrator.cli.status.kept_after_run import keep_for_status
from orchestrator.cli.status.summary import JsonOption, WideOption, finish, print_summary
from orchestrator.cli.web_beside import WebOption, WebPortOption, web_beside
from orchestrator.errors import CouncilError, TaskInActiveSession, UsageError
from orchestrator.event_text import TRANSITIONS, sentence
from orchestrator.events import Event
from orchestrator.models import SessionStatus
from orchestrator.run.base_checkout import IfBaseDirty, detach, dirty_base_checkout
from orchestrator.run.reports.report import RunReport
from orchestrator.scheduler.team.definitions import DefinitionsDiffer, JoinChoice

if TYPE_CHECKING:
    # What a run imports once it starts (``_council``, ``_drive``), not for ``--help``.
    from orchestrator.cli.approve_cmd import Approval
    from orchestrator.cli.status.live_board import Stopping
    from orchestrator.council import Council
    from orchestrator.run.plan import RunPlan, TaskPlan
    from orchestrator.web.guard import Keys

__all__ = ["resume", "run"]

IfBaseDirtyOption = Annotated[
    IfBaseDirty,
    typer.Option(
        "--if-base-dirty",
        help="When the base branch's checkout has uncommitted changes: wait (finished tasks "
        "land once it is clean), detach (detach that checkout, changes kept, and land on the "
        "branch alone) or stop (start nothing).",
    ),
]


AdoptOption = Annotated[
    bool,
    typer.Option(
        "--adopt",
        help="Joining a team run whose tasks differ from this config's: work on the team's "
        "definitions of them.",
    ),
]
AddTasksOption = Annotated[
    bool,
    typer.Option(
        "--add-tasks",
        help="Joining a team run that lacks some of this config's tasks: add them to it.",
    ),
]


def run(
    file: Annotated[
        Path | None,
        typer.Argument(help="Run config (YAML); with -g, default council.yaml here."),
    ] = None,
    goal: Annotated[
        str | None,
        typer.Option(
            "--goal",
            "-g",
            metavar="GOAL",
            help="Plan the tasks from GOAL with the config's planning CLI, show them, run "
            "them (FILE's own tasks: are replaced; `council plan` shows the plan only).",
        ),
    ] = None,
    planner: PlannerOption = None,
    rounds: RoundsOption = DEFAULT_ROUNDS,
    as_json: JsonOption = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and commands; run nothing.")
    ] = False,
    wide: WideOption = False,
    if_base_dirty: IfBaseDirtyOption = IfBaseDirty.WAIT,
    adopt: AdoptOption = False,
    add_tasks: AddTasksOption = False,
    web: WebOption = False,
    web_port: WebPortOption = 8765,
    approve: ApproveOption = False,
) -> None:
    """Run every task of FILE (or of a goal, -g) until each is merged, failed or in conflict."""
    join = JoinChoice(adopt=adopt, add_tasks=add_tasks)
    keys = _page_keys() if approve and web else None  # the plan's page and the run's: one token
    if approve and (goal is None or dry_run):
        raise UsageError("--approve holds a goal's plan before it runs: give -g GOAL, no --dry-run")
    if goal is not None:
        # Goal mode's modules are imported here, for -g alone (a plain run never needs them).
        from orchestrator.cli.approve_cmd import Approval
        from orchestrator.cli.goal_cmd import config_file

        held = Approval(as_json, web, web_port, keys) if approve else None
        file, council = _from_goal(config_file(file), goal, planner, rounds, as_json, dry_run, held)
        council = council or _council(file, join)
    elif file is None:
        raise UsageError("missing FILE: the run config to run (or -g GOAL to plan the tasks)")
    else:
        council = _council(file, join)
    if dry_run:
        _print_plan(council.plan(), as_json)
        return
    # Every refusal before any change: the setup's problems, then a task an interrupted
    # session still holds, and only then may the base's checkout be detached.
    event_loop.run(council.preflight)
    from orchestrator.council import check_unblocked

    try:
        event_loop.run(check_unblocked, council.config, join)
    except (TaskInActiveSession, DefinitionsDiffer) as refused:
        raise refused.for_config(shlex.quote(str(file))) from None
    check_base_checkout(council, if_base_dirty)
    _remember(council, file)
    why = _Stop()
    try:
        with web_beside(council, web, web_port, keys):
            report = event_loop.run(_drive, council, council.run, not as_json, why)
    except (TaskInActiveSession, DefinitionsDiffer) as refused:
        raise refused.for_config(shlex.quote(str(file))) from None
    _finish(report, as_json, wide, file, why, council)


def _council(file: Path, join: JoinChoice) -> Council:
    """The council of FILE: the run machinery is imported here, once a command runs, not for
    its ``--help`` or a usage error."""
    from orchestrator.council import Council

    return Council.from_config(file, join=join)


def _page_keys() -> Keys:
    from orchestrator.web.guard import Keys

    return Keys()


def _from_goal(
    file: Path,
    goal: str,
    planner: str | None,
    rounds: int,
    as_json: bool,
    dry_run: bool,
    approval: Approval | None = None,
) -> tuple[Path, Council | None]:
    """The goal's plan, shown; saved beside FILE and that file returned to be run (a dry run:
    FILE and a council of the plan, nothing saved; ``approval``: once accepted)."""
    from orchestrator.cli.goal_cmd import make_plan, show_plan
    from orchestrator.run.goal import save_planned_config

    found = make_plan(file, goal, planner, rounds)
    show_plan(found, file, to_stderr=as_json)
    if dry_run:
        from orchestrator.council import Council

        return file, Council(found.config)
    saved = save_planned_config(file, found)
    console.print_plain(
        f"saved as {saved} (give it to council status and council resume)", to_stderr=as_json
    )
    if approval is not None:
        approval.wait(found, saved)
    return saved, None


def resume(
    file: Annotated[
        Path | None,
        typer.Argument(help="The run config of the run (default: the one meant here)."),
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Session id (default: the newest).")
    ] = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
    if_base_dirty: IfBaseDirtyOption = IfBaseDirty.WAIT,
    adopt: AdoptOption = False,
    add_tasks: AddTasksOption = False,
    web: WebOption = False,
    web_port: WebPortOption = 8765,
) -> None:
    """Continue an interrupted or killed run from where it stood."""
    file = meant_config(file, "resume")
    join = JoinChoice(adopt=adopt, add_tasks=add_tasks)
    council = _council(file, join)
    # Refused in this order, and before `async with` creates `.council`: the setup's own
    # problems first, then a repository where no run ever kept state; all of them before
    # --if-base-dirty detach changes anything.
    event_loop.run(council.preflight)
    from orchestrator.council import check_resumable

    check_resumable(council.config)
    _check_resuming(council, join, file, "resume", session)
    check_base_checkout(council, if_base_dirty)
    _remember(council, file)
    why = _Stop()
    try:
        with web_beside(council, web, web_port):
            report = event_loop.run(
                _drive, council, lambda: council.resume(session), not as_json, why
            )
    except DefinitionsDiffer as refused:
        raise refused.for_config(shlex.quote(str(file)), "resume") from None
    _finish(report, as_json, wide, file, why, council)


def _check_resuming(
    council: Council, join: JoinChoice, file: Path, verb: str, session: str | None
) -> None:
    """Refuse, reading only, what resuming FILE's session would: another orchestrator on the
    repository, and a team session that defines its tasks otherwise."""
    from orchestrator.council import check_run_lock, check_team_resume

    event_loop.run(check_run_lock, council.config)
    try:
        event_loop.run(check_team_resume, council.config, join, session)
    except DefinitionsDiffer as refused:
        raise refused.for_config(shlex.quote(str(file)), verb) from None


def serve(
    file: Annotated[Path, typer.Argument(help="Run config (YAML) with sources:.")],
    as_json: JsonOption = False,
    wide: WideOption = False,
    if_base_dirty: IfBaseDirtyOption = IfBaseDirty.WAIT,
    adopt: AdoptOption = False,
    add_tasks: AddTasksOption = False,
    web: WebOption = False,
    web_port: WebPortOption = 8765,
) -> None:
    """Serve FILE's sources until stopped: new issues run as tasks, pull requests followed.

    Resumes the newest unfinished session of FILE's repository, else starts one; a settled
    queue waits for the next issue instead of ending. Ctrl-C or SIGTERM stops it cleanly
    (exit 0, the session kept for the next serve or resume); a second one kills the CLIs."""
    join = JoinChoice(adopt=adopt, add_tasks=add_tasks)
    council = _council(file, join)
    if not council.config.sources:
        raise UsageError(
            f"{file}: council serve waits for work from the config's sources:, and it has "
            f"none; council run {shlex.quote(str(file))} runs its tasks once"
        )
    # The same refusals as run and resume, all before anything touches the checkout.
    event_loop.run(council.preflight)
    _check_resuming(council, join, file, "serve", None)
    check_base_checkout(council, if_base_dirty)
    _remember(council, file)
    why = _Stop()
    with web_beside(council, web, web_port):
        report = event_loop.run(_drive, council, council.serve, not as_json, why)
    if why.signalled and not why.reader_gone and report.status == SessionStatus.INTERRUPTED:
        # Stopped as asked: the way a server ends, not a failure.
        finish_served(report, as_json, wide)
        return
    _finish(report, as_json, wide, file, why, council)


def finish_served(report: RunReport, as_json: bool, wide: bool) -> None:
    """The report of a serve stopped as asked, and exit 0."""
    if as_json:
        console.print_lines(report.model_dump_json(indent=2))
    else:
        print_summary(report, wide)
        console.print_plain("stopped; council serve or council resume goes on from here")


def drive(
    council: Council, start: Callable[[], Awaitable[RunReport]], as_json: bool
) -> tuple[RunReport, bool]:
    """``start()`` on ``council`` as ``run`` drives it (live view or line stream, Ctrl-C and a
    reader gone stop it): its report, and whether a signal stopped it."""
    why = _Stop()
    report = event_loop.run(_drive, council, start, not as_json, why)
    return report, why.signalled


@dataclass
class _Stop:
    """What stopped the run, if anything did: a signal, or a reader of its output gone."""

    signalled: bool = False
    reader_gone: bool = False  # said, and the run stopped for it


def _finish(
    report: RunReport, as_json: bool, wide: bool, file: Path, why: _Stop, council: Council
) -> None:
    """``finish``; a reader of the output gone and no signal: exit 141 (as a shell says a
    broken pipe), in one line on stderr if the run did not say it already. Once printed, and
    unless a signal stopped it, the report is kept for ``council status`` (``kept_after_run``)."""
    try:
        try:
            finish(report, as_json, wide, file)
        finally:
            if not why.signalled:
                keep_for_status(council.config)
    except typer.Exit:
        if not console.output_closed() or why.signalled:
            raise
        if not why.reader_gone:
            console.print_error("the output's reader went away (broken pipe): not all is shown")
        raise typer.Exit(141) from None


def _remember(council: Council, file: Path) -> None:
    """For ``council status`` without a config, from here or from the run's repository."""
    config = council.config
    state = config.state_dir if config.state.backend == "file" else None
    run_finder.remember_run(file, config.repo, state_dir=state)


def check_base_checkout(council: Council, choice: IfBaseDirty) -> None:
    """Say once, before anything starts, that the base's checkout holds uncommitted work,
    and do what the user chose (``run.base_checkout``)."""
    dirty = event_loop.run(dirty_base_checkout, council.config)
    if dirty is None:
        return
    console.print_warning(f"warning: {dirty.warning()}")
    if choice == IfBaseDirty.STOP:
        console.print_error("not started (--if-base-dirty stop); nothing was changed")
        raise typer.Exit(2)
    if choice == IfBaseDirty.DETACH:
        commit = event_loop.run(detach, dirty)
        console.print_warning(
            f"detached {dirty.checkout} at {commit}, your changes kept there; tasks land on "
            f"{dirty.base_branch} alone. Afterwards: git -C {shlex.quote(str(dirty.checkout))} "
            f"switch {dirty.base_branch}"
        )
        return
    console.print_warning(
        "(--if-base-dirty detach: land on the branch alone instead; stop: start nothing)"
    )


async def _drive(
    council: Council, start: Callable[[], Awaitable[RunReport]], live: bool, why: _Stop
) -> RunReport:
    from orchestrator.cli.status.live_board import Stopping, show_board

    if not console.is_terminal():
        # Piped or redirected (nohup, CI): no live table can be drawn, so one line per task
        # transition says what happens as it happens (on stderr when stdout is --json data).
        council.subscribe(_transition_lines(to_stderr=not live))
        if not live or console.same_file_for_both():
            console.skip_warnings_for(TRANSITIONS)  # each is one line already, not two
    async with council:
        report: RunReport | None = None
        refused: CouncilError | None = None
        stopping = Stopping()
        forget = console.on_output_closed(lambda: _reader_gone(council, stopping, why))
        async with anyio.create_task_group() as group:
            group.start_soon(_on_signals, council, stopping, why)
            if live:
                group.start_soon(show_board, council, stopping)
            try:
                report = await start()
            except CouncilError as exc:
                # Raised here, the task group would wrap it in an ExceptionGroup, which the
                # command's error handler does not know: a traceback instead of one line.
                refused = exc
            finally:
                forget()
            group.cancel_scope.cancel()
        if refused is not None:
            raise refused
        assert report is not None  # start() returned, or its error went up
        return report


def _transition_lines(*, to_stderr: bool) -> Callable[[Event], None]:
    def show(event: Event) -> None:
        if event.type in TRANSITIONS:
            stamp = event.ts.astimezone().strftime("%H:%M:%S")
            console.print_plain(f"{stamp} {sentence(event)}", to_stderr=to_stderr)

    return show


def _reader_gone(council: Council, stopping: Stopping, why: _Stop) -> None:
    """A reader of the output went away (``console.on_output_closed``): the run stops as on a
    first Ctrl-C, resumable, unless a signal stops it already (which said so)."""
    if why.signalled:
        return
    why.reader_gone = True
    stopping.said = "stopping: the output's reader went away"
    console.print_error(
        "stopping: the output's reader went away (broken pipe); running sessions commit their "
        "work, and council resume goes on"
    )
    council.stop()


async def _on_signals(council: Council, stopping: Stopping, why: _Stop) -> None:
    with anyio.open_signal_receiver(*event_loop.stop_signals()) as signals:
        received = 0
        async for _ in signals:
            received += 1
            why.signalled = True
            if received == 1:
                stopping.said = "stopping: sessions commit their work (Ctrl-C again: kill them)"
                if not why.reader_gone:  # else the broken pipe's line said the stop already
                    console.print_error("stopping: no new sessions; running ones commit their work")
                council.stop()
            else:
                stopping.said = "killing the running CLIs"
                console.print_error("killing the running CLIs; their worktrees stay")
                council.kill()


def _print_plan(plan: RunPlan, as_json: bool) -> None:
    if as_json:
        console.print_lines(plan.model_dump_json(indent=2))
        return
    lines = [f"plan for {plan.repo} (base {plan.base_branch}, capacity {plan.capacity}):"]
    for number, task in enumerate(plan.tasks, 1):
        after = f", after {', '.join(task.depends_on)}" if task.depends_on else ""
        files = f", files {', '.join(task.files)}" if task.files else ""
        lines.append(f"{number}. {task.task_id} (priority {task.priority}{after}{files})")
        if task.candidates:
            judge = f"; if more than one passes, {task.judge} picks the one merged"
            lines.append(f"   council of {len(task.candidates)} candidates{judge}:")
            for candidate in task.candidates:
                lines.append(f"   - {candidate.task_id}")
                lines.extend(_phase_lines(candidate, "     "))
        lines.extend(_phase_lines(task, "   "))
    console.print_lines("\n".join(lines))


def _phase_lines(task: TaskPlan, indent: str) -> list[str]:
    lines = []
    for phase in task.phases:
        chain = " -> ".join(phase.adapters) or "no adapter"
        command = shlex.join(phase.argv) if phase.argv is not None else f"({phase.error})"
        lines.append(f"{indent}{phase.phase} [{chain}]: {command}")
        if phase.env:
            lines.append(f"{indent}  env: {json.dumps(phase.env, sort_keys=True)}")
    return lines
