"""The adapter contract: how CLI Council talks to one AI coding CLI.

An adapter translates; the core executes. It is pure: it builds a command (argv, an
environment overlay, files to place in the session's private HOME), turns one line of the
CLI's output into normalized events, and classifies a finished run. Spawning, streaming,
timeouts, signals, retries, locks and worktrees belong to the core, so an adapter is tested
with strings, never with a subprocess.

Writing one (see ``adapters/`` for the built-ins)::

    class MyCli(Adapter):
        name = "mycli"
        executable = "mycli"
        streams_json = True
        can_resume = True
        passthrough_env = ("MYCLI_API_KEY", "MYCLI_BASE_URL")

        class Config(AdapterConfig):      # options from the run config, unknown keys refused
            approval: str = "auto"

        def build_command(self, request: AdapterRequest) -> CommandSpec:
            return CommandSpec(argv=[self.binary, "--json", "-p", request.prompt])

        def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
            ...

**Exit code 0 is not success.** ``classify`` gets every event the run produced and must look
at them: an ``is_error`` result, an ``[API Error: ...]`` text, permission denials, a read-only
sandbox rejection are failures of the right kind whatever the exit code. The base class
``classify`` handles the shapes every CLI shares (timeouts, cancellation, signals, rate-limit
and auth events); adapters add their own before calling it.
"""

from __future__ import annotations

import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from orchestrator.adapter.logins import Credential
from orchestrator.adapter.user_files import UserFile
from orchestrator.adapter.values import (
    AdapterCheck,
    AdapterConfig,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    EventKind,
    Outcome,
    OutcomeKind,
    ProcessResult,
    Stream,
    Usage,
)
from orchestrator.errors import AdapterError

__all__ = ["Adapter", "native_id"]

# UUIDs (claude, codex, gemini, qwen) and "ses_..." (opencode); never a flag, never whitespace.
_NATIVE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def native_id(adapter: str, session_id: str) -> str:
    """A CLI's own session id, checked before it goes into argv: it came from the CLI's output,
    so it must never turn into a flag or an argument of its own (``AdapterError`` if it could)."""
    if not _NATIVE_ID.match(session_id):
        raise AdapterError(f"adapter {adapter!r}: unusable session id {session_id!r}")
    return session_id


