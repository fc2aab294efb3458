"""What one phase's CLI call is given (``PhaseCall``) and gives back (``PhaseRun``: the CLI's run,
what it said, whether it resumed its conversation, what it was refused)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.adapter import EventKind, McpServer, OutcomeKind
from orchestrator.process.stop import DEFAULT_GRACE
from orchestrator.runner.cli_run import CliRun
from orchestrator.sandbox.plan import GitReach

__all__ = ["DEFAULT_IDLE_TIMEOUT", "DEFAULT_TIMEOUT", "PhaseCall", "PhaseRun"]

DEFAULT_TIMEOUT = 30 * 60.0
DEFAULT_IDLE_TIMEOUT = 5 * 60.0


@dataclass(frozen=True)
class PhaseCall:
    """What to run: one phase of one task through one configured adapter."""

    task_id: str
    phase: str
    adapter: str  # a key of the run config's ``adapters`` (or a registered adapter name)
    prompt: str
    workdir: Path
    home_root: Path
    session_id: str
    attempt: int = 1
    model: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # the phase's, over the adapter's
    timeout: float = DEFAULT_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    grace: float = DEFAULT_GRACE  # SIGTERM to SIGKILL when the CLI is stopped
    resume_session_id: str | None = None
    # The prompt when the CLI goes on in its conversation (``resume_session_id`` taken by the
    # adapter and the CLI): what is new alone, the task being known there. A new session
    # (the adapter cannot resume, the CLI refused) gets ``prompt``. None: ``prompt`` either way.
    continued_prompt: str | None = None
    # Called before the CLI runs as a new session when ``resume_session_id`` asked to go on in
    # one (its adapter cannot, or the CLI refused): the phase's start is put back first, so a
    # new session never works on top of what the old one left.
    restart: Callable[[], Awaitable[None]] | None = None
    # How to learn what of the repository the CLI may reach, asked only when a sandbox will
    # confine it: the blocking look it answers is made in the worker-thread call that builds
    # the CLI's command (``sandbox.plan.Sandbox.look``); None: a CLI run outside a session's
    # worktree (``adapters check --live``), which gets no sandbox.
    reach: Callable[[], Awaitable[Callable[[], GitReach]]] | None = None
    # MCP servers for this call alone, given after the run config's (the council's own server
    # of the session: ``orchestrator.coordination``), and what of the machine the sandbox must
    # show the CLI for them, read-only (the session's socket directory).
    mcp_servers: tuple[McpServer, ...] = ()
    sandbox_read: tuple[Path, ...] = ()
    # The name of the file under the log directory its output goes to, chosen by the caller
    # (who records it in the call's ledger entry first); None: one is made when it starts.
    log_name: str | None = None
    # The session's own variables (its services' ``COUNCIL_SERVICE_*``,
    # ``orchestrator.services``), under the adapter's configured ``env``.
    env: Mapping[str, str] = field(default_factory=dict)
    # The session's network namespace when it has one with a way out (its services',
    # ``orchestrator.services``): a confined CLI with an open network runs there, with its
    # services on its loopback, instead of in a namespace of its own (``sandbox.plan.Sandbox``).
    join: Callable[[Sequence[str]], list[str]] | None = None
    resolv: Path | None = None


@dataclass
class PhaseRun:
    cli: CliRun
    messages: list[str] = field(default_factory=list)
    resumed: str | None = None  # the native session id that was continued, if any
    resume_refused: str | None = None  # the native session id the CLI refused to continue
    denials: list[str] = field(default_factory=list)  # what the CLI was refused (adapter.denials)
    read_only: str | None = None  # why the adapter cannot write with its options, if it cannot
    account: str = ""  # the account it ran under, by name (never the secret): the ledger's
    model: str | None = None  # the model the CLI said it used, else the one it was given

    @property
    def summary(self) -> str:
        """The CLI's own summary: its final text, else its last message."""
        if self.cli.outcome.kind == OutcomeKind.SUCCEEDED and self.cli.outcome.message:
            return self.cli.outcome.message
        final = next((e for e in reversed(self.cli.events) if e.kind == EventKind.COMPLETED), None)
        if final is not None and final.text:
            return final.text
        return self.messages[-1] if self.messages else ""

    @property
    def texts(self) -> list[str]:
        """Everything the CLI said, in order, ending with its summary."""
        return [*self.messages, self.summary]
