"""The council's coordination surface for the CLIs: an MCP server each session's CLI is given.

- ``desk``: the tools, answered from the state store for one caller (a session, or nobody: the
  read-only desk a user attaches by hand), each call an ``mcp.call`` event; ``notes``: notes
  between sessions, kept in the store.
- ``service``: the orchestrator's side of one session's server, a Unix socket in a private
  directory that only that session's sandbox is shown; the socket is the caller's identity.
- ``relay``: the other side, inside the CLI's sandbox: one request line out, one answer back.
- ``mcp_server``: the MCP server (the official ``mcp`` SDK over stdio, its only importer) that
  ``council mcp`` runs, relaying to the session's socket or answering read-only itself.
- ``session_tools``: what the scheduler gives each attempt: its phases' CLIs get the server;
  ``tools_later`` makes them, and imports the desk, at the first phase whose CLI takes MCP
  servers (a CLI that takes none is given no socket).

Nothing is imported here: the relay process the CLI starts loads only what it needs.
"""
