"""The relay's side of a session's socket: ask one tool, get its answer.

Runs in the process the CLI starts (``council mcp --session ID``), inside the CLI's sandbox,
where the socket's private directory is the only one of the orchestrator's it is shown. The
socket's path comes from ``SOCKET_ENV`` in the server's environment (the CLI's MCP config).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

from orchestrator.coordination.wire import LINE_LIMIT, decode_answer, encode

__all__ = ["SOCKET_ENV", "ask"]

SOCKET_ENV = "COUNCIL_MCP_SOCKET"


async def ask(socket: Path, session: str, tool: str, args: dict[str, Any]) -> tuple[str, str]:
    """The outcome (``ok``, ``refused``, ``error``) and the text of ``tool``'s answer."""
    async with await anyio.connect_unix(socket) as stream:
        await stream.send(encode({"session": session, "tool": tool, "args": args}))
        line = await BufferedByteReceiveStream(stream).receive_until(b"\n", LINE_LIMIT)
    return decode_answer(line)