class Adapter(ABC):
    """Subclass this; set the class attributes; implement the two abstract methods."""

    name: ClassVar[str]
    executable: ClassVar[str]
    streams_json: ClassVar[bool] = False
    can_resume: ClassVar[bool] = False
    can_choose_model: ClassVar[bool] = True
    edits_files: ClassVar[bool] = True
    # Variables of the orchestrator's environment this CLI needs (API keys, base URLs). The
    # runner passes only an allow-list (PATH, locale, TERM, TZ, CA bundles...) plus these;
    # values of those named like *KEY*, *TOKEN*, *SECRET*, *PASSWORD* are redacted from logs.
    passthrough_env: ClassVar[tuple[str, ...]] = ()
    # Where this CLI keeps the user's login (their own files, linked into the private HOME
    # unless the adapter is configured ``credentials: isolated``; see orchestrator.runner.logins).
    credentials: ClassVar[tuple[Credential, ...]] = ()
    # The user's own configuration of this CLI: settings, MCP servers, instructions, agents
    # (carried into the private HOME unless ``user_config: ignore``; a ``ConfigFile`` the
    # command names at the same path is merged with it; see orchestrator.adapter.user_files).
    user_files: ClassVar[tuple[UserFile, ...]] = ()
    # The hosts of this CLI's model API (``host`` or ``host:port``, HTTPS's 443 when no port is
    # named): with ``model_endpoints``, all that ``sandbox.network: model`` lets the CLI reach.
    api_hosts: ClassVar[tuple[str, ...]] = ()
    # Does ``build_command`` give the CLI the run's ``mcp_servers`` (``request.mcp_servers``)?
    # A run that names some warns once for each adapter that does not.
    takes_mcp_servers: ClassVar[bool] = False

    # A plugin's options derive from this (unknown keys refused). One that derives from
    # ``ExtraArgsConfig`` instead takes ``extra_args`` (``orchestrator.adapter.extra_args``): it
    # puts ``self.extra_args()`` into every command it builds and declares the flags it sets
    # in its Config's ``owned_flags``, as the built-in CLI adapters do.
    class Config(AdapterConfig):
        pass

    def __init__(
        self, config: AdapterConfig | Mapping[str, Any] | None = None, executable: str | None = None
    ) -> None:
        if not isinstance(config, self.Config):
            # A mapping from a run config, or another options model: either way the adapter's
            # own Config validates it, so ``self.config`` is always an instance of ``Config``.
            raw = config.model_dump() if isinstance(config, AdapterConfig) else dict(config or {})
            try:
                config = self.Config.model_validate(raw)
            except Exception as exc:
                raise AdapterError(f"adapter {self.name!r}: bad options: {exc}") from None
        self.config: AdapterConfig = config
        self.binary = executable or self.executable

    @abstractmethod
    def build_command(self, request: AdapterRequest) -> CommandSpec:
        """The headless command for ``request``."""

    @abstractmethod
    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        """Events in one line of output (without its newline); [] for nothing of interest."""

    def resume_command(self, request: AdapterRequest, native_session_id: str) -> CommandSpec:
        """The command that continues conversation ``native_session_id`` with ``request``."""
        raise AdapterError(f"adapter {self.name!r} cannot resume a session")

    def extra_args(self) -> list[str]:
        """The run config's ``extra_args`` for this adapter, to go into its command line."""
        return list(getattr(self.config, "extra_args", []))

    def readable_dirs(self) -> tuple[str, ...]:
        """Directories outside the worktree the CLI is told to use (``add_dirs``): absolute
        paths the sandbox shows it read-only."""
        return tuple(getattr(self.config, "add_dirs", ()))

    def model_endpoints(self, request: AdapterRequest) -> tuple[str, ...]:
        """Where this CLI's model is, for ``request``: URLs (``https://api.anthropic.com``) or
        ``host[:port]``. What ``sandbox.network: model`` lets the CLI reach (an endpoint on
        this machine's loopback through a relay of that port alone). By default the hosts
        of ``api_hosts`` and the endpoint its options name (``base_url``, ``host``)."""
        named = [getattr(self.config, name, None) for name in ("base_url", "host")]
        return (*self.api_hosts, *(value for value in named if isinstance(value, str) and value))

    def sandboxes_itself(self) -> bool:
        """Whether the CLI runs its tools in a sandbox of its own that needs a user namespace
        (codex's bubblewrap). The council's sandbox then lets it make one (nested inside, it
        cannot undo the outer sandbox's mounts) and, as root, runs it as a uid other than 0,
        which that sandbox needs."""
        return False

    def version_command(self) -> list[str]:
        return [self.binary, "--version"]

    def read_only_reason(self) -> str | None:
        """Why this adapter, with its options, cannot change files at all (a plan or read-only
        mode, edits left to an approval nobody can give headless); None when it can."""
        return None if self.edits_files else f"adapter {self.name!r} does not edit files"

    @property
    def can_write(self) -> bool:
        """Can this adapter, with its options, write at all? A build phase that changed nothing
        through an adapter that cannot is ``permission_denied``, not "no changes, retry"."""
        return self.read_only_reason() is None

    def ends_run(self, event: AgentEvent) -> bool:
        """Does ``event`` settle the run, so the core stops the CLI now instead of waiting out
        its own retries? An auth error does: no retry can fix a refused key (claude retries a
        401 ten times, for minutes). An adapter whose CLI retries rate limits for long and
        cannot be told not to also ends at its first rate-limit event: the orchestrator's
        park waits instead, without holding a slot (``orchestrator.scheduler.rules.parks``)."""
        return event.kind == EventKind.ERROR and event.error_kind == "auth"

    def resume_refused(self, result: ProcessResult, events: Sequence[AgentEvent]) -> bool:
        """Did the CLI refuse to continue the conversation it was asked to resume (gemini:
        "No previous sessions found", exit 42, for a session whose only request got a 429)?
        The core then starts a fresh session with the same prompt, which carries the task's
        handoff like any first run. Only asked of a run that resumed a session."""
        return False

    def denials(self, events: Sequence[AgentEvent]) -> list[str]:
        """What the CLI was refused in this run (a tool call, an edit, a file), one line each.

        The base lists the permission and sandbox errors the parser emitted; an adapter whose
        CLI reports refusals elsewhere overrides it. The core asks after the run: a build that
        changed nothing after a denial ends ``permission_denied`` even where ``classify``
        (which may discount errors the CLI recovered from) called the run a success."""
        found: list[str] = []
        for event in events:
            if event.kind == EventKind.ERROR and event.error_kind in _DENIAL_KINDS:
                text = event.text or "a tool call was denied"
                if text not in found:
                    found.append(text)
        return found

    def classify(self, result: ProcessResult, events: Sequence[AgentEvent]) -> Outcome:
        """The outcome every CLI shares; adapters check their own failure shapes first."""
        session = next((e.native_session_id for e in events if e.native_session_id), None)
        usage = _total_usage(events)

        def outcome(kind: OutcomeKind, message: str = "", **extra: Any) -> Outcome:
            return Outcome(
                kind=kind, message=message, native_session_id=session, usage=usage, **extra
            )

        if result.cancelled:
            return outcome(OutcomeKind.CANCELLED, "cancelled")
        if result.timed_out or result.idle_timed_out:
            which = "no output" if result.idle_timed_out else "time limit"
            return outcome(OutcomeKind.TIMED_OUT, f"{which} reached after {result.seconds:.0f}s")
        limited = [e for e in events if e.kind == EventKind.RATE_LIMITED]
        final = next((e for e in reversed(events) if e.kind == EventKind.COMPLETED), None)
        errors = [e for e in events if e.kind == EventKind.ERROR]
        if any(e.error_kind == "auth" for e in errors):
            first = next(e for e in errors if e.error_kind == "auth")
            return outcome(OutcomeKind.AUTH_REQUIRED, first.text)
        if any(e.error_kind in _DENIAL_KINDS for e in errors):
            first = next(e for e in errors if e.error_kind in _DENIAL_KINDS)
            return outcome(OutcomeKind.PERMISSION_DENIED, first.text)
        failed = (
            result.exit_code != 0
            or (final is not None and final.is_error)
            or (final is None and bool(errors))
        )
        if limited and failed:
            last = limited[-1]
            return outcome(
                OutcomeKind.RATE_LIMITED,
                last.text or "rate limited",
                retry_at=last.reset_at,
                retry_after=last.retry_after,
            )
        if result.signal is not None or (result.exit_code is not None and result.exit_code < 0):
            sig = result.signal or -(result.exit_code or 0)
            return outcome(OutcomeKind.CRASHED, f"killed by signal {sig}")
        if failed:
            message = (final.text if final is not None and final.is_error else "") or (
                errors[-1].text if errors else ""
            )
            return outcome(
                OutcomeKind.FAILED,
                message or f"exit code {result.exit_code}: {result.stderr_tail[-500:]}".strip(),
            )
        return outcome(OutcomeKind.SUCCEEDED, final.text if final else "")

    def env_names(self) -> tuple[str, ...]:
        """The variables of the orchestrator's environment this CLI gets: ``passthrough_env``,
        plus any its options name (a key variable of the user's choosing)."""
        return self.passthrough_env

    def logins_used(self, env: Mapping[str, str]) -> tuple[Credential, ...]:
        """Of ``credentials``, those this CLI, with its options, would really use in a run whose
        environment is ``env`` (what ``init``, ``doctor`` and ``adapters check`` report). All of
        them by default; an adapter whose options make the CLI ignore a login (codex with
        ``base_url`` and the endpoint's key set) leaves it out, or says how it is used."""
        return self.credentials

    def login_out_of_reach(self) -> str | None:
        """Where, on this system, this CLI keeps a login a private HOME cannot reach (and what
        to do instead); None when its logins are files ``credentials`` lists."""
        return None

    def check(self) -> AdapterCheck:
        """Is the CLI installed? (The version is filled in by the core, which runs processes.)"""
        path = shutil.which(self.binary)
        return AdapterCheck(
            name=self.name,
            binary=self.binary,
            found=path is not None,
            path=path,
            ok=path is not None,
            message="found" if path else f"{self.binary!r} not found on PATH",
        )


_DENIAL_KINDS = frozenset({"permission", "sandbox"})


def _total_usage(events: Sequence[AgentEvent]) -> Usage | None:
    usages = [e.usage for e in events if e.usage is not None and e.kind != EventKind.RUNNING_USAGE]
    if not usages:
        return None
    costs = [u.cost_usd for u in usages if u.cost_usd is not None]
    return Usage(
        input_tokens=sum(u.input_tokens for u in usages),
        output_tokens=sum(u.output_tokens for u in usages),
        cache_read_tokens=sum(u.cache_read_tokens for u in usages),
        cache_write_tokens=sum(u.cache_write_tokens for u in usages),
        cost_usd=sum(costs) if costs else None,
    )
