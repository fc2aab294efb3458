"""``council checkpoint create|list|restore``: snapshots of a run's session and tasks.

- ``create FILE [--reason TEXT] [--session ID]``: snapshot the newest session (or ``--session``).
- ``list FILE [--session ID] [--json] [--wide]``: the checkpoints kept in FILE's store, oldest
  first; their ids are never cut (``restore`` needs them whole).
- ``restore FILE CHECKPOINT_ID``: put the session and its tasks back as the checkpoint holds
  them. Refused while a live orchestrator runs that session (it would overwrite the restore,
  or act on tasks that changed under it); stop it first, restore, then ``council resume``.
  Cancel requests made after the checkpoint are dropped with the rest of what it undoes.

Restoring changes the state store only: branches, worktrees and merged commits stay as they
are, so nothing that was done is lost; the merge queue recognises work that already landed by
its commit trailer and never merges a task twice.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli import console, event_loop
from orchestrator.cli.meant import file_and, meant_config, split_file_and
from orchestrator.cli.store_access import open_store, pick_session, running_process
from orchestrator.config.load import load_config
from orchestrator.config.run import RunConfig
from orchestrator.errors import RecordNotFound, RunError, UsageError
from orchestrator.ids import check_id
from orchestrator.models import ACTIVE_SESSION_STATUSES, CheckpointInfo, SessionSnapshot
from orchestrator.run.stores import describe_state
from orchestrator.scheduler.cancel import CANCEL_REQUESTS, clear_cancel

__all__ = ["app"]

app = typer.Typer(
    name="checkpoint",
    help="Create, list and restore checkpoints of a run.",
    no_args_is_help=True,
    add_completion=False,
)

FileArg = Annotated[
    Path | None, typer.Argument(help="The run config of the run (default: the one meant here).")
]
SessionOption = Annotated[
    str | None, typer.Option("--session", help="Session id (default: the newest).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
WideOption = Annotated[bool, typer.Option("--wide", help="Show every column whole.")]
# The checkpoint id is what `restore` needs: a key, never cut.
_COLUMNS = (
    console.Column("checkpoint", key=True),
    console.Column("session", key=True),
    console.Column("created", drop=1),
    console.Column("reason", wraps=True),
    console.Column("tasks", drop=2),
)


@app.command()
def create(
    file: FileArg = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (shown by list).")] = "manual",
    session: SessionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Snapshot the newest session of FILE (its record and every task's state)."""
    info = event_loop.run(_create, load_config(meant_config(file, "checkpoint")), session, reason)
    if as_json:
        console.print_lines(info.model_dump_json(indent=2))
    else:
        console.print_success(
            f"checkpoint {info.checkpoint_id} of session {info.session_id}: "
            f"{info.task_count} tasks ({info.reason})"
        )


@app.command("list")
def list_(
    file: FileArg = None,
    session: SessionOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """List the checkpoints of FILE's runs, oldest first."""
    config = load_config(meant_config(file, "checkpoint list"))
    infos = event_loop.run(_list, config, session)
    if as_json:
        console.print_lines(json.dumps([i.model_dump(mode="json") for i in infos], indent=2))
    elif not infos:
        console.print_lines(f"no checkpoints in {config.state_dir}")
    else:
        title = f"{len(infos)} checkpoint{'' if len(infos) == 1 else 's'}"
        console.print_table(_COLUMNS, map(_row, infos), title=title, wide=wide)


@app.command()
def restore(
    args: Annotated[list[str], file_and("CHECKPOINT_ID", "the checkpoint (see list).")],
    as_json: JsonOption = False,
) -> None:
    """Put a session and its tasks back as checkpoint CHECKPOINT_ID holds them."""
    file, checkpoint_id = split_file_and(args, "checkpoint restore", "CHECKPOINT_ID")
    checked = check_id(checkpoint_id, "checkpoint id")
    snapshot = event_loop.run(_restore, load_config(file), checked)
    if as_json:
        console.print_lines(snapshot.model_dump_json(indent=2))
        return
    session = snapshot.session
    counts = Counter(str(t.status) for t in snapshot.tasks)
    spread = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no tasks"
    console.print_success(
        f"restored session {session.session_id} from checkpoint {checkpoint_id}: "
        f"{session.status}, {spread}"
    )
    if session.status in ACTIVE_SESSION_STATUSES:
        console.print_lines(f"continue it with: council resume {file}")


def _row(info: CheckpointInfo) -> tuple[object, ...]:
    created = f"{info.created_at:%Y-%m-%d %H:%M:%S}"
    return (info.checkpoint_id, info.session_id, created, info.reason, info.task_count)


async def _create(config: RunConfig, session_id: str | None, reason: str) -> CheckpointInfo:
    async with open_store(config) as store:
        session = await pick_session(
            store, session_id, unfinished=False, place=describe_state(config), config=config
        )
        return await store.create_checkpoint(session.session_id, reason)


async def _list(config: RunConfig, session_id: str | None) -> list[CheckpointInfo]:
    async with open_store(config) as store:
        if session_id is not None:
            await pick_session(
                store, session_id, unfinished=False, place=describe_state(config), config=config
            )  # an unknown id is an error
        return await store.list_checkpoints(session_id)


async def _restore(config: RunConfig, checkpoint_id: str) -> SessionSnapshot:
    async with open_store(config) as store:
        try:
            checkpoint = await store.get_checkpoint(checkpoint_id)
        except RecordNotFound:
            raise UsageError(
                f"checkpoint {checkpoint_id!r} does not exist in {describe_state(config)} "
                "(see `council checkpoint list`)"
            ) from None
        sid = checkpoint.session_id
        current = await store.get_session(sid)
        if current is not None:
            runner = running_process(current, await store.list_tasks(sid))
            if runner is not None:
                raise RunError(
                    f"session {sid} is being run by process {runner.pid} on {runner.host}; "
                    "stop it (Ctrl-C) before restoring a checkpoint"
                )
        snapshot = await store.restore_checkpoint(checkpoint_id)
        # Cancel requests made after the checkpoint are undone with everything else; a
        # resumed run would otherwise carry them out first thing.
        for request in await store.list_records(CANCEL_REQUESTS):
            if request.data.get("session_id") == sid and request.updated_at > checkpoint.created_at:
                await clear_cancel(store, request.key)
        return snapshot
