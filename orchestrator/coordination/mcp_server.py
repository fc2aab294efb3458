"""The council's MCP server over stdio: the official ``mcp`` SDK (1.x or 2.x), imported here
and nowhere else in the framework (import-linter ``wrapper-mcp``).

Each tool of ``tools.TOOLS`` is one MCP tool whose answer comes from ``ask`` (the tool's name and
its arguments in, the outcome and text out): a relay to the session's socket
(``council mcp --session``) or a read-only ``Desk`` in this process (``council mcp FILE``). A
refusal is an answer the model reads (``refused: ...``); an error is the tool's error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from orchestrator.coordination.tools import TOOLS

__all__ = ["SERVER_NAME", "Ask", "serve_stdio", "server"]

SERVER_NAME = "council"

Ask = Callable[[str, dict[str, Any]], Awaitable[tuple[str, str]]]


def server(ask: Ask, *, session: str | None = None) -> Any:
    """The MCP server whose tools answer through ``ask``."""
    try:  # mcp 2.x
        from mcp.server.mcpserver import MCPServer as Server
    except ImportError:  # mcp 1.x
        from mcp.server.fastmcp import FastMCP as Server  # type: ignore[no-redef, attr-defined, unused-ignore]

    who = f"session {session}" if session else "read-only, for the whole run"
    mcp = Server(SERVER_NAME, instructions=f"CLI Council's coordination tools ({who}).")
    descriptions = {tool.name: tool.description for tool in TOOLS}

    async def answer(tool: str, args: dict[str, Any]) -> str:
        outcome, text = await ask(tool, args)
        if outcome == "error":
            raise RuntimeError(text)
        return text

    async def who_holds(path: str) -> str:
        return await answer("who_holds", {"path": path})

    async def session_changes(session: str) -> str:
        return await answer("session_changes", {"session": session})

    async def handoff(task: str, phase: str) -> str:
        return await answer("handoff", {"task": task, "phase": phase})

    async def post_note(to: str, text: str) -> str:
        return await answer("post_note", {"to": to, "text": text})

    async def read_notes() -> str:
        return await answer("read_notes", {})

    async def collisions() -> str:
        return await answer("collisions", {})

    async def request_lock(path: str) -> str:
        return await answer("request_lock", {"path": path})

    tools = (who_holds, session_changes, handoff, collisions, post_note, read_notes, request_lock)
    for function in tools:
        name = function.__name__
        mcp.tool(name=name, description=descriptions[name])(function)
    return mcp


async def serve_stdio(ask: Ask, *, session: str | None = None) -> None:
    """Serve the tools on this process's stdin and stdout until the client goes."""
    await server(ask, session=session).run_stdio_async()
