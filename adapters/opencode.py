"""opencode (``opencode``), measured on version 1.18.33.

Command: ``opencode run --format json [-m PROVIDER/MODEL] --auto [--session ses_...] PROMPT``
with the offline env knobs and ``OPENCODE_CONFIG`` pointing at a config file in the private
HOME: the user's own ``~/.config/opencode/opencode.json`` (``mcp``, providers, agents) with the
run's keys over it. Their ``AGENTS.md``, agents and commands are linked in.

Quirks handled:

- The JSON lines have no terminal "result" event: the run ends with a ``step_finish`` whose
  ``part.reason`` is ``"stop"``. Every event carries the session id (``sessionID``, ``ses_...``),
  so even a run that fails on its first request has one.
- Usage and cost come per ``step_finish`` (one per model request), so they are summed; the
  reasoning tokens opencode keeps apart are added to the output. Each step's is said twice:
  as a ``running_usage`` event (``data["step"]`` its message id), then as the ``usage`` event
  the outcome sums, which covers it (``EventKind.RUNNING_USAGE``).
- API errors are one ``error`` event (``error.data.statusCode`` 429/401, ``retry-after``
  header) and exit 1; releases before 1.18 exited 0 after such an event, which still fails
  here because the error is not followed by a finished step. opencode retries a 429 itself
  (5 times, 2 s doubling to 30 s, no option caps it) and says so only in its log: the run
  passes ``--print-logs --log-level ERROR``, whose "stream error" line on stderr is each
  failed request. The run ends at the first one that is a rate limit (``ends_run``), and
  the orchestrator's park waits instead (then continues the session).
- A prompt that starts with ``-`` follows a ``--`` so yargs keeps it a message. A prompt over
  100 KiB would not fit in an argument (``E2BIG``): it goes through stdin with no message
  argument (``run`` appends a stdin that is not a terminal to its message).
- ``model`` without a slash gets the configured ``provider`` in front; ``base_url`` adds an
  OpenAI-compatible provider block (``@ai-sdk/openai-compatible``, key from ``{env:VAR}``, so
  the key never lands in a file).
- Edits and shell are allowed by opencode's default permissions, so ``auto_approve: false``
  alone changed nothing: it also writes ``"permission": {"edit": "ask", "bash": "ask"}``,
  which a headless run refuses ("permission requested: edit (F); auto-rejecting" on stderr,
  the tool call ending in error "The user rejected permission to use this specific tool
  call", exit 0). The same goes in ``OPENCODE_PERMISSION``: a repository's ``opencode.json``
  beats the ``OPENCODE_CONFIG`` file (its ``"edit": "allow"`` let a write through, measured
  on 1.18.33), the variable beats both. The ``plan`` agent refuses edits by a deny rule ("The
  user has specified a rule which prevents you from using this specific tool call"). Both are
  denials, the run ``permission_denied``; both options make ``can_write`` False.
- ``OPENCODE_DISABLE_AUTOUPDATE``, ``..._MODELS_FETCH``, ``..._LSP_DOWNLOAD``,
  ``..._DEFAULT_PLUGINS`` keep it off the network apart from the model API; sharing is off.
  None of them stops the npm install of ``@opencode-ai/plugin`` into the config directory on
  every start (measured: registry.npmjs.org, ~19 MB into ``~/.npm`` per run): a lock file
  that already lists it (``_PLUGIN_LOCK``) does.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Self

from pydantic import Field, model_validator

from adapters._build import (
    MODEL,
    OUTPUT,
    PROMPT,
    SESSION,
    command_env,
    flag_like,
    json_file,
    mcp_entry,
    option,
    owns,
    system_prompt_field,
)
from adapters._hosts import provider_hosts
from adapters._jsonl import count, dig, loads, money, obj, strip_ansi, text
from adapters._outcomes import error_events, error_kind, finish, plain_line
from orchestrator.adapter import (
    Adapter,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    ConfigFile,
    Credential,
    EventKind,
    ExtraArgsConfig,
    Outcome,
    ProcessResult,
    Stream,
    Usage,
    UserFile,
    native_id,
    too_long_for_argument,
)
from orchestrator.plugins.hookspecs import hookimpl

__all__ = ["OpencodeAdapter", "register_adapters"]

_OFFLINE_ENV = {
    "OPENCODE_DISABLE_AUTOUPDATE": "true",
    "OPENCODE_DISABLE_MODELS_FETCH": "true",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "true",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "true",
    "OPENCODE_DISABLE_SHARE": "true",
}
_CONFIG_PATH = ".config/opencode/council.json"
_INSTRUCTIONS = ".config/opencode/council-instructions.md"  # the option system_prompt
_ASK = {"edit": "ask", "bash": "ask"}  # auto_approve: false (refused in a headless run)
_USER_CONFIG = ".config/opencode/opencode.json"  # merged into _CONFIG_PATH, never linked
# On every start opencode 1.18 installs @opencode-ai/plugin (the types user plugins import) into
# each config directory, from registry.npmjs.org (~5 MB, in the background, cut off when the
# run ends, so again next run), unless the directory has a node_modules/ and its lock file
# lists every dependency. CLI Council loads no plugin: the seed says the one dependency is
# there, so the check passes and nothing is downloaded.
_PLUGIN_LOCK = {
    ".config/opencode/package-lock.json": json_file(
        {
            "name": "cli-council-seed",
            "lockfileVersion": 3,
            "packages": {"": {"dependencies": {"@opencode-ai/plugin": "*"}}},
        }
    ),
    ".config/opencode/node_modules/.cli-council": "no plugins are installed here\n",
}
_AUTH_ERROR_NAMES = ("ProviderAuthError", "AuthError")
_MAX_TOOL_TEXT = 4000
# A tool call refused by a permission rule or by a headless "ask" (measured on 1.18.33).
_REFUSED_TOOL = re.compile(
    r"rejected permission to use|rule which prevents you from using", re.IGNORECASE
)
_AUTO_REJECTING = re.compile(r"permission requested: (.*?);\s*auto-rejecting", re.IGNORECASE)
_READ_ONLY_AGENTS = frozenset({"plan"})
# opencode's log line for a failed model request ends with error.error="<name>: <message>".
_LOGGED_ERROR = re.compile(r'error\.error="((?:[^"\\]|\\.)*)"')


class OpencodeAdapter(Adapter):
    name = "opencode"
    executable = "opencode"
    streams_json = True
    can_resume = True
    can_choose_model = True
    edits_files = True
    takes_mcp_servers = True
    passthrough_env: ClassVar[tuple[str, ...]] = (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "OPENROUTER_API_KEY",
        "GOOGLE_GENERATIVE_AI_API_KEY",
        "GROQ_API_KEY",
        "DEEPSEEK_API_KEY",
    )
    credentials: ClassVar[tuple[Credential, ...]] = (
        Credential(
            ".local/share/opencode/auth.json",
            "`opencode auth login` keys and logins",
            moved_by="XDG_DATA_HOME",
            moved_path="opencode/auth.json",
        ),
    )

    user_files: ClassVar[tuple[UserFile, ...]] = tuple(
        UserFile(path, what, moved_by="XDG_CONFIG_HOME", moved_path=path.removeprefix(".config/"))
        for path, what in (
            (_USER_CONFIG, "settings (mcp, providers, agents)"),
            (".config/opencode/AGENTS.md", "instructions"),
            (".config/opencode/agent", "agents"),
            (".config/opencode/command", "custom commands"),
        )
    )

    class Config(ExtraArgsConfig):
        provider: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+$")
        model: str | None = None  # used when the request names no model
        base_url: str | None = None  # an OpenAI-compatible endpoint for ``provider``
        api_key_env: str = "OPENAI_API_KEY"
        auto_approve: bool = True  # --auto: approve what is not explicitly denied
        agent: str | None = None
        reasoning_effort: str | None = Field(
            default=None,
            pattern=r"^[A-Za-z0-9._-]+$",
            description="--variant: the model's reasoning effort (provider-specific: minimal, "
            "low, medium, high, max)",
        )
        # A file in the private HOME named in the config's `instructions`.
        system_prompt: str | None = system_prompt_field()

        # Every flag ``_command`` sets (tests/adapters/test_adapter_extra_args.py checks it).
        owned_flags: ClassVar[Mapping[str, str]] = {
            **owns("the adapter reads opencode's errors from its logs", "--print-logs"),
            **owns("the adapter reads opencode's errors at this level", "--log-level"),
            **owns(OUTPUT, "--format"),
            **owns(MODEL + " (or the option `model`)", "-m", "--model"),
            **owns(option("auto_approve"), "--auto"),
            **owns(option("agent"), "--agent"),
            **owns(option("reasoning_effort"), "--variant"),
            **owns(SESSION, "-s", "--session", "-c", "--continue"),
            **owns(PROMPT, "--prompt"),
        }

        @model_validator(mode="after")
        def _endpoint_needs_a_provider(self) -> Self:
            if self.base_url and not self.provider:
                raise ValueError("base_url needs provider: the name models are addressed by")
            return self

    config: Config  # the base class validates the run config's options into this model

    def env_names(self) -> tuple[str, ...]:
        # A custom endpoint's key may live under a name of the user's choosing.
        return (*self.passthrough_env, self.config.api_key_env)

    def model_endpoints(self, request: AdapterRequest) -> tuple[str, ...]:
        """The model's provider's API (``provider/model``; every known one when it names
        none), or ``base_url`` (its model list is not fetched: ``_OFFLINE_ENV``)."""
        base = (self.config.base_url,) if self.config.base_url else ()
        return base or provider_hosts(self._model(request), None)

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        return self._command(request, request.resume_session_id)

    def resume_command(self, request: AdapterRequest, native_session_id: str) -> CommandSpec:
        return self._command(request, native_session_id)

    def _command(self, request: AdapterRequest, session: str | None) -> CommandSpec:
        opts = self.config
        argv = [self.binary, "run", "--print-logs", "--log-level", "ERROR", "--format", "json"]
        model = self._model(request)
        if model:
            argv += ["-m", model]
        if opts.auto_approve:
            argv.append("--auto")
        if opts.agent:
            argv += ["--agent", opts.agent]
        if opts.reasoning_effort:
            argv += ["--variant", opts.reasoning_effort]
        if session is not None:
            argv += ["--session", native_id(self.name, session)]
        argv += self.extra_args()  # before the prompt, which may follow a "--"
        stdin = request.prompt if too_long_for_argument(request.prompt) else None
        if stdin is None:
            argv += ["--", request.prompt] if flag_like(request.prompt) else [request.prompt]
        config_file = request.home / _CONFIG_PATH
        knobs = {**_OFFLINE_ENV, "OPENCODE_CONFIG": str(config_file)}
        if not opts.auto_approve:
            # A repository's opencode.json beats OPENCODE_CONFIG; this beats both (measured).
            knobs["OPENCODE_PERMISSION"] = json.dumps(_ASK)
        env, secrets = command_env(request, knobs)
        return CommandSpec(
            argv=argv,
            env=env,
            home_files={**_PLUGIN_LOCK, **self._instructions()},
            config_files={_CONFIG_PATH: self._config(model, request)},
            stdin=stdin,
            secrets=secrets,
        )

    def _instructions(self) -> dict[str, str]:
        prompt = self.config.system_prompt
        return {_INSTRUCTIONS: prompt} if prompt else {}

    def _model(self, request: AdapterRequest) -> str | None:
        model = request.model or self.config.model
        if model and "/" not in model and self.config.provider:
            return f"{self.config.provider}/{model}"
        return model

    def _config(self, model: str | None, request: AdapterRequest) -> ConfigFile:
        """The run's config file: the user's own ``opencode.json`` (``mcp``, providers,
        agents, instructions) with the run's endpoint and permissions over it."""
        opts = self.config
        defaults: dict[str, Any] = {
            "$schema": "https://opencode.ai/config.json",
            "autoupdate": False,
            "share": "disabled",
            # Its undo snapshots: a second git repository of the worktree in the private HOME,
            # written with git at every step and left running when it exits (a survivor on
            # every run, measured on 1.18.33). The orchestrator commits and rewinds itself.
            "snapshot": False,
        }
        required: dict[str, Any] = {}
        if not opts.auto_approve:
            # opencode allows edits and shell by default; "ask" is refused in a headless run.
            required["permission"] = dict(_ASK)
        if model:
            required["model"] = model  # as `-m` says
        if opts.system_prompt:
            required["instructions"] = [str(request.home / _INSTRUCTIONS)]
        if request.mcp_servers:
            required["mcp"] = {s.name: mcp_entry(s, "opencode") for s in request.mcp_servers}
        if opts.base_url and opts.provider:
            model_id = model.split("/", 1)[1] if model and "/" in model else model
            options = {"baseURL": opts.base_url}
            # opencode reads the user's `opencode auth login` key for this provider only when
            # the config names none: name the variable only when it is set.
            if opts.api_key_env in request.env or opts.api_key_env in os.environ:
                options["apiKey"] = f"{{env:{opts.api_key_env}}}"
            required["provider"] = {
                opts.provider: {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": opts.provider,
                    "options": options,
                    "models": {model_id: {"name": model_id}} if model_id else {},
                }
            }
        return ConfigFile(format="json", defaults=defaults, required=required, user=_USER_CONFIG)

    def read_only_reason(self) -> str | None:
        if self.config.agent in _READ_ONLY_AGENTS:
            return f"opencode: agent {self.config.agent!r} refuses file edits"
        if not self.config.auto_approve:
            return (
                "opencode: auto_approve is false, so edits and shell wait for an approval "
                "nobody can give headless"
            )
        return None

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        if stream == "stderr":
            rejected = _AUTO_REJECTING.search(strip_ansi(line))
            if rejected:
                what = f"opencode refused {rejected[1]} (permission 'ask', headless)"
                return [AgentEvent(kind=EventKind.ERROR, text=what, error_kind="permission")]
            return _log_line(strip_ansi(line)) or plain_line(line)
        value = loads(line)
        if not isinstance(value, dict):
            return plain_line(line)
        return _event(value)

    def ends_run(self, event: AgentEvent) -> bool:
        return event.kind == EventKind.RATE_LIMITED or super().ends_run(event)

    def classify(self, result: ProcessResult, events: Sequence[AgentEvent]) -> Outcome:
        return finish(super().classify(result, events), events)


