"""One phase's CLI invocation: adapter, private HOME, limits, events, observer hooks.

``call_phase_cli`` creates the adapter from the run config (``plugins.registry.create``), runs
it through ``process.run_cli`` in the given working directory with the phase's model and
limits, and returns the ``CliRun`` with the CLI's messages collected on the way:

- HOME is ``<home_root>/<task>/<adapter>/<phase>``: stable across attempts, so a resumed
  conversation finds the CLI's own session files, and private to one adapter and phase;
- every event the adapter parses is forwarded to ``on_event`` as an orchestrator ``Event``
  of type ``phase.event`` with ``task``, ``phase``, ``adapter``, ``kind`` and ``text``
  (cut to ``EVENT_TEXT_LIMIT``); assistant messages are also kept (bounded) for the handoff
  and for reading the conventions (``orchestrator.workflow.handoffs.review``);
- observer plugins hear ``on_session_start`` / ``on_session_end`` around the run;
- ``resume_session_id`` is only passed to an adapter that can resume. When the CLI refuses
  that resume (``Adapter.resume_refused``: gemini's "No previous sessions found" for a
  session whose only request got a 429), the phase runs again at once as a fresh session
  with the whole prompt (``PhaseCall.prompt``: a continued conversation may have been given
  only what is new, ``continued_prompt``), which carries the task's handoff like any first
  run; the refused id
  comes back as ``PhaseRun.resume_refused`` (the workflow records ``phase.resume_refused``),
  and the refusal is no failure;
- ``on_cli_event`` hears each event as the adapter parsed it (the spend meter follows a
  call's ``running_usage`` so), before ``on_event``; setting ``halt`` stops this call alone,
  gracefully, as ``cancel`` (the task's) does;
- ``watch`` hears the CLI's pid when it started and when it ended (``process.CliWatch``);
- after each CLI run, a login the CLI saved anew in place of its link to the user's file goes
  back over the user's copy (``credentials.settle_credentials``), not left under ``.council/``;
- the adapter's ``denials`` of the run and its ``read_only_reason`` come back with the run:
  the workflow tells a refused build from one that merely changed nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio

from orchestrator.adapter import Adapter, AdapterRequest, AgentEvent, EventKind, McpServer
from orchestrator.config.adapter_entry import AdapterConfig
from orchestrator.config.env_refs import UnsetVariable, expand
from orchestrator.config.run import RunConfig
from orchestrator.config.sandbox import merged_sandbox
from orchestrator.errors import ConfigError, ConfigIssue
from orchestrator.events import Event
from orchestrator.events.phases import PhaseEvent
from orchestrator.ids import check_id
from orchestrator.plugins.host import PluginHost
from orchestrator.plugins.session_info import SessionInfo
from orchestrator.runner.cli_run import CliRun, CliWatch, Sandbox, run_cli
from orchestrator.runner.identity import identity_env, user_identity
from orchestrator.runner.login_refresh import settle_credentials, user_copies
from orchestrator.runner.logins import found_credentials
from orchestrator.runner.phase_call import PhaseCall, PhaseRun
from orchestrator.safety import secret_mask
from orchestrator.safety.paths import ensure_under
from orchestrator.safety.redaction import is_sensitive
from orchestrator.sandbox.choice import settings_for
from orchestrator.sandbox.plan import SandboxSettings

__all__ = [
    "EVENT_TEXT_LIMIT",
    "PHASE_EVENT",
    "again_log",
    "call_phase_cli",
    "checkout_confined",
    "phase_home",
]

log = logging.getLogger(__name__)

EVENT_TEXT_LIMIT = 1000
PHASE_EVENT = "phase.event"
_MESSAGES_KEPT = 50
_MESSAGE_LIMIT = 8000


def _refused(adapter: Adapter, cli: CliRun) -> bool:
    try:
        return adapter.resume_refused(cli.result, cli.events)
    except Exception:  # a plugin's bug: the run stands as it ended
        log.exception("adapter %r: resume_refused raised; ignored", adapter.name)
        return False


def expand_env(env: Mapping[str, str], where: str = "env") -> tuple[dict[str, str], list[str]]:
    """``env`` with its ``${NAME}`` references filled from this process's environment, and
    the values brought in. A variable unset since the run config was checked is a
    ``ConfigError`` naming it (the run stops; set it and ``council resume``)."""
    expanded: dict[str, str] = {}
    brought: list[str] = []
    for name, value in env.items():
        try:
            expanded[name], values = expand(value, os.environ)
        except UnsetVariable as exc:
            raise ConfigError(
                [
                    ConfigIssue(
                        "<run config>", None, f"{where}.{name}", f"${{{exc.name}}} is not set"
                    )
                ]
            ) from None
        brought += values
    return expanded, brought


async def _settings(config: RunConfig, call: PhaseCall) -> SandboxSettings:
    """The sandbox settings of this call's adapter: the run's ``sandbox:`` with its own over it."""
    configured = config.adapters.get(call.adapter)
    own = configured.sandbox if configured else None
    where = f"adapters.{call.adapter}.sandbox" if own is not None else "sandbox"
    return await settings_for(merged_sandbox(config.sandbox, own), where)


async def _sandbox(config: RunConfig, call: PhaseCall) -> Sandbox | None:
    """The sandbox this call's CLI runs in (its kind may be ``none``), or None when the call
    runs outside a session's worktree."""
    if call.reach is None:
        return None
    settings = await _settings(config, call)
    if call.sandbox_read:
        settings = dataclasses.replace(settings, read=(*settings.read, *call.sandbox_read))
    if settings.kind != "bubblewrap":
        return Sandbox(settings, None)
    join, resolv = (call.join, call.resolv) if call.resolv is not None else (None, None)
    # Its reach is looked at where the CLI's command is built, in the same worker-thread call.
    return Sandbox(settings, None, join, resolv, look=await call.reach())


