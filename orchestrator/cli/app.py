"""The ``council`` entry point: the root typer app, its table of commands, the one error handler.

Each command is one line of ``COMMANDS``, in the order ``--help`` lists them (the first day's
first: demo, init, doctor, run): its name, where it lives and the line ``--help``
shows for it. Its module is imported only when it runs, so ``council --help`` and a light
command such as ``council status`` start without importing the run machinery (``lazy_group``).

Commands raise ``CouncilError`` subclasses and never print tracebacks for them: the handler
below turns them into a red message on stderr and an exit code, 2 when the user's input was at
fault (a bad config, an invalid value, an adapter that cannot run here) or the command was
refused before it changed anything (another orchestrator runs on the repository), and 1 for
everything else.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orchestrator.cli import console
from orchestrator.cli.lazy_group import CommandRef, LazyGroup
from orchestrator.errors import ConfigError, CouncilError, RunLocked

__all__ = [
    "COMMANDS",
    "EXIT_CODES",
    "CouncilGroup",
    "app",
    "council_errors",
    "exit_code_for",
    "main",
]

EXIT_CODES = (
    "Exit codes: 0 all done; 1 some task did not land or some check failed; "
    "2 usage or config error; 130 interrupted."
)

_CLI = "orchestrator.cli"

# name -> where it lives and its line in `council --help` (the first line of its docstring or
# its sub-app's help). Listed in this order.
COMMANDS: dict[str, CommandRef] = {
    "demo": CommandRef(
        f"{_CLI}.demo_cmd:demo",
        "Run the offline demo: three scripted CLIs, seven tasks, no network or API key.",
    ),
    "init": CommandRef(
        f"{_CLI}.setup.init_cmd:init",
        "Write a starter run config for this repository, with the CLIs installed here.",
    ),
    "doctor": CommandRef(
        f"{_CLI}.setup.doctor_cmd:doctor",
        "Check that a run can work here: git, the repository, each CLI and its login, the store.",
    ),
    "run": CommandRef(
        f"{_CLI}.run_cmd:run",
        "Run every task of FILE (or of a goal, -g) until each is merged, failed or in conflict.",
    ),
    "plan": CommandRef(
        f"{_CLI}.goal_cmd:plan",
        "Plan GOAL into a task list with the run config's planning CLI; print it, run nothing.",
    ),
    "approve": CommandRef(
        f"{_CLI}.approve_cmd:approve",
        "Accept (or refuse) the goal plan that council run -g --approve waits on.",
    ),
    "status": CommandRef(f"{_CLI}.status.status_cmd:status", "Show the newest run's tasks."),
    "resume": CommandRef(
        f"{_CLI}.run_cmd:resume", "Continue an interrupted or killed run from where it stood."
    ),
    "cancel": CommandRef(
        f"{_CLI}.cancel_cmd:cancel", "Cancel TASK of the newest unfinished run of FILE."
    ),
    "web": CommandRef(
        f"{_CLI}.web_cmd:web",
        "Serve the run as one live page: tasks, collisions, pull requests, spend, actions.",
    ),
    "cost": CommandRef(
        f"{_CLI}.cost_cmd:cost",
        "Show what the newest run of FILE cost: by task, phase, adapter, account or day.",
    ),
    "budget": CommandRef(
        f"{_CLI}.budget_cmd:app",
        "Raise a budget of an unfinished run, so a held run goes on where it stood.",
    ),
    "serve": CommandRef(
        f"{_CLI}.run_cmd:serve",
        "Serve FILE's sources until stopped: new issues run as tasks, pull requests followed.",
    ),
    "config": CommandRef(f"{_CLI}.setup.config_cmd:app", "Check run config files."),
    "adapters": CommandRef(
        f"{_CLI}.setup.adapters_cmd:app", "List the CLI adapters and check that their CLIs work."
    ),
    "checkpoint": CommandRef(
        f"{_CLI}.checkpoint_cmd:app", "Create, list and restore checkpoints of a run."
    ),
    "worktrees": CommandRef(
        f"{_CLI}.worktrees_cmd:app",
        "List the repository's worktrees and clean up those of finished runs.",
    ),
    "clean": CommandRef(
        f"{_CLI}.clean_cmd:clean",
        "Remove old finished sessions and the worktrees of finished runs; never unmerged work.",
    ),
    "state": CommandRef(
        f"{_CLI}.store.state_cmd:app",
        "Settle the store's conflicts, verify its records, show their history and health.",
    ),
    "mcp": CommandRef(
        f"{_CLI}.mcp_cmd:mcp",
        "Serve the council's MCP tools over stdio: a session's, or read-only for FILE's run.",
    ),
    "db": CommandRef(
        f"{_CLI}.store.db_cmd:app",
        "Start, stop and locate a throwaway local PostgreSQL server for team mode.",
    ),
}


def exit_code_for(error: CouncilError) -> int:
    """2 when the user's input is at fault or the command was refused, 1 otherwise."""
    # CouncilErrors that are also ValueErrors (InvalidIdError, PathEscapeError,
    # AdapterUnavailable, UnusableRepository) mean a value the user supplied was refused.
    return 2 if isinstance(error, ConfigError | ValueError | RunLocked) else 1


