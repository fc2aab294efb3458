"""Issue 34, ``council mcp`` with each session: what the orchestrator gives a phase's CLI (the
``council`` server, relaying to the session's socket), how each adapter writes it into its
CLI's configuration (aider takes none), and, under a real bubblewrap, that a CLI reaches its
own session's socket and no other."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import tomllib
from pathlib import Path
from typing import Any

import anyio
import pytest

from adapters.aider import AiderAdapter
from adapters.claude_code import ClaudeCodeAdapter
from adapters.codex import CodexAdapter
from adapters.gemini import GeminiAdapter
from adapters.opencode import OpencodeAdapter
from adapters.qwen import QwenAdapter
from orchestrator.adapter import Adapter, AdapterRequest, CommandSpec
from orchestrator.config.load import parse_config
from orchestrator.config.mcp import McpServerConfig
from orchestrator.coordination.desk import Caller, Desk
from orchestrator.coordination.relay import SOCKET_ENV, ask
from orchestrator.coordination.service import serve_session
from orchestrator.coordination.session_tools import relay_server, session_tools
from orchestrator.locks.manager import LockManager
from orchestrator.plugins import host as plugins
from orchestrator.run.preflight import warn_mcp_servers
from orchestrator.runner.config_merge import render
from orchestrator.runner.phase import _call_servers
from orchestrator.runner.phase_call import PhaseCall
from orchestrator.sandbox import bubblewrap
from orchestrator.sandbox.plan import GitReach, SandboxSettings, confinement
from orchestrator.state import FileStateStore
from tests.support.scheduler_helpers import new_repo, run_config

HOME = Path("/home/u/.council/homes/t1/claude/build")
SOCKET = Path("/tmp/council-mcp-abc/council.sock")
RELAY_ARGS = ["-m", "orchestrator.cli.app", "mcp", "--session", "sess-1"]


def _written(spec: CommandSpec, path: str) -> dict[str, Any]:
    config = spec.config_files[path]
    text = render(config)
    if config.format == "toml":
        return tomllib.loads(text)
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def _spec(adapter: Adapter) -> CommandSpec:
    request = AdapterRequest(
        prompt="fix it",
        workdir=Path("/w"),
        home=HOME,
        mcp_servers=(relay_server("sess-1", SOCKET),),
    )
    return adapter.build_command(request)


async def test_each_phase_call_gets_the_council_server_while_its_cli_runs(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    async with FileStateStore(repo / ".council" / "state") as store:
        locks = LockManager(repo, store=store)
        tools = session_tools(store, locks, Caller("sess-1", "t1"))
        call = PhaseCall("t1", "build", "claude", "do it", repo, tmp_path / "homes", "sess-1")
        async with tools(call) as given:
            (server,) = given.mcp_servers
            socket = Path(server.env[SOCKET_ENV])
            assert server.name == "council" and server.trusted
            assert server.command == sys.executable and list(server.args) == RELAY_ARGS
            assert given.sandbox_read == (socket.parent,)
            assert await anyio.Path(socket).is_socket()
            assert len(str(socket)) < 108  # a Unix socket's path limit
        assert not await anyio.Path(socket.parent).exists()  # gone with the CLI
    assert dataclasses.replace(given, mcp_servers=(), sandbox_read=()) == call


async def test_a_lock_taken_through_the_sessions_server_is_reported(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    async with FileStateStore(repo / ".council" / "state") as store:
        locks = LockManager(repo, store=store)
        reported: list[list[str]] = []

        async def on_files(paths: Any) -> None:
            reported.append(list(paths))

        tools = session_tools(store, locks, Caller("sess-1", "t1"), on_files)
        call = PhaseCall("t1", "build", "claude", "do it", repo, tmp_path / "homes", "sess-1")
        async with tools(call) as given:
            socket = Path(given.mcp_servers[0].env[SOCKET_ENV])
            outcome, text = await ask(socket, "sess-1", "request_lock", {"path": "shared.txt"})
        assert outcome == "ok" and "shared.txt: lock granted to you" in text
        assert [g.path for g in locks.held("sess-1")] == ["shared.txt"]
        await locks.aclose()
    assert reported == [["shared.txt"]]


def test_claude_gets_it_in_its_mcp_config_with_its_tools_allowed() -> None:
    spec = _spec(ClaudeCodeAdapter())
    argv = spec.argv
    assert argv[argv.index("--mcp-config") + 1] == str(HOME / ".claude/council-mcp.json")
    entry = _written(spec, ".claude/council-mcp.json")["mcpServers"]["council"]
    assert entry == {
        "type": "stdio",
        "command": sys.executable,
        "args": RELAY_ARGS,
        "env": {SOCKET_ENV: str(SOCKET)},
    }
    assert argv[argv.index("--allowedTools") + 1] == "mcp__council"


def test_codex_gets_it_in_its_config_toml_approved() -> None:
    servers = _written(_spec(CodexAdapter()), ".codex/config.toml")["mcp_servers"]
    assert servers["council"]["command"] == sys.executable
    assert servers["council"]["args"] == RELAY_ARGS
    assert servers["council"]["env"] == {SOCKET_ENV: str(SOCKET)}
    assert servers["council"]["default_tools_approval_mode"] == "approve"


@pytest.mark.parametrize("adapter_class", [GeminiAdapter, QwenAdapter])
def test_gemini_and_qwen_get_it_in_mcp_servers(adapter_class: type[Adapter]) -> None:
    settings = _written(_spec(adapter_class()), f".{adapter_class.executable}/settings.json")
    assert settings["mcpServers"]["council"] == {
        "command": sys.executable,
        "args": RELAY_ARGS,
        "env": {SOCKET_ENV: str(SOCKET)},
    }


def test_opencode_gets_it_in_mcp() -> None:
    config = _written(_spec(OpencodeAdapter()), ".config/opencode/council.json")
    entry = config["mcp"]["council"]
    assert entry["type"] == "local" and entry["command"] == [sys.executable, *RELAY_ARGS]
    assert entry["environment"] == {SOCKET_ENV: str(SOCKET)}


def test_aider_takes_no_mcp_server_and_a_users_council_server_stands() -> None:
    assert not AiderAdapter.takes_mcp_servers  # its prompt keeps the list of busy files
    given = relay_server("sess-1", SOCKET)
    call = PhaseCall("t1", "build", "alpha", "p", Path("/r"), Path("/h"), "sess-1")
    call = dataclasses.replace(call, mcp_servers=(given,))
    config = run_config(Path("/r"), [{"id": "t1", "prompt": "p"}])
    assert _call_servers(config, call) == (given,)
    users = config.model_copy(update={"mcp_servers": {"council": McpServerConfig(command="x")}})
    assert _call_servers(users, call) == ()  # the run config's own `council` stands


_CLIENT = """
import json, os, socket, sys
own, other = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.connect(own)
s.sendall(json.dumps({"session": "sess-a", "tool": "read_notes", "args": {}}).encode() + b"\\n")
answer = b""
while not answer.endswith(b"\\n"):
    answer += s.recv(65536)
