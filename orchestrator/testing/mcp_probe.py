"""A stdio MCP server with one tool, for proving that a CLI started the MCP servers its user
(or its repository) configured: the tool's distinctive name, ``council_probe_tool``, shows up
in the tools list the CLI sends its model.

Run as ``[sys.executable, "-m", "orchestrator.testing.mcp_probe"]``; built with the official
``mcp`` Python SDK (``pip install 'cli-council[testing]'``), 1.x or 2.x. An optional first
argument names the tool instead (a test telling two servers apart).
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["TOOL", "main", "server"]

TOOL = "council_probe_tool"
_ANSWER = "council probe: answered"


def server(tool: str = TOOL) -> Any:
    """The MCP server offering ``tool`` (which answers a fixed text)."""
    try:  # mcp 2.x
        from mcp.server.mcpserver import MCPServer as Server
    except ImportError:  # mcp 1.x
        from mcp.server.fastmcp import FastMCP as Server  # type: ignore[no-redef, attr-defined, unused-ignore]

    probe = Server("council-probe")

    def answer() -> str:
        """Council's MCP probe: returns a fixed text."""
        return _ANSWER

    probe.tool(name=tool, description="Council's MCP probe: returns a fixed text.")(answer)
    return probe


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    server(args[0] if args else TOOL).run("stdio")


if __name__ == "__main__":
    main()
