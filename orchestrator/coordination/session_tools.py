"""What the scheduler gives each attempt: every phase's CLI gets the council's MCP server of
the attempt's session, served while the CLI runs.

``session_tools`` makes the attempt's ``PhaseTools`` (``workflow.task_run``): for one
``PhaseCall`` it starts the session's socket (``service``), and hands the call on with one more
MCP server, ``council``: ``<python> -m orchestrator.cli.app mcp --session <id>`` with the
socket in its environment (the relay, ``council mcp``), and the socket's directory shown to the
sandbox, read-only. A CLI that takes no MCP servers (aider) is not given it and keeps what its
prompt says of the other sessions. A lock the CLI takes through it is reported like the
attempt's other files (``on_locked``: the session context the other prompts name).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestrator.adapter import McpServer
from orchestrator.coordination.desk import Caller, Desk
from orchestrator.coordination.mcp_server import SERVER_NAME
from orchestrator.coordination.relay import SOCKET_ENV
from orchestrator.coordination.service import SessionSocket, listening, serve_session, served
from orchestrator.locks.manager import LockManager
from orchestrator.runner.phase_call import PhaseCall
from orchestrator.state.protocol import StateStore

__all__ = ["OpenedTools", "SessionTools", "relay_server", "session_tools"]


def relay_server(session: str, socket: Path) -> McpServer:
    """The ``council`` MCP server a session's CLI starts: the relay to ``socket``."""
    return McpServer(
        name=SERVER_NAME,
        command=sys.executable,
        args=("-m", "orchestrator.cli.app", "mcp", "--session", session),
        env={SOCKET_ENV: str(socket)},
        trusted=True,  # the orchestrator's own: its tools are allowed without asking
    )


def session_tools(
    store: StateStore,
    locks: LockManager,
    caller: Caller,
    on_locked: Callable[[Sequence[str]], Awaitable[None]] | None = None,
) -> SessionTools:
    async def locked(path: str) -> None:
        if on_locked is not None:
            await on_locked([path])

    desk = Desk(store, locks.project_dir, caller=caller, locks=locks, on_locked=locked)
    return SessionTools(desk, caller.session)


@dataclass(frozen=True)
class SessionTools:
    """The attempt's ``PhaseTools``: ``open`` (blocking) a phase's socket, served around its
    CLI by ``OpenedTools.serving`` and removed by ``OpenedTools.remove`` (blocking) after it;
    or, called with a ``PhaseCall``, all of it in one context (each blocking part a
    worker-thread call of its own)."""

    desk: Desk
    session: str

    def open(self) -> OpenedTools:
        return OpenedTools(self.desk, self.session, listening())

    @asynccontextmanager
    async def __call__(self, call: PhaseCall) -> AsyncIterator[PhaseCall]:
        async with serve_session(self.desk) as socket:
            yield _given(call, self.session, socket)


@dataclass(frozen=True)
class OpenedTools:
    """One phase's socket, listening: served while its CLI runs, then removed."""

    desk: Desk
    session: str
    opened: SessionSocket

    @asynccontextmanager
    async def serving(self, call: PhaseCall) -> AsyncIterator[PhaseCall]:
        async with served(self.desk, self.opened) as socket:
            yield _given(call, self.session, socket)

    def remove(self) -> None:
        self.opened.remove()


def _given(call: PhaseCall, session: str, socket: Path) -> PhaseCall:
    """``call`` with the ``council`` server of ``socket``, whose directory the sandbox shows."""
    return dataclasses.replace(
        call,
        mcp_servers=(*call.mcp_servers, relay_server(session, socket)),
        sandbox_read=(*call.sandbox_read, socket.parent),
    )