print(json.dumps({"answer": json.loads(answer), "other_seen": os.path.exists(other)}))
"""


@pytest.mark.sandbox
async def test_under_the_sandbox_a_cli_reaches_its_own_sessions_socket_only(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    council = repo / ".council"
    worktree, home = council / "worktrees" / "sess-a", council / "homes" / "t-a" / "cli" / "build"
    admin = repo / ".git" / "worktrees" / "sess-a"
    for directory in (worktree, home, admin):
        directory.mkdir(parents=True)
    reach = GitReach(repo, council, (admin,), ())
    async with FileStateStore(council / "state") as store:
        locks = LockManager(repo, store=store)
        mine = Desk(store, repo, caller=Caller("sess-a", "t-a"), locks=locks)
        theirs = Desk(store, repo, caller=Caller("sess-b", "t-b"), locks=locks)
        async with serve_session(mine) as own, serve_session(theirs) as other:
            binary = bubblewrap.find()
            assert binary is not None
            settings = SandboxSettings("bubblewrap", binary, network=False, read=(own.parent,))
            argv = [sys.executable, "-c", _CLIENT, str(own), str(other)]
            plan = await anyio.to_thread.run_sync(
                lambda: confinement(
                    settings,
                    reach,
                    workdir=worktree,
                    home=home,
                    argv=argv,
                    env={"PATH": "/usr/bin"},
                )
            )
            done = await anyio.run_process(
                bubblewrap.command(binary, plan, argv), check=False, cwd=worktree
            )
        await locks.aclose()
    assert done.returncode == 0, done.stderr.decode()
    seen = json.loads(done.stdout)
    assert seen["answer"] == {"outcome": "ok", "text": "no unread notes for you"}
    assert seen["other_seen"] is False  # another session's socket is under the hidden /tmp


def test_aider_sessions_do_without_the_council_server_and_it_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = f"repo: {tmp_path}\nadapters:\n  aider: {{}}\ntasks:\n  - {{id: t1, prompt: hi}}\n"
    config = parse_config(text, source="run.yaml")
    registry = plugins.default_plugins().registry
    with caplog.at_level(logging.INFO, logger="orchestrator.run.preflight"):
        assert warn_mcp_servers(config, registry) == []  # no warning: nobody asked for it
    said = [r.getMessage() for r in caplog.records if "council's tools" in r.getMessage()]
    assert said == [
        "adapter 'aider' (type 'aider') takes no MCP servers: its sessions do without the "
        "council's tools (council mcp); their prompts name what the others hold"
    ]
    caplog.clear()
    off = config.model_copy(update={"council_mcp": False})
    assert warn_mcp_servers(off, registry) == [] and not caplog.records


async def test_a_call_that_fails_inside_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repo(tmp_path)
    async with FileStateStore(repo / ".council" / "state") as store:
        desk = Desk(store, repo, caller=Caller("sess-1", "t1"))
        real = desk.call
        failures = iter([RuntimeError("a bug")])

        async def flaky(tool: str, args: Any) -> Any:
            failure = next(failures, None)
            if failure is not None:
                raise failure
            return await real(tool, args)

        monkeypatch.setattr(desk, "call", flaky)
        async with serve_session(desk) as socket:
            with pytest.raises((anyio.IncompleteRead, anyio.EndOfStream)):
                await ask(socket, "sess-1", "read_notes", {})
            # the server, and the phase around it, go on
            assert await ask(socket, "sess-1", "read_notes", {}) == (
                "ok",
                "no unread notes for you",
            )
