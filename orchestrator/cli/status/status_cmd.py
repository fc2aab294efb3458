"""``council status [FILE]``: the newest run's tasks, once or until the run ends.

The report of the newest session: of FILE's repository or, without FILE, of the run meant
here (``run_finder``: the one last started from this directory or one above it, else the
``.council/state`` of the repository you stand in; exit 2 when there is none); ``--json`` for
machine output. A parked task shows ``parked until HH:MM:SS (adapter, park n)``
(``parked_until``, ``parked_adapter`` and ``parks`` in the JSON); a waiting one why it waits
(``waiting``; a call held by a quota or a budget also ``held`` and ``held_until``, the
reset); a failed one its ``outcome`` (``rate_limited``, ...) in the JSON. ``--watch`` redraws
the table until the run ends (``status_watch``).

One look at a file store first tries the report kept beside it (``run.reports.report_cache``): while
no record it was built from has been written, it is the report, read without the store, its
event loop or its modules. Otherwise it is built from the record files in this thread, still
without the store (``run.reports.quick_report``), and kept for the next look; only when the
store has something to do first (a transaction left on disk, a damaged record) is the report built
through the store. Reading a report needs the state store, the report and the table, never the run
machinery (scheduler, merge queue, worktrees, git, plugins): the modules are imported when
needed, so the command starts at once (``tests/cli/test_cli_startup.py`` keeps it so;
``bench/startup_bench.py`` measures it). FILE is read for where its state lives only: its
adapters' options and ``${NAME}`` references are a run's business.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli import console, startup_gc
from orchestrator.cli.status import run_finder
from orchestrator.cli.status.kept_view import print_made
from orchestrator.cli.status.summary_columns import JsonOption, WideOption

if TYPE_CHECKING:
    from orchestrator.config.origin import ConfigOrigin
    from orchestrator.config.run import RunConfig
    from orchestrator.run.reports.report import RunReport

__all__ = ["status"]


def status(
    file: Annotated[
        Path | None,
        typer.Argument(help="Run config (default: the run meant here, see above)."),
    ] = None,
    as_json: JsonOption = False,
    watch: Annotated[
        bool,
        typer.Option("--watch", help="Redraw on every change until every task has ended."),
    ] = False,
    wide: WideOption = False,
) -> None:
    """Show the newest run's tasks.

    Of FILE or, without it, of the run meant here (the one `council run` or `resume` was last
    started for from this directory or the nearest one above it, else the one kept in the
    .council/state of the repository you stand in)."""
    where, events, origin = _status_source(file)
    if watch:
        from orchestrator.cli.status.status_watch import watch_status

        watch_status(where, as_json, wide, events, origin)
    with _collector_paused():
        if not as_json and isinstance(where, Path) and _kept_table(where, origin, wide):
            return
        made: list[Mapping[str, object] | None] = []
        report = _one_look(where, origin, made)
        if as_json:
            console.print_lines(report.model_dump_json(indent=2))
        elif not (made and made[0] is not None and print_made(made[0], wide)):
            from orchestrator.cli.status.summary import print_summary

            print_summary(report, wide)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for one look. The look imports pydantic and the
    report's models and makes a report of every task: objects by the hundred thousand and
    next to no cyclic garbage, yet a collection starts every 700 new objects (some 90 of
    them, about 10 ms of the CPU of a look at 1,024 tasks). ``--watch`` (which never gets
    here) runs with the collector on. Resumed after the look, as it was, in a process the
    command runs inside of (a test runner); not in the ``council`` command, which ends with
    the look (``startup_gc.is_the_command``): resumed, the collector would walk everything
    the look made, some 10 ms more, only to exit."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused and not startup_gc.is_the_command():
            gc.enable()


def _kept_table(where: Path, origin: ConfigOrigin | None, wide: bool) -> bool:
    """Whether the summary kept beside the report (``kept_view``) still held, and was drawn."""
    from orchestrator.cli.status.kept_view import print_view
    from orchestrator.run.reports.report_cache import kept_view

    return print_view(kept_view(where, origin), wide)


def _status_source(
    file: Path | None,
) -> tuple[Path | RunConfig, Path | None, ConfigOrigin | None]:
    """The state directory (with the run's event log, for ``--watch``, and the config file
    whose runs it shows: ``config.origin``), or the config of a database-backed run, that
    status reads."""
    if file is None:
        found = run_finder.find_run(Path.cwd())
        console.print_progress(f"status of {found.how}")
        if found.config is None:
            assert found.state_dir is not None  # a FoundRun has one or the other
            return found.state_dir, found.events, None
        file = found.config
    from orchestrator.config.load import state_config  # YAML: FILE only
    from orchestrator.config.origin import origin_of
    from orchestrator.state.file.record_files.layout import events_log

    # Where its state is, without its tasks (``config.load.state_config``); read whole otherwise.
    light = state_config(file)
    if light is not None and light.state.backend == "file":
        return light.state_dir, events_log(light.repo), origin_of(light)
    from orchestrator.config.load import load_config  # and the checks

    config = load_config(file)
    if config.state.backend == "file":
        return config.state_dir, events_log(config.repo), origin_of(config)
    return config, None, None


def _one_look(
    where: Path | RunConfig,
    origin: ConfigOrigin | None = None,
    made: list[Mapping[str, object] | None] | None = None,
) -> RunReport:
    """The newest session's report: the kept one when it is still what the records say, else
    built from the store; ``made`` gets what the summary prints of a report built now (the
    view kept with it, ``kept_view.view_of``), so it is drawn from that, not made twice."""
    from orchestrator.cli.status.kept_view import view_of  # kept with it, for the next look

    def viewed(report: RunReport) -> Mapping[str, object] | None:
        view = view_of(report)
        if made is not None:
            made.append(view)
        return view

    if isinstance(where, Path):
        from orchestrator.run.reports.report_cache import kept_report

        kept = kept_report(where, origin)
        if kept is not None:
            return kept
        from orchestrator.run.reports.quick_report import quick_report

        built = quick_report(where, origin, viewed)
        if built is not None:
            return built
    from orchestrator.cli import event_loop
    from orchestrator.cli.store_access import newest_report

    report, _ = event_loop.run(newest_report, where, origin, viewed)
    return report
