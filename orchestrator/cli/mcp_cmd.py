"""``council mcp [FILE] [--session ID]``: the council's MCP server over stdio
(``orchestrator.coordination``).

With ``--session`` it is the server the orchestrator configures into a session's CLI: it runs
in the CLI's sandbox and relays each tool call to the session's socket (``COUNCIL_MCP_SOCKET``
in its environment), where the orchestrator answers for that session only; FILE is not read.
Without it, a user attaches it to their own CLI: it opens FILE's state store itself and
answers for the whole run, read-only (a note or a lock is refused). stdout is the protocol's:
nothing else is printed there. The relay imports nothing of the store, the config or git: it
starts with each CLI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli import event_loop
from orchestrator.coordination.mcp_server import serve_stdio
from orchestrator.coordination.relay import SOCKET_ENV, ask
from orchestrator.errors import UsageError
from orchestrator.ids import check_id

if TYPE_CHECKING:
    from orchestrator.config.run import RunConfig

__all__ = ["mcp"]


def mcp(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="The run config whose run to answer for (read-only).", show_default=False
        ),
    ] = None,
    session: Annotated[
        str | None,
        typer.Option(
            "--session",
            help="Answer as this session, through the socket its orchestrator serves "
            f"(${SOCKET_ENV}); how the orchestrator starts it for each session's CLI.",
        ),
    ] = None,
) -> None:
    """Serve the council's MCP tools over stdio: a session's, or read-only for FILE's run."""
    if session is not None:
        sid = check_id(session, "session id")
        socket = os.environ.get(SOCKET_ENV)
        if not socket:
            raise UsageError(f"--session needs ${SOCKET_ENV}: the socket its orchestrator serves")
        event_loop.run(_relay, Path(socket), sid)
        return
    if file is None:
        raise UsageError("council mcp needs FILE (a run config), or --session")
    from orchestrator.config.load import load_config  # the relay above needs none of it

    event_loop.run(_read_only, load_config(file))


async def _relay(socket: Path, session: str) -> None:
    async def relayed(tool: str, args: dict[str, Any]) -> tuple[str, str]:
        return await ask(socket, session, tool, args)

    await serve_stdio(relayed, session=session)


async def _read_only(config: RunConfig) -> None:
    from orchestrator.cli.store_access import open_store
    from orchestrator.coordination.desk import Desk

    async with open_store(config) as store:
        desk = Desk(store, config.repo, caller=None)

        async def answered(tool: str, args: dict[str, Any]) -> tuple[str, str]:
            answer = await desk.call(tool, args)
            return answer.outcome, answer.text

        await serve_stdio(answered)