class CouncilGroup(LazyGroup):
    """The root command group: the commands of ``COMMANDS``, each run inside its ``invoke``."""

    lazy_commands = COMMANDS

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # Drawn from the table, without typer's help renderer and its imports (``root_help``).
        from orchestrator.cli.root_help import print_root_help

        print_root_help(self, ctx)

    def invoke(self, ctx: Any) -> Any:
        # The command's words, read before click's own invoke takes them out of the context.
        words = [*getattr(ctx, "_protected_args", ()), *ctx.args]
        wants_json = "--json" in (words[: words.index("--")] if "--" in words else words)
        try:
            return super().invoke(ctx)
        except CouncilError as exc:
            _report(exc)
            _json_error(wants_json, [exc], exit_code_for(exc))
            raise typer.Exit(exit_code_for(exc)) from None
        except KeyboardInterrupt:
            # click would say "Aborted!" and exit 1, which reads as a failure.
            console.print_error("interrupted")
            _json_error(wants_json, [], 130, "interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader of the output went away (``council status | head -1``): as a shell
            # says it, not a traceback, nor an error at exit when Python flushes stdout.
            console.stdout_gone()
            console.print_error("the output's reader went away (broken pipe)")
            raise typer.Exit(141) from None
        except BaseExceptionGroup as group:
            # A run's error comes up through the task group that also ran the live table
            # and the signal handler: it is still one error of ours, not a crash.
            errors = council_errors(group)
            if errors is None:
                raise
            for error in errors:
                _report(error)
            _json_error(wants_json, errors, max(map(exit_code_for, errors)))
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


def _json_error(wanted: bool, errors: list[CouncilError], code: int, said: str = "") -> None:
    """With ``--json``, the error as JSON on stdout too: a script reading stdout gets an
    object saying what went wrong, never an empty string."""
    if not wanted:
        return
    import json  # only on this path

    messages = [str(error) for error in errors] or [said]
    issues = [
        {"file": i.file, "line": i.line, "field": i.field, "message": i.message}
        for error in errors
        if isinstance(error, ConfigError)
        for i in error.issues
    ]
    body: dict[str, Any] = {"error": "\n".join(messages), "exit_code": code}
    if issues:
        body["issues"] = issues
    console.print_lines(json.dumps(body, indent=2))


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
        from importlib.metadata import version as package_version  # 20 ms only --version needs

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


def main() -> None:
    """Console-script entry point (``council``)."""
    # This process exists for the command: the orphans of the CLIs' daemons may come to it
    # (never done where the commands run inside another program, such as a test runner).
    # ``Council.adopt_orphans()`` is this call; importing ``Council`` would cost every command
    # the whole run machinery.
    from orchestrator.cli import startup_gc
    from orchestrator.process.allocator import limit_arenas
    from orchestrator.process.subreaper import become_subreaper

    startup_gc.hold()  # until the command's modules are imported (``lazy_group``)
    become_subreaper()
    limit_arenas()  # before any thread: an ended task's memory is used again, not kept
    console.show_log_warnings()  # warnings as readable lines, not the last-resort handler's
    try:
        app(prog_name="council")
    finally:
        startup_gc.ending()  # no walk of all the command left by the interpreter's exit


if __name__ == "__main__":
    main()
