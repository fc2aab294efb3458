"""``council config``: check a run config file (``orchestrator.run.config_check``), and print
the JSON Schema it follows."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli import console, event_loop
from orchestrator.config.load import RunConfig, run_config_json_schema
from orchestrator.errors import ConfigIssue
from orchestrator.plugins import host as plugins

__all__ = ["app"]

app = typer.Typer(
    name="config", help="Check run config files.", no_args_is_help=True, add_completion=False
)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _summary(config: RunConfig) -> dict[str, int]:
    return {
        "tasks": len(config.tasks),
        "phases": len(config.workflow.phases),
        "adapters": len(config.adapters),
    }


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="Run config (YAML) to check.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON object.")
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Count what this machine lacks for the run (a CLI, the repository) as errors.",
        ),
    ] = False,
) -> None:
    """Check FILE without running anything: every problem, and all that `council run` would
    refuse before starting, one line each (`file:line: field: message`). What only this
    machine lacks (a CLI not installed, the repository) is a warning unless --strict. Exit 0
    when valid, 2 if not."""
    # Imported here: the checks reach the workflow and the scheduler, which `council --help`
    # and the other commands must not pay for.
    from orchestrator.run.config_check import validate_config

    host = plugins.default_plugins()
    found = event_loop.run(
        functools.partial(validate_config, forges=host.forges), file, host.registry, os.environ
    )
    errors, warnings = found.errors, found.warnings
    if strict:
        errors, warnings = sorted([*errors, *warnings], key=_line), []
    # What the file allows but most likely did not mean (a phase `biuld`, no `build`): a
    # warning here and with --strict alike, since nothing stops the run.
    slips = found.slips
    if as_json:
        _print_json(found.source, errors, sorted([*warnings, *slips], key=_line), found.config)
    else:
        if errors:
            console.print_error("\n".join(str(issue) for issue in errors))
        shown = sorted([*warnings, *slips], key=_line)
        if shown:
            console.print_warning("\n".join(f"warning: {issue}" for issue in shown))
        if found.config is not None and not errors:
            counts = _counts(found.config, warnings, slips)
            console.print_success(f"{found.source}: OK ({counts})")
    if errors:
        raise typer.Exit(2)


def _line(issue: ConfigIssue) -> int:
    return issue.line or 0


def _counts(config: RunConfig, warnings: list[ConfigIssue], slips: list[ConfigIssue]) -> str:
    summary = _summary(config)
    counts = (
        f"{_plural(summary['tasks'], 'task')}, {_plural(summary['phases'], 'phase')}, "
        f"{_plural(summary['adapters'], 'adapter')}"
    )
    if warnings:
        counts += f"; {_plural(len(warnings), 'warning')}: `council run` would refuse to start here"
    if slips:
        counts += f"; {_plural(len(slips), 'possible misspelling')}"
    return counts


def _print_json(
    source: str,
    errors: list[ConfigIssue],
    warnings: list[ConfigIssue],
    config: RunConfig | None,
) -> None:
    valid = config is not None and not errors
    result = {
        "file": source,
        "valid": valid,
        "issues": [_issue_json(issue) for issue in errors],
        "warnings": [_issue_json(issue) for issue in warnings],
        "summary": _summary(config) if valid and config is not None else None,
    }
    console.print_lines(json.dumps(result, indent=2))


def _issue_json(issue: ConfigIssue) -> dict[str, Any]:
    return {"file": issue.file, "line": issue.line, "field": issue.field, "message": issue.message}


@app.command()
def schema() -> None:
    """Print the JSON Schema of run config files (for editors and CI checks)."""
    models = plugins.default_plugins().registry.options_models()
    console.print_lines(json.dumps(run_config_json_schema(models), indent=2))
