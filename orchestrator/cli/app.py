"""The ``council`` entry point: the root typer app, its sub-apps, and the one error handler.

Commands raise ``CouncilError`` subclasses and never print tracebacks for them: the handler
below turns them into a red message on stderr and an exit code, 2 when the user's input was at
fault (a bad config, an invalid value, a name that names nothing, an adapter that cannot run
here) or the command was refused before it changed anything (another orchestrator runs on the
repository), and 1 for everything else. Ctrl-C outside a run (which handles its own) exits 130.
The convention, shown under ``council --help``, is ``EXIT_CODES``.
"""

from __future__ import annotations

from importlib.metadata import version as package_version
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from orchestrator.cli import (
    adapters_cmd,
    cancel_cmd,
    checkpoint_cmd,
    clean_cmd,
    config_cmd,
    console,
    db_cmd,
    demo_cmd,
    doctor_cmd,
    init_cmd,
    run_cmd,
    worktrees_cmd,
)
from orchestrator.council import Council
from orchestrator.errors import ConfigError, CouncilError, RunLocked

__all__ = ["EXIT_CODES", "CouncilGroup", "app", "council_errors", "exit_code_for", "main"]

EXIT_CODES = (
    "Exit codes: 0 all done; 1 some task did not land or some check failed; "
    "2 usage or config error; 130 interrupted."
)


def exit_code_for(error: CouncilError) -> int:
    """2 when the user's input is at fault or the command was refused, 1 otherwise."""
    # CouncilErrors that are also ValueErrors (InvalidIdError, PathEscapeError,
    # AdapterUnavailable, UnusableRepository) mean a value the user supplied was refused.
    return 2 if isinstance(error, ConfigError | ValueError | RunLocked) else 1


class CouncilGroup(TyperGroup):
    """The root command group; every subcommand runs inside its ``invoke``."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CouncilError as exc:
            _report(exc)
            raise typer.Exit(exit_code_for(exc)) from None
        except KeyboardInterrupt:
            # click would say "Aborted!" and exit 1, which reads as a failure.
            console.print_error("interrupted")
            raise typer.Exit(130) from None
        except BaseExceptionGroup as group:
            # A run's error comes up through the task group that also ran the live table
            # and the signal handler: it is still one error of ours, not a crash.
            errors = council_errors(group)
            if errors is None:
                raise
            for error in errors:
                _report(error)
            raise typer.Exit(max(map(exit_code_for, errors))) from None


def council_errors(group: BaseExceptionGroup[BaseException]) -> list[CouncilError] | None:
    """The errors of ``group`` (nested groups flattened) when all are ours, else None."""
    found: list[CouncilError] = []
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            inner = council_errors(error)
            if inner is None:
                return None
            found += inner
        elif isinstance(error, CouncilError):
            found.append(error)
        else:
            return None
    return found


def _report(error: CouncilError) -> None:
    console.print_error(str(error) if isinstance(error, ConfigError) else f"error: {error}")


app = typer.Typer(
    name="council",
    cls=CouncilGroup,
    help="Run several AI coding CLIs in parallel on one git repository.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    # typer's own --install-completion / --show-completion for bash, zsh, fish, PowerShell.
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(shown: bool) -> None:
    if shown:
        console.print_lines(f"council {package_version('cli-council')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version of CLI Council and exit.",
        ),
    ] = False,
) -> None:
    """Run several AI coding CLIs in parallel on one git repository."""


app.add_typer(config_cmd.app, name="config")
app.add_typer(adapters_cmd.app, name="adapters")
app.add_typer(checkpoint_cmd.app, name="checkpoint")
app.add_typer(worktrees_cmd.app, name="worktrees")
app.add_typer(db_cmd.app, name="db")
run_cmd.register(app)
cancel_cmd.register(app)
clean_cmd.register(app)
demo_cmd.register(app)
init_cmd.register(app)
doctor_cmd.register(app)


def main() -> None:
    """Console-script entry point (``council``)."""
    # This process exists for the command: the orphans of the CLIs' daemons may come to it
    # (never done where the commands run inside another program, such as a test runner).
    Council.adopt_orphans()
    console.show_log_warnings()  # warnings as readable lines, not the last-resort handler's
    app(prog_name="council")


if __name__ == "__main__":
    main()