async def checkout_confined(config: RunConfig, call: PhaseCall) -> bool:
    """Whether the kernel keeps this call's CLI from writing the repository's own checkout:
    it runs under bubblewrap (where the checkout is read-only) and no ``sandbox.write`` path
    of the run or its adapter opens any of the checkout again. The tamper guard then has no
    main-checkout changes of this CLI's to look for (``tamper.guard.watch``), and suspects it
    of nothing outside its reach (``tamper.blame``: git's setup and refs in the checkout's
    ``.git`` are out of it)."""
    if call.reach is None:
        return False
    settings = await _settings(config, call)
    if settings.kind != "bubblewrap":
        return False
    return not _opens_checkout(Path(config.repo), [Path(p) for p in settings.write])


def _opens_checkout(root: Path, writes: list[Path]) -> bool:
    """Whether a writable path is the checkout, in it, or above it (a relative one, which
    cannot be told without the working directory, counts as one)."""
    return not root.is_absolute() or any(
        not path.is_absolute() or path == root or root in path.parents or path in root.parents
        for path in writes
    )


def with_phase_options(
    configured: AdapterConfig | None, options: Mapping[str, Any]
) -> AdapterConfig | None:
    """The adapter's entry with the phase's ``options`` laid over its own, key by key."""
    if not options:
        return configured
    entry = configured or AdapterConfig()
    return entry.model_copy(update={"options": {**entry.options, **options}})


def _mcp_servers(config: RunConfig) -> tuple[McpServer, ...]:
    """The run's MCP servers, ``${NAME}`` filled in; what came from the environment, and any
    header value, is masked from now on, each named by its place in the run config."""
    servers: list[McpServer] = []
    for name, server in config.mcp_servers.items():
        env, brought = expand_env(server.env, f"mcp_servers.{name}.env")
        headers, brought_too = expand_env(server.headers, f"mcp_servers.{name}.headers")
        secret_mask.remember([*brought, *brought_too])
        secret_mask.remember_named(
            {
                **{
                    f"mcp_servers.{name}.env.{k}": v
                    for k, v in env.items()
                    if v in brought or is_sensitive(k)
                },
                **{f"mcp_servers.{name}.headers.{k}": v for k, v in headers.items()},
            }
        )
        servers.append(
            McpServer(
                name=name,
                command=server.command,
                args=tuple(server.args),
                env=env,
                url=server.url,
                headers=headers,
            )
        )
    return tuple(servers)


def _call_servers(config: RunConfig, call: PhaseCall) -> tuple[McpServer, ...]:
    """The call's own servers (the council's), but for a name the run config already gives
    one of its own: the user's server of that name stands."""
    return tuple(server for server in call.mcp_servers if server.name not in config.mcp_servers)


async def _logins(adapter: Adapter) -> tuple[str, ...]:
    """The HOME paths of the adapter's credentials the user has (a stat each)."""
    if not adapter.credentials:
        return ()
    found = await anyio.to_thread.run_sync(found_credentials, adapter.credentials)
    return tuple(credential.home_path for credential, _ in found)


def phase_home(home_root: Path, task_id: str, adapter: str, phase: str) -> Path:
    parts = [check_id(task_id, "task id"), check_id(adapter, "adapter name")]
    return ensure_under(home_root, Path(*parts, check_id(phase, "phase name")))