def _log_line(line: str) -> list[AgentEvent]:
    """A failed model request in opencode's log (``--print-logs``): a rate limit or a refused
    key becomes its event (the final ``error`` event on stdout comes only after opencode's
    own retries); any other failure is left to that final event."""
    if 'message="stream error"' not in line:
        return []
    found = _LOGGED_ERROR.search(line)
    message = (found[1] if found else line).strip()
    kind = error_kind(message)
    if kind not in ("rate_limit", "auth"):
        return []
    return error_events(message, kind, data={"logged": True})


def _event(event: dict[str, Any]) -> list[AgentEvent]:
    kind = text(event.get("type"))
    session = text(event.get("sessionID")) or None
    part = obj(event.get("part"))
    if kind == "step_start":
        return [AgentEvent(kind=EventKind.STARTED, text="step", native_session_id=session)]
    if kind == "text":
        body = text(part.get("text"))
        return (
            [AgentEvent(kind=EventKind.MESSAGE, text=body, native_session_id=session)]
            if body
            else []
        )
    if kind == "tool_use":
        return _tool(part, session)
    if kind == "step_finish":
        return _step_finish(part, session)
    if kind == "error":
        return _error(obj(event.get("error")), session)
    return [AgentEvent(kind=EventKind.RAW, text=kind or "unknown event", data={"type": kind})]


