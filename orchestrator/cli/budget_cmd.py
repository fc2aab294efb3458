"""``council budget raise FILE SCOPE --usd N --tokens N``: more room for a budget of a run.

SCOPE is ``run``, ``task`` (every task's budget) or an adapter's name. The raised limit is kept
in the store beside the run (``spend.raising``, per session), laid over the config's
``budgets:``: a running ``council serve`` or ``council run`` reads it at its next tick and
starts what the budget held; a run that ended held by that budget goes on with ``council
resume FILE``. Editing ``budgets:`` in FILE and resuming does the same: of the config's limit
and a raised one, the larger holds (a raise never lowers a limit). ``council budget show FILE``
prints the budgets in force.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli import console, event_loop
from orchestrator.cli.meant import file_and, meant_config, split_file_and
from orchestrator.cli.store_access import open_store, pick_session
from orchestrator.config.budgets import Limit
from orchestrator.config.load import load_config
from orchestrator.config.run import RunConfig
from orchestrator.errors import UsageError
from orchestrator.run.stores import describe_state
from orchestrator.spend.budgets import raised
from orchestrator.spend.raising import RAISES, raise_budget

__all__ = ["app"]

app = typer.Typer(
    name="budget",
    help="Raise a budget of an unfinished run, so a held run goes on where it stood.",
    no_args_is_help=True,
    add_completion=False,
)

FileArg = Annotated[
    Path | None, typer.Argument(help="The run config of the run (default: the one meant here).")
]
SessionOption = Annotated[
    str | None, typer.Option("--session", help="Session id (default: the newest run).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@app.command("raise")
def raise_(
    args: Annotated[
        list[str],
        file_and("SCOPE", "the budget: run, task (each task's budget), or an adapter's name."),
    ],
    usd: Annotated[float | None, typer.Option("--usd", help="The new limit in US dollars.")] = None,
    tokens: Annotated[int | None, typer.Option("--tokens", help="The new token limit.")] = None,
    session: SessionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give budget SCOPE of the newest run of FILE a new limit."""
    file, scope = split_file_and(args, "budget raise", "SCOPE")
    if usd is None and tokens is None:
        raise UsageError("give the new limit: --usd, --tokens or both")
    if (usd is not None and usd <= 0) or (tokens is not None and tokens <= 0):
        raise UsageError("--usd and --tokens must be above 0")
    config = load_config(file)
    if scope not in ("run", "task") and scope not in config.budgets.adapters:
        known = ", ".join(["run", "task", *config.budgets.adapters])
        raise UsageError(f"no budget {scope!r} in {file} (budgets: {known})")
    new = {"usd": usd, "tokens": tokens}
    result = event_loop.run(_raise, config, scope, new, session)
    if as_json:
        console.print_lines(json.dumps(result, indent=2))
    else:
        console.print_success(
            f"budget {scope} of session {result['session_id']} is now {result['limit']}; a "
            f"running orchestrator goes on at its next tick, else `council resume {file}`"
        )


async def _raise(
    config: RunConfig, scope: str, new: dict[str, Any], session_id: str | None
) -> dict[str, Any]:
    async with open_store(config) as store:
        session = await pick_session(
            store, session_id, unfinished=False, place=describe_state(config), config=config
        )
        sid = session.session_id
        limit = await raise_budget(store, config.budgets, sid, scope, new)
        return {"session_id": sid, "scope": scope, "limit": limit.said(), **limit.model_dump()}


@app.command("show")
def show(file: FileArg = None, session: SessionOption = None, as_json: JsonOption = False) -> None:
    """Print the budgets in force for the newest run of FILE (the config's, raised)."""
    file = meant_config(file, "budget show")
    config = load_config(file)
    sid, budgets = event_loop.run(_show, config, session)
    if as_json:
        console.print_lines(json.dumps({"session_id": sid, **budgets}, indent=2))
        return
    if not any(budgets.get(k) for k in ("run", "task", "adapters")):
        console.print_lines(f"session {sid}: no budgets (set `budgets:` in {file})")
        return
    for name in ("run", "task"):
        if budgets.get(name):
            console.print_lines(f"{name}: {Limit.model_validate(budgets[name]).said()}")
    for name, limit in (budgets.get("adapters") or {}).items():
        console.print_lines(f"adapter {name}: {Limit.model_validate(limit).said()}")
    console.print_lines(f"on_exceed: {budgets['on_exceed']}")


async def _show(config: RunConfig, session_id: str | None) -> tuple[str, dict[str, Any]]:
    async with open_store(config) as store:
        session = await pick_session(
            store, session_id, unfinished=False, place=describe_state(config), config=config
        )
        record = await store.get_record(RAISES, session.session_id)
        budgets = raised(config.budgets, record.data if record is not None else {})
        return session.session_id, budgets.model_dump(mode="json")