async def call_phase_cli(
    config: RunConfig,
    plugins: PluginHost,
    call: PhaseCall,
    *,
    log_dir: Path,
    cancel: anyio.Event | None = None,
    on_event: Callable[[Event], None] | None = None,
    watch: CliWatch | None = None,
    on_cli_event: Callable[[AgentEvent], None] | None = None,
    halt: anyio.Event | None = None,
) -> PhaseRun:
    configured = with_phase_options(config.adapters.get(call.adapter), call.options)
    adapter = plugins.registry.create(call.adapter, configured)
    resume = call.resume_session_id if adapter.can_resume else None
    if call.resume_session_id is not None and resume is None and call.restart is not None:
        await call.restart()  # a new session: never on top of what the old one left
    # The user's git identity first: a run config's own env may still set another.
    identity = identity_env(await user_identity(config.repo))
    env, brought = expand_env(configured.env if configured else {})
    secret_mask.remember(brought)  # they came from the environment: masked wherever stored
    secret_mask.remember_named(  # each known by its place in the run config
        {
            f"adapters.{call.adapter}.env.{name}": value
            for name, value in env.items()
            if value in brought or is_sensitive(name)
        }
    )
    servers = (
        _mcp_servers(config) + _call_servers(config, call) if adapter.takes_mcp_servers else ()
    )
    share = configured is None or configured.credentials == "shared"
    request = AdapterRequest(
        prompt=call.continued_prompt if resume and call.continued_prompt else call.prompt,
        workdir=call.workdir,
        home=phase_home(call.home_root, call.task_id, call.adapter, call.phase),
        model=call.model or (configured.model if configured else None),
        phase=call.phase,
        task_id=call.task_id,
        session_id=call.session_id,
        env={**identity, **call.env, **env},
        share_credentials=share,
        pass_env=tuple(configured.pass_env) if configured else (),
        user_config=configured is None or configured.user_config == "merge",
        logins=await _logins(adapter) if share else (),
        mcp_servers=servers,
    )
    sandbox = await _sandbox(config, call)
    messages: deque[str] = deque(maxlen=_MESSAGES_KEPT)

    def forward(event: AgentEvent) -> None:
        if on_cli_event is not None:
            on_cli_event(event)
        if event.kind == EventKind.MESSAGE and event.text:
            messages.append(event.text[:_MESSAGE_LIMIT])
        if on_event is not None:
            tool = {"tool": event.tool} if event.tool else {}
            on_event(
                PhaseEvent(
                    task_id=call.task_id,
                    phase=call.phase,
                    adapter=call.adapter,
                    kind=str(event.kind),
                    text=event.text[:EVENT_TEXT_LIMIT],
                    **tool,
                )
            )

    info = SessionInfo(
        session_id=call.session_id,
        task_id=call.task_id,
        phase=call.phase,
        adapter=call.adapter,
        attempt=max(call.attempt, 1),
        workdir=call.workdir,
        native_session_id=resume,
    )
    plugins.session_started(info)

    async def run(native: str | None, log_file: str | None) -> CliRun:
        shared = adapter.credentials if request.share_credentials else ()
        before = await anyio.to_thread.run_sync(user_copies, shared) if shared else {}
        try:
            return await run_cli(
                adapter,
                request,
                log_dir=log_dir,
                idle_timeout=call.idle_timeout,
                total_timeout=call.timeout,
                grace=call.grace,
                on_event=forward,
                resume_session_id=native,
                cancel=cancel,
                watch=watch,
                sandbox=sandbox,
                halt=halt,
                log_file=log_file,
            )
        finally:
            if before:  # a login the CLI saved over its link must not stay under .council/
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(settle_credentials, request.home, shared, before)

    cli = await run(resume, call.log_name)
    refused: str | None = None
    stopped = any(event is not None and event.is_set() for event in (cancel, halt))
    if resume is not None and _refused(adapter, cli) and not stopped:
        refused, resume = resume, None
        messages.clear()
        if call.restart is not None:
            await call.restart()
        request = request.model_copy(update={"prompt": call.prompt})  # a new session: whole
        cli = await run(None, again_log(call.log_name))
    plugins.session_ended(info, cli.outcome)
    return PhaseRun(
        cli=cli,
        messages=list(messages),
        resumed=resume,
        resume_refused=refused,
        denials=adapter.denials(cli.events),
        read_only=adapter.read_only_reason(),
        account=account_of(call.adapter, configured, adapter, request),
        model=_model_said(cli) or request.model,
    )


def again_log(name: str | None) -> str | None:
    """The log's name for the second run of a call (its CLI refused to resume): the first's
    with ``.then`` before ``.log``, beside it (listed after it), so both are found from the
    ledger's name."""
    if name is None:
        return None
    return f"{name.removesuffix('.log')}.then.log"


def account_of(
    name: str, configured: AdapterConfig | None, adapter: Adapter, request: AdapterRequest
) -> str:
    """The account a CLI runs under, by name, never by value: the config's ``account``, else
    the key variable it is given, else the login it finds, else none (a local model)."""
    if configured is not None and configured.account:
        return configured.account
    given = list(configured.env) if configured is not None else []  # not git's identity
    given += [n for n in (*request.pass_env, *adapter.env_names()) if n in os.environ]
    keys = [n for n in given if is_sensitive(n)]
    if keys:
        return f"{name}: key {keys[0]}"
    if request.logins:
        return f"{name}: login ~/{request.logins[0]}"
    return f"{name}: no key or login"


def _model_said(cli: CliRun) -> str | None:
    for event in cli.events:
        model = event.data.get("model") if event.kind == EventKind.STARTED else None
        if isinstance(model, str) and model and not model.startswith("<"):
            return model
    return None