def _tool(part: dict[str, Any], session: str | None) -> list[AgentEvent]:
    tool = text(part.get("tool")) or None
    state = obj(part.get("state"))
    arguments = obj(state.get("input"))
    target = text(arguments.get("filePath")) or text(arguments.get("command"))
    events = [
        AgentEvent(
            kind=EventKind.TOOL_CALL,
            tool=tool,
            text=target[:_MAX_TOOL_TEXT],
            native_session_id=session,
            data={"call_id": text(part.get("callID")), "input": arguments},
        )
    ]
    status = text(state.get("status"))
    if status in ("completed", "error"):
        output = text(state.get("output")) or text(state.get("error"))
        events.append(
            AgentEvent(
                kind=EventKind.TOOL_RESULT,
                tool=tool,
                text=output[:_MAX_TOOL_TEXT],
                native_session_id=session,
                data={"status": status},
            )
        )
        if status == "error" and _REFUSED_TOOL.search(output):
            events.append(
                AgentEvent(
                    kind=EventKind.ERROR,
                    text=f"opencode refused {tool or 'a tool'} {target}".strip()
                    + f": {output[:300]}",
                    error_kind="permission",
                    native_session_id=session,
                )
            )
    return events


def _step_finish(part: dict[str, Any], session: str | None) -> list[AgentEvent]:
    tokens = obj(part.get("tokens"))
    usage = Usage(
        input_tokens=count(tokens.get("input")),
        output_tokens=count(tokens.get("output")) + count(tokens.get("reasoning")),
        cache_read_tokens=count(dig(tokens, "cache", "read")),
        cache_write_tokens=count(dig(tokens, "cache", "write")),
        cost_usd=money(part.get("cost")),
    )
    step = text(part.get("messageID")) or text(part.get("id"))
    events = [
        AgentEvent(
            kind=EventKind.RUNNING_USAGE,
            native_session_id=session,
            usage=usage,
            data={"step": step} if step else {},
        ),
        AgentEvent(kind=EventKind.USAGE, native_session_id=session, usage=usage),
    ]
    if text(part.get("reason")) == "stop":
        events.append(AgentEvent(kind=EventKind.COMPLETED, native_session_id=session))
    return events


def _error(error: dict[str, Any], session: str | None) -> list[AgentEvent]:
    name = text(error.get("name"))
    data = obj(error.get("data"))
    message = text(data.get("message")) or name or "opencode reported an error"
    status = count(data.get("statusCode")) or None
    kind = "auth" if name in _AUTH_ERROR_NAMES else error_kind(message, status)
    events = error_events(
        f"{name}: {message}" if name else message,
        kind,
        retry_after=_retry_after(obj(data.get("responseHeaders"))),
        data={"status": status, "retryable": data.get("isRetryable") is True},
    )
    return [e.model_copy(update={"native_session_id": session}) for e in events]


def _retry_after(headers: dict[str, Any]) -> float | None:
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            seconds = float(text(headers.get(name)).strip()) / scale
        except ValueError:
            continue  # absent, or an HTTP date: no usable hint in this header
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


@hookimpl
def register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(OpencodeAdapter)
