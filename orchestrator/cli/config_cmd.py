"""``council config``: check a run config file, and print the JSON Schema it follows."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli import console
from orchestrator.config.load import RunConfig, load_config, run_config_json_schema
from orchestrator.errors import ConfigError
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
) -> None:
    """Check FILE without running anything; exit 0 when valid, 2 with every problem if not."""
    source = str(file)
    try:
        config = load_config(
            file,
            options_models=plugins.default_plugins().registry.options_models(),
            environ=os.environ,
        )
    except ConfigError as exc:
        if as_json:
            _print_json(source, exc, None)
        else:
            console.print_error(str(exc))
        raise typer.Exit(2) from None
    summary = _summary(config)
    if as_json:
        _print_json(source, None, summary)
        return
    console.print_success(
        f"{source}: OK ({_plural(summary['tasks'], 'task')}, "
        f"{_plural(summary['phases'], 'phase')}, {_plural(summary['adapters'], 'adapter')})"
    )


def _print_json(source: str, error: ConfigError | None, summary: dict[str, int] | None) -> None:
    issues: list[dict[str, Any]] = [
        {"file": issue.file, "line": issue.line, "field": issue.field, "message": issue.message}
        for issue in (error.issues if error else [])
    ]
    result = {"file": source, "valid": error is None, "issues": issues, "summary": summary}
    console.print_lines(json.dumps(result, indent=2))


@app.command()
def schema() -> None:
    """Print the JSON Schema of run config files (for editors and CI checks)."""
    models = plugins.default_plugins().registry.options_models()
    console.print_lines(json.dumps(run_config_json_schema(models), indent=2))
