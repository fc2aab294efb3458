"""Issue 34, ``council mcp`` through a whole ``council run``: the orchestrator starts the
session's server with the CLI, and the CLI (a stand-in for claude, speaking its stream-json,
under the sandbox the machine gives) reaches it through the MCP config its adapter wrote. The
stand-in starts the ``council`` server as claude would (the SDK's stdio client), asks for a
lock and who holds it, and writes the answers into its worktree, so they land on main.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

from tests.support.council_process import council
from tests.support.merge_repo import git
from tests.support.scheduler_helpers import new_repo

STAND_IN = '''#!{python}
"""A claude stand-in: starts the run's `council` MCP server from --mcp-config, calls two of its
tools, writes the answers to answers.txt, and ends as claude's stream-json does."""
import json, sys
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

if "--version" in sys.argv:
    print("2.1.330 (Claude Code)")
    sys.exit(0)
config = json.loads(Path(sys.argv[sys.argv.index("--mcp-config") + 1]).read_text())
server = config["mcpServers"]["council"]
allowed = sys.argv[sys.argv.index("--allowedTools") + 1]


async def main() -> list[str]:
    params = StdioServerParameters(
        command=server["command"], args=server["args"], env=server.get("env")
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        names = sorted(t.name for t in (await session.list_tools()).tools)
        said = [" ".join(names), allowed]
        for tool in ("request_lock", "who_holds"):
            result = await session.call_tool(tool, {{"path": "mcp-run.txt"}})
            said.append(" | ".join(getattr(part, "text", "") for part in result.content))
        return said


said = anyio.run(main)
Path("answers.txt").write_text("\\n".join(said) + "\\n")
sid = "0be95f73-4285-4c26-ade4-902af497c139"
print(json.dumps({{"type": "system", "subtype": "init", "session_id": sid, "model": "claude-x"}}))
print(json.dumps({{
    "type": "result", "subtype": "success", "is_error": False, "result": "asked the council",
    "session_id": sid, "num_turns": 1, "total_cost_usd": 0.0, "permission_denials": [],
    "usage": {{"input_tokens": 1, "output_tokens": 1}},
}}))
'''


def test_the_orchestrator_gives_each_session_its_council_server(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    stand_in = tmp_path / "claude"
    stand_in.write_text(STAND_IN.format(python=sys.executable))
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IXUSR)
    task = {"id": "t1", "prompt": "Ask the council.", "files": ["t1.txt"]}
    config = tmp_path / "run.yaml"
    config.write_text(
        f"repo: {repo}\n"
        f"adapters:\n  claude: {{type: claude_code, executable: {stand_in}}}\n"
        "default_adapter: claude\n"
        "workflow: {phases: [{name: build}]}\n"
        "retry: {max_retries: 0}\n"
        "scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}\n"
        f"tasks:\n  - {json.dumps(task)}\n"
    )

    done = council(["run", str(config), "--json"], cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    answers = git(repo, "show", "main:answers.txt")
    tools, allowed, granted, held, *rest = answers.splitlines()
    assert tools == "collisions handoff post_note read_notes request_lock session_changes who_holds"
    assert allowed == "mcp__council"  # its tools allowed without asking, headless
    assert granted.startswith("mcp-run.txt: lock granted to you, fencing token ")
    assert held.startswith("mcp-run.txt: locked by you (your session), fencing token ")
    lines = (repo / ".council" / "events.jsonl").read_text().splitlines()
    calls = [json.loads(line) for line in lines if '"mcp.call"' in line]
    assert [(c["data"]["tool"], c["data"]["outcome"]) for c in calls] == [
        ("request_lock", "ok"),
        ("who_holds", "ok"),
    ]
    session = calls[0]["data"]["session"]
    assert {c["data"]["task_id"] for c in calls} == {"t1"} and session.startswith("t1.")
    # the lock taken through the server is in the session's context, which the others read
    assert rest == [f"session {session} (task t1) on claude: locked, working"]
