"""``council state conflicts|resolve|verify``: the state store's conflicts and health.

- ``conflicts FILE [--json]``: every pending conflict of FILE's state store, oldest first:
  its id (what ``resolve`` needs, never cut), the record, the versions and the fields both
  sides changed.
- ``resolve FILE CONFLICT_ID --take ours|theirs|merge``: write the late change (``ours``),
  keep what the record holds (``theirs``) or combine them (``merge``; refused, naming the
  fields, when both set one differently). Refused when the record moved again since the
  conflict was kept (look again, then resolve); the conflict goes once settled.
- ``history FILE KEY [--kind KIND] [--limit N] [--json]``: a record's versions, oldest
  first, each with what changed from the one before (values, not only names: ``status:
  "queued" -> "running"``): every version, those compacted into the store's history archive
  too, or the newest N. KIND is tasks (the default), sessions, counters or a namespace of
  keyed records.
- ``diff FILE KEY V1 V2 [--kind KIND]``: what changed between any two of those versions.
- ``health FILE [--json]`` and ``import-legacy FILE [LEGACY]``: ``state_health_cmd``.
- ``schema``: the JSON Schema of a task record as the store keeps it, its ``metadata`` spelled
  out part by part (``orchestrator.task_meta``).
- ``verify FILE [--json]``: read every record of FILE's store and check it (checksum,
  schema); a damaged one is quarantined and, where its history allows, recovered. Each
  problem is one line; exit 1 when any was found, 0 when the store is sound.

The strategies themselves are ``orchestrator.state.conflicts``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli import console, event_loop
from orchestrator.cli.store import state_health_cmd
from orchestrator.cli.store_access import open_store
from orchestrator.config.load import load_config
from orchestrator.config.run import RunConfig
from orchestrator.errors import StateError, UsageError, VersionConflict
from orchestrator.ids import check_id
from orchestrator.models import TaskState
from orchestrator.run.stores import describe_state
from orchestrator.state.conflicts import (
    MergeConflict,
    PendingConflict,
    list_conflicts,
    resolve_conflict,
)
from orchestrator.state.history_kinds import KINDS
from orchestrator.state.protocol import RecordProblem
from orchestrator.state.record_diff import field_changes
from orchestrator.task_meta import TaskMeta

__all__ = ["app"]

app = typer.Typer(
    name="state",
    help="Settle the store's conflicts, verify its records, show their history and health.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("health")(state_health_cmd.health)
app.command("import-legacy")(state_health_cmd.import_legacy)

FileArg = Annotated[Path, typer.Argument(help="The run config (YAML) whose store to use.")]
_COLUMNS = (
    console.Column("conflict", key=True),
    console.Column("record", key=True),
    console.Column("versions", drop=1),
    console.Column("fields", wraps=True),
)


class Take(StrEnum):
    OURS = "ours"
    THEIRS = "theirs"
    MERGE = "merge"


def task_record_json_schema() -> dict[str, Any]:
    """The JSON Schema of a task record (``TaskState``), its ``metadata`` as
    ``TaskMeta.json_schema``."""
    schema = TaskState.model_json_schema(mode="serialization")
    meta = TaskMeta.json_schema()
    defs = {**schema.get("$defs", {}), **meta.pop("$defs", {}), "TaskMetadata": meta}
    properties = {**schema["properties"], "metadata": {"$ref": "#/$defs/TaskMetadata"}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "properties": properties,
        "$defs": defs,
    }


@app.command()
def schema() -> None:
    """Print the JSON Schema of a task record, its metadata part by part."""
    console.print_lines(json.dumps(task_record_json_schema(), indent=2))


@app.command()
def conflicts(
    file: FileArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
) -> None:
    """List the pending conflicts of FILE's store, oldest first."""
    config = load_config(file)

    async def read() -> list[PendingConflict]:
        async with open_store(config) as store:
            return await list_conflicts(store)

    pending = event_loop.run(read)
    if as_json:
        console.print_lines(json.dumps([asdict(c) for c in pending], indent=2))
    elif not pending:
        console.print_lines("no pending conflicts")
    else:
        rows = [
            (
                c.conflict_id,
                f"{c.namespace}/{c.key}",
                f"{c.base_version} -> {c.theirs_version}",
                ", ".join(c.fields) or "-",
            )
            for c in pending
        ]
        title = f"{len(rows)} pending conflict{'' if len(rows) == 1 else 's'}"
        console.print_table(_COLUMNS, rows, title=title)


