"""``council state health`` and ``council state import-legacy``: how the store is doing, and
bringing in the state of the tool CLI Council replaces.

- ``health FILE [--json] [--large-record SIZE]``: the store's health report
  (``StateStore.health``): record counts per kind, damaged records, stale locks, the oldest
  active claim, the largest records and those over the size threshold (default
  ``state.monitor.large_record``), the event log's size, the newest checkpoint's age, and the
  backend's own figures (free disk space; a database's latency, schema version and table
  sizes). Then each finding, a problem or a warning. Exit 1 when the store is unhealthy (a
  problem was found), 0 otherwise (warnings alone do not fail it).
- ``import-legacy FILE [LEGACY]``: import the old single-file state
  (``.worktrees/.parallel-dev-state.json`` of FILE's repository unless LEGACY names another)
  into FILE's store (``state.legacy``). The file is backed up first and never changed;
  importing again skips the sessions already there. A file that is not one is refused,
  naming it, with nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ByteSize, TypeAdapter, ValidationError

from orchestrator.cli import console, event_loop
from orchestrator.cli.store_access import open_store
from orchestrator.config.durations import format_duration
from orchestrator.config.load import load_config
from orchestrator.config.run import RunConfig
from orchestrator.errors import StateError, UsageError
from orchestrator.run.stores import describe_state, open_run_store
from orchestrator.state.health import StoreHealth
from orchestrator.state.legacy import LEGACY_STATE_PATH, LegacyImportReport, import_legacy_state

__all__ = ["health", "health_lines", "import_legacy"]

FileArg = Annotated[Path, typer.Argument(help="The run config (YAML) whose store to use.")]


def health(
    file: FileArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    large_record: Annotated[
        str | None,
        typer.Option(
            "--large-record",
            help="Flag records bigger than this (512KiB, 2MB; default state.monitor.large_record).",
        ),
    ] = None,
) -> None:
    """Report the health of FILE's store; exit 1 when it is unhealthy."""
    config = load_config(file)
    threshold = _size(large_record) if large_record else int(config.state.monitor.large_record)

    async def look() -> StoreHealth:
        async with open_store(config) as store:
            return await store.health(large_record_bytes=threshold)

    report = event_loop.run(look)
    if as_json:
        data = report.model_dump(mode="json")
        data |= {"healthy": report.healthy, "last_checkpoint_age": report.last_checkpoint_age}
        console.print_lines(json.dumps(data, indent=2))
    else:
        verdict = "healthy" if report.healthy else "UNHEALTHY"
        rows = health_lines(report)
        console.print_table(
            ("what", console.Column("found", wraps=True)),
            rows,
            title=f"{report.where} ({report.backend}): {verdict}",
        )
        for finding in report.findings:
            say = console.print_error if finding.level == "problem" else console.print_warning
            say(f"{finding.level}: {finding.text}")
    if not report.healthy:
        raise typer.Exit(1)


def health_lines(report: StoreHealth) -> list[tuple[str, str]]:
    """The report as (what, found) lines, for the table and ``council doctor``."""
    counts = ", ".join(f"{kind} {n}" for kind, n in sorted(report.record_counts.items()))
    claim = report.oldest_active_claim
    age = report.last_checkpoint_age
    rows = [
        ("records", counts or "none"),
        ("damaged", ", ".join(f"{d.kind}/{d.key}" for d in report.damaged) or "none"),
        ("stale locks", str(report.stale_locks)),
        (
            "oldest active claim",
            "none"
            if claim is None
            else f"{claim.task_id} by {claim.holder} since {claim.acquired_at:%Y-%m-%d %H:%M:%S}",
        ),
        (
            "largest records",
            ", ".join(f"{s.kind}/{s.key} {_bytes(s.size)}" for s in report.largest_records)
            or "none",
        ),
        (
            f"over {_bytes(report.large_record_bytes)}",
            ", ".join(f"{s.kind}/{s.key}" for s in report.over_threshold) or "none",
        ),
        ("event log", _bytes(report.event_log_bytes)),
        ("last checkpoint", "none" if age is None else f"{format_duration(round(age))} ago"),
    ]
    details = report.backend_details
    if report.backend == "file":
        free = details.get("free_disk_bytes")
        rows.append(("free disk", "unknown" if free is None else _bytes(free)))
        rows.append(("event archives", str(details.get("event_archives", 0))))
    else:
        rows.append(("latency", f"{details.get('latency_ms')} ms"))
        rows.append(
            (
                "schema version",
                f"{details.get('schema_version')} (this release: "
                f"{details.get('schema_version_known')})",
            )
        )
        tables = details.get("table_bytes", {})
        rows.append(("table sizes", ", ".join(f"{t} {_bytes(n)}" for t, n in tables.items())))
    return rows


def import_legacy(
    file: FileArg,
    legacy: Annotated[
        Path | None,
        typer.Argument(
            help="The legacy state file (default: .worktrees/.parallel-dev-state.json "
            "of the config's repository)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Import the old single-file state into FILE's store (again: skips what is there)."""
    config = load_config(file)
    source = legacy if legacy is not None else config.repo / LEGACY_STATE_PATH
    try:
        report = event_loop.run(_import, config, source)
    except StateError as exc:
        raise UsageError(str(exc)) from None  # names the file and what is wrong with it
    if as_json:
        console.print_lines(report.model_dump_json(indent=2))
        return
    imported, skipped = report.sessions_imported, report.sessions_skipped
    console.print_success(
        f"imported {len(imported)} session(s) with {report.tasks_imported} task(s) from "
        f"{report.source} into {describe_state(config)}"
        + (f"; skipped {len(skipped)} already there" if skipped else "")
    )
    if imported:
        console.print_lines("imported: " + ", ".join(imported))
    if skipped:
        console.print_lines("skipped: " + ", ".join(skipped))
    console.print_lines(f"the original is untouched; a backup is at {report.backup}")


async def _import(config: RunConfig, source: Path) -> LegacyImportReport:
    store = await open_run_store(config)  # made when absent: importing may come first
    try:
        return await import_legacy_state(store, source)
    finally:
        await store.aclose()


def _size(text: str) -> int:
    try:
        size = int(TypeAdapter(ByteSize).validate_python(text))
    except ValidationError:
        raise UsageError(f"--large-record: {text!r} is not a size (512KiB, 2MB)") from None
    if size <= 0:
        raise UsageError("--large-record: must be more than 0 bytes")
    return size


def _bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
