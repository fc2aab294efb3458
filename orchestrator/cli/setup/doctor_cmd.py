"""``council doctor [FILE]``: is everything a run needs in place? One checklist, a fix for
each failure.

It checks git (installed, recent enough), the repository (a checkout's top level, the base
branch, whether the checkout holding the base is clean, ``.council`` writable), each CLI (on
PATH, its version, its login) and the state store (the file store reads back; a team's
database is reachable with a schema this release can use): ``orchestrator.run.doctor``.
``--live`` also runs each CLI for real against a local fake model, as ``council adapters check
--live`` does (offline, seconds per CLI).

Without FILE it reads ``council.yaml`` when the current directory has one; otherwise it checks
git, the repository it stands in and the CLIs found on this machine. On a terminal the
checklist has a mark per line; piped, each line starts with its verdict (``OK`` or ``FAIL``);
``--json`` prints the same data. A run config is first checked as ``council config validate``
checks it. Exit codes: 0 nothing failed, 1 some check failed, 2 the run config is invalid
(each of its errors on a line of its own).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli import console, event_loop
from orchestrator.cli.setup.adapters_live import LiveReport, live_check, live_targets
from orchestrator.config.run import RunConfig
from orchestrator.plugins import host as plugins
from orchestrator.plugins.registry import AdapterRegistry
from orchestrator.run.doctor.checklist import GROUPS, Check, Status
from orchestrator.run.doctor.examine import Examination, examine
from orchestrator.run.setup.cli_fixes import install_fix

__all__ = ["DEFAULT_CONFIG", "doctor"]

DEFAULT_CONFIG = Path("council.yaml")
_TITLES = {
    "git": "git",
    "sandbox": "sandbox",
    "repository": "repository",
    "cli": "CLIs",
    "state": "state store",
}


def doctor(
    file: Annotated[
        Path | None,
        typer.Argument(help="The run config to check (default: ./council.yaml, if there)."),
    ] = None,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Also run a real write task through each CLI against a local fake model "
            "(offline, seconds per CLI): does this release of it work with CLI Council?",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check that a run can work here: git, the repository, each CLI and its login, the store.

    Each failure comes with a one-line fix. Exit 0 when nothing failed, 1 when a check
    failed, 2 on a bad config."""
    if file is None and DEFAULT_CONFIG.is_file():
        file = DEFAULT_CONFIG
    registry = plugins.default_plugins().registry
    config = None if file is None else _valid_config(file, registry)
    checks = event_loop.run(_checks, config, registry, str(file) if file else None, live)
    checks.sort(key=lambda check: GROUPS.index(check.group))  # stable: order within a group
    failed = [check for check in checks if check.status is Status.FAIL]
    if as_json:
        result = {
            "file": str(file) if file else None,
            "ok": not failed,
            "checks": [asdict(check) for check in checks],
        }
        console.print_lines(json.dumps(result, indent=2))
    else:
        _print(checks, file, failed)
    if failed:
        raise typer.Exit(1)


def _valid_config(file: Path, registry: AdapterRegistry) -> RunConfig:
    """``file`` checked as ``council config validate`` checks it; every error (one line each)
    and exit code 2 when it is invalid. What this machine lacks is for the checklist."""
    from orchestrator.run.config_check import validate_config  # reaches the scheduler: lazily

    found = event_loop.run(validate_config, file, registry, os.environ)
    if found.errors or found.config is None:
        console.print_error("\n".join(str(issue) for issue in found.errors))
        raise typer.Exit(2)
    return found.config


async def _checks(
    config: RunConfig | None, registry: AdapterRegistry, source: str | None, live: bool
) -> list[Check]:
    found = await examine(config, registry, cwd=Path.cwd(), source=source)
    if live:
        found.checks += await _live_checks(found)
    return found.checks


async def _live_checks(found: Examination) -> list[Check]:
    """``adapters check --live`` for each CLI found that has a live check; by adapter type."""
    kinds = {cli.adapter_type: cli.name for cli in found.clis if cli.found}
    targets = [target for target in live_targets(None) if target.adapter_type in kinds]
    reports = await live_check(targets, console.print_progress)
    return [_live(kinds[report.adapter], report) for report in reports if report.installed]


def _live(name: str, report: LiveReport) -> Check:
    check = f"{name} works"
    seconds = f" in {report.seconds:.1f}s" if report.seconds is not None else ""
    if report.works:
        return Check.ok("cli", check, f"{report.detail}{seconds} (fake model, offline)")
    tested = install_fix(report.adapter, report.cli)
    return Check.fail(
        "cli",
        check,
        f"{report.version or report.cli}: {report.detail}",
        f"this release does not work with CLI Council: {tested} (the release tested)",
    )


def _print(checks: list[Check], file: Path | None, failed: list[Check]) -> None:
    if file is None:
        console.print_progress(
            f"no {DEFAULT_CONFIG} here: checking git, this repository and the CLIs found "
            "(council doctor FILE checks a run config)"
        )
    warned = sum(1 for check in checks if check.status is Status.WARN)
    if failed:
        summary = f"{len(failed)} of {len(checks)} checks failed"
    else:
        summary = f"all {len(checks)} checks passed"
        if warned:
            summary += f", {warned} with a warning"
    console.print_checklist(
        [
            (_TITLES[check.group], check.status.value, check.name, check.detail, check.fix)
            for check in checks
        ],
        summary,
    )
