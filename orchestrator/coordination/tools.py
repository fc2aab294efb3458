"""The council's MCP tools: name, description, parameters (each a required string), and
whether a read-only server refuses it. Read by the desk that answers them and by the MCP
server that offers them, which imports nothing else of the framework (the relay starts with
each CLI)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TOOLS", "Tool"]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    params: tuple[str, ...]  # each a string parameter, all required
    writes: bool = False  # refused by the read-only desk


TOOLS: tuple[Tool, ...] = (
    Tool(
        "who_holds",
        "Who holds or is changing a path of the repository: its lock owner in the council's "
        "ownership registry (session, fencing token) and the sessions working on it.",
        ("path",),
    ),
    Tool(
        "session_changes",
        "What another session (by session id or task id) changed so far: the diff of its "
        "worktree against the commit it started from.",
        ("session",),
    ),
    Tool(
        "handoff",
        "The handoff document an earlier phase (scout, plan, build, review) of a task left.",
        ("task", "phase"),
    ),
    Tool(
        "post_note",
        "Leave a note for another session or for whoever works on a task (by its id).",
        ("to", "text"),
        writes=True,
    ),
    Tool(
        "collisions",
        "The collision radar's findings for you: the live sessions changing the same files "
        "or lines as yours (on any workstation), where, whether a merge of the two would "
        "conflict, and what the other changed there.",
        (),
    ),
    Tool("read_notes", "Read the notes other sessions left for you (marks them read).", ()),
    Tool(
        "request_lock",
        "Ask for the lock of a repository path before editing it; refused, naming the holder, "
        "when another session holds it.",
        ("path",),
        writes=True,
    ),
)