@app.command()
def resolve(
    file: FileArg,
    conflict_id: Annotated[str, typer.Argument(help="The conflict (council state conflicts).")],
    take: Annotated[
        Take, typer.Option("--take", help="ours (the late write), theirs, or merge both.")
    ],
) -> None:
    """Settle a pending conflict of FILE's store."""
    config = load_config(file)

    async def settle() -> str:
        async with open_store(config) as store:
            known = {c.conflict_id for c in await list_conflicts(store)}
            if conflict_id not in known:
                raise UsageError(
                    f"no pending conflict {conflict_id!r}; `council state conflicts {file}` "
                    "lists them"
                )
            try:
                record = await resolve_conflict(store, conflict_id, take.value)
            except VersionConflict:
                raise UsageError(
                    f"the record of {conflict_id} changed again since; look at it and resolve again"
                ) from None
            except MergeConflict as clash:
                raise UsageError(f"{clash}; take ours or theirs instead") from None
            if isinstance(record, TaskState):
                return f"task {record.task_id} is at version {record.version}"
            return f"{record.namespace}/{record.key} is at version {record.version}"

    console.print_success(f"resolved {conflict_id} ({take.value}): {event_loop.run(settle)}")


@app.command()
def verify(
    file: FileArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the problems as JSON.")] = False,
) -> None:
    """Check every record of FILE's store; exit 1 when any is damaged."""
    config = load_config(file)
    # Each problem is said once, below, not also as the store's own recovery warning.
    console.skip_warnings_for(("state.recovered", "state.quarantined"))

    async def check() -> list[RecordProblem]:
        async with open_store(config) as store:
            return await store.verify_records()

    problems = event_loop.run(check)
    if as_json:
        console.print_lines(json.dumps([p.model_dump() for p in problems], indent=2))
    elif not problems:
        console.print_success("every record is sound")
    for problem in problems if not as_json else []:
        fate = "recovered from its history" if problem.recovered else "NOT recovered"
        detail = f" ({problem.detail})" if problem.detail else ""
        console.print_warning(f"{problem.kind}/{problem.key}: {problem.reason}{detail}: {fate}")
    if problems:
        raise typer.Exit(1)


KindOption = Annotated[
    str,
    typer.Option(
        "--kind",
        help="tasks, sessions, counters, or a namespace of keyed records (records/NAME or NAME).",
    ),
]


def _kind(kind: str) -> str:
    """The protocol's name of ``--kind``: a bare namespace means its keyed records."""
    return kind if kind in KINDS or kind.startswith("records/") else f"records/{kind}"


def _named(kind: str, key: str) -> str:
    singular = {"tasks": "task", "sessions": "session", "counters": "counter"}
    if kind in singular:
        return f"{singular[kind]} {key!r}"
    return f"record {kind.removeprefix('records/')}/{key}"


async def _versions(
    config: RunConfig, kind: str, key: str, limit: int | None = None
) -> list[dict[str, Any]]:
    """The record's versions, oldest first (the current one last): the newest ``limit`` and
    the one before them (to say what the oldest shown changed), or every one."""
    check_id(key, f"{kind} key")
    async with open_store(config) as store:
        try:
            found = await store.record_history(
                kind, key, limit=None if limit is None else limit + 1
            )
        except StateError as exc:
            raise UsageError(str(exc)) from None
    if not found:
        raise UsageError(f"no {_named(kind, key)} in {describe_state(config)}")
    return found[::-1]


@app.command()
def history(
    file: FileArg,
    key: Annotated[str, typer.Argument(help="The record (a task id unless --kind says).")],
    kind: KindOption = "tasks",
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the newest N versions.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
) -> None:
    """Show a record's versions, oldest first, with what each changed (archived ones too)."""
    kind = _kind(kind)
    versions = event_loop.run(_versions, load_config(file), kind, key, limit)
    # Each version against the one before it; the oldest kept has nothing to compare with.
    steps = [
        (new, field_changes(old, new) if old is not None else None)
        for old, new in zip([None, *versions], versions, strict=False)
    ]
    if limit is not None:
        steps = steps[-limit:]
    if as_json:
        data = [
            {
                "version": new["version"],
                "updated_at": new["updated_at"],
                "changes": None if changes is None else [asdict(c) for c in changes],
            }
            for new, changes in steps
        ]
        console.print_lines(json.dumps(data, indent=2, default=str))
        return
    for new, changes in steps:
        said = "(the oldest kept)" if changes is None else "; ".join(c.text() for c in changes)
        console.print_lines(f"v{new['version']} {new['updated_at']}: {said or 'no change'}")


@app.command()
def diff(
    file: FileArg,
    key: Annotated[str, typer.Argument(help="The record (a task id unless --kind says).")],
    first: Annotated[int, typer.Argument(help="A version (council state history).")],
    second: Annotated[int, typer.Argument(help="Another version.")],
    kind: KindOption = "tasks",
) -> None:
    """Show what changed in a record between two of its versions (archived ones too)."""
    kind = _kind(kind)
    versions = {v["version"]: v for v in event_loop.run(_versions, load_config(file), kind, key)}
    missing = [v for v in (first, second) if v not in versions]
    if missing:
        kept = f"{min(versions)}-{max(versions)}"
        raise UsageError(f"{_named(kind, key)} has no version {missing[0]} kept (kept: {kept})")
    changes = field_changes(versions[first], versions[second])
    console.print_lines("\n".join(c.text() for c in changes) or "no change")
