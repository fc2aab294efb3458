"""Qwen Code (``qwen``), a fork of Gemini CLI.

Command: ``qwen PROMPT --auth-type openai -o stream-json --approval-mode yolo [-m M]
[--resume SESSION_ID]`` with ``~/.qwen/settings.json`` in the private HOME. Measured on 0.15.10
and 0.24.4.

Quirks handled:

- The positional prompt is one-shot (``-p`` is deprecated); a prompt that starts with ``-``
  would be read as a flag, so it goes in as ``--prompt=...`` instead. A prompt over 100 KiB
  would not fit in an argument (``E2BIG``): it goes through stdin, with no prompt argument
  (qwen, like gemini, reads a stdin that is not a terminal, and appends ``-p`` text to it).
- stream-json is Claude-shaped (parsed by the shared ``_claude_stream``); ``-o json`` is the
  same objects as one JSON array on one line.
- **429 and 401 exit 0** with ``subtype: "success"`` and ``is_error: false``; the failure is
  only the text "[API Error: 429 ...]" in the assistant message and the result, which is
  classified by the status in it (``rate_limited``, ``auth_required``, else ``failed``).
- Qwen retries a 429 seven times (about 80 s) and no option caps it; on stdout it prints
  nothing meanwhile. Its debug log says each retry ("[RETRY] Attempt 1 failed with status
  429. Retrying ..."): the run turns it on (``QWEN_DEBUG_LOG_FILE=1``), names the session
  (``--session-id``, a new UUID, or the resumed one) so the log's path is known, and links that
  path to the CLI's stderr (``CommandSpec.stderr_files``). The first 429 is then a
  ``rate_limited`` event that ends the run (``ends_run``), and the orchestrator's park waits
  instead, without holding a slot, as for aider and opencode. The log's other lines stay in
  the CLI's log, never events, and out of a failure's stderr tail. Measured on 0.24.4.
- The approval mode is always passed (``--approval-mode``): 0.24 starts in its new ``auto``
  mode when none is given (an LLM classifier approves "safe" actions), where headless file
  edits are declined ("Matching deny rule: edit").
- Headless, approval modes "default", "auto" and "plan" drop the edit and shell tools: the
  ``init`` event then lists no edit tool (``denials`` names it, so a build that changed
  nothing is ``permission_denied``), and a tool call the model tries anyway is declined
  and listed in the result's ``permission_denials`` (``permission_denied`` at once). All
  three exit 0. Those modes make ``can_write`` False.
- Exit codes 41/42/44/52/53/54 are Gemini CLI's FatalError codes.
- ``~/.qwen/settings.json`` is the user's own (``mcpServers``, model settings, the key of
  ``security.auth.apiKey``) with the run's keys over it; usage statistics, telemetry and
  auto-update are off unless it turns them on. Their ``QWEN.md``, commands, agents and
  extensions are linked in.
- ``auth_type: openai-responses`` (0.23.3 on) speaks the OpenAI Responses API with the same
  ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``. ``qwen-oauth`` is refused by the options model:
  0.24 exits "Qwen OAuth free tier was discontinued on 2026-04-15" (measured), so the error
  comes at ``council config validate`` with the way to log in instead.
- A key in ``~/.qwen/.env`` or ``~/.env`` is a login (``credentials``), linked like any.
- Started as is, qwen loads its whole CLI, then starts it again in a child Node.js process
  and waits for it (for its ``advanced.autoConfigureMemory``, off by default, and its
  self-update, which the settings turn off): ``QWEN_CODE_NO_RELAUNCH=true`` runs it once.
  Measured on 0.24.4.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from adapters import _claude_stream
from adapters._build import (
    MODEL,
    OUTPUT,
    PROMPT,
    SESSION,
    AddDirs,
    add_dirs_field,
    command_env,
    flag_like,
    mcp_entry,
    option,
    owns,
    system_prompt_field,
)
from adapters._hosts import PROVIDER_HOSTS
from adapters._jsonl import loads
from adapters._outcomes import (
    GEMINI_FAMILY_EXITS,
    error_events,
    finish,
    plain_line,
    reclassify,
)
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
    OutcomeKind,
    ProcessResult,
    Stream,
    UserFile,
    native_id,
    too_long_for_argument,
)
from orchestrator.plugins.hookspecs import hookimpl

__all__ = ["QwenAdapter", "register_adapters"]

_SETTINGS_KEY = ("security", "auth", "apiKey")  # a key qwen 0.24 reads from settings.json
_QWEN_OAUTH_GONE = (
    "auth_type 'qwen-oauth' is refused: the Qwen OAuth free tier was discontinued on "
    "2026-04-15 and qwen 0.24 no longer logs in with it. Use an API key: auth_type 'openai' "
    "(or 'openai-responses') with OPENAI_API_KEY set (and base_url for DashScope, OpenRouter or "
    "another OpenAI-compatible endpoint), or the key in ~/.qwen/.env or ~/.env"
)
# The variables that make a dotenv file a qwen login: the keys its auth types read.
_KEY_NAMES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "DASHSCOPE_API_KEY",
    "OPENROUTER_API_KEY",
    "BAILIAN_CODING_PLAN_API_KEY",
    "BAILIAN_TOKEN_PLAN_API_KEY",
)
# A line of qwen's debug log (``<ISO time> [LEVEL] [TAG] message``), and the retry of a 429 in
# it: "Retrying with backoff in 3s..." or "Retrying after explicit delay of 200ms..." (the
# server's Retry-After), "[Persistent] ... Retrying in 30s..." in its unattended mode.
_DEBUG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[(?:DEBUG|INFO|WARN|ERROR)\] ")
_RETRIED_429 = re.compile(
    r"Attempt \d+ failed with status 429\. Retrying (?:with backoff in (\d+)s"
    r"|after explicit delay of (\d+)ms|in (\d+)s)"
)
_EDIT_TOOLS = frozenset({"edit", "write_file", "replace", "run_shell_command"})
_READ_ONLY_MODES = {
    "plan": "approval mode 'plan' only analyses: it never modifies files",
    "default": "approval mode 'default' asks before each edit, and nobody answers headless",
    "auto": "approval mode 'auto' declines file edits headless",
}


class QwenAdapter(Adapter):
    name = "qwen"
    executable = "qwen"
    streams_json = True
    can_resume = True
    can_choose_model = True
    edits_files = True
    takes_mcp_servers = True
    passthrough_env: ClassVar[tuple[str, ...]] = (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_MODEL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_MODEL",
        "GEMINI_API_KEY",
        "DASHSCOPE_API_KEY",
    )
    # Qwen 0.24 reads keys from the first dotenv file it finds, walking up from the working
    # directory, then ~/.qwen/.env ($QWEN_HOME/.env) and ~/.env (docs/configuration/auth.md,
    # "Step 2: Set environment variables"; findEnvFiles in its bundle). Its Qwen OAuth login
    # (~/.qwen/oauth_creds.json) is not listed: that free tier was discontinued on 2026-04-15
    # and 0.24 refuses it ("Qwen OAuth free tier was discontinued"). A key kept in
    # ~/.qwen/settings.json (`env`, or the deprecated `security.auth.apiKey`) is settings.
    credentials: ClassVar[tuple[Credential, ...]] = (
        Credential(".qwen/.env", "keys in ~/.qwen/.env", moved_by="QWEN_HOME", keys=_KEY_NAMES),
        Credential(".env", "keys in ~/.env", keys=_KEY_NAMES),
    )

    user_files: ClassVar[tuple[UserFile, ...]] = tuple(
        UserFile(path, what, moved_by="QWEN_HOME")
        for path, what in (
            (".qwen/settings.json", "settings (mcpServers, model settings, security.auth)"),
            (".qwen/QWEN.md", "instructions"),
            (".qwen/commands", "custom commands"),
            (".qwen/agents", "agents"),
            (".qwen/extensions", "extensions"),
        )
    )

    class Config(ExtraArgsConfig):
        approval_mode: Literal["yolo", "auto-edit", "auto", "plan", "default"] = "yolo"
        # openai-responses: the OpenAI Responses API (/v1/responses), since qwen 0.23.3, with
        # the same OPENAI_API_KEY and OPENAI_BASE_URL as openai.
        auth_type: (
            Literal["openai", "openai-responses", "anthropic", "gemini", "vertex-ai"] | None
        ) = "openai"
        base_url: str | None = None  # OPENAI_BASE_URL (ANTHROPIC_BASE_URL with anthropic)
        max_retries: int | None = Field(default=0, ge=0)
        max_session_turns: int | None = Field(default=None, ge=1)
        reasoning_effort: Literal["low", "medium", "high", "xhigh", "max"] | None = Field(
            default=None, description="settings' model.reasoningEffort, over the user's"
        )
        system_prompt: str | None = system_prompt_field()  # --append-system-prompt
        add_dirs: AddDirs = add_dirs_field()  # --include-directories

        option_flags: ClassVar[Mapping[str, str]] = {
            "--append-system-prompt": "system_prompt",
            "--include-directories": "add_dirs",
            "--add-dir": "add_dirs",
        }

        @field_validator("auth_type", mode="before")
        @classmethod
        def _no_qwen_oauth(cls, value: object) -> object:
            if value == "qwen-oauth":
                raise ValueError(_QWEN_OAUTH_GONE)
            return value

        # Every flag ``_command`` sets (tests/adapters/test_adapter_extra_args.py checks it).
        owned_flags: ClassVar[Mapping[str, str]] = {
            **owns(PROMPT, "-p", "--prompt", "-i", "--prompt-interactive"),
            **owns(option("auth_type"), "--auth-type"),
            **owns(OUTPUT, "-o", "--output-format"),
            **owns(option("approval_mode"), "-y", "--yolo", "--approval-mode", "--allowed-tools"),
            **owns(option("max_session_turns"), "--max-session-turns"),
            **owns(MODEL, "-m", "--model"),
            **owns(SESSION, "-r", "--resume", "-c", "--continue", "--session-id"),
        }

    config: Config  # the base class validates the run config's options into this model

    def model_endpoints(self, request: AdapterRequest) -> tuple[str, ...]:
        """``base_url`` when set, else the API its ``auth_type`` speaks to by default."""
        opts = self.config
        if opts.base_url:
            return (opts.base_url,)
        provider = {"anthropic": "anthropic", "gemini": "gemini"}.get(opts.auth_type or "")
        if opts.auth_type == "vertex-ai":
            return ("aiplatform.googleapis.com", "oauth2.googleapis.com")
        return PROVIDER_HOSTS[provider or "openai"]

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        return self._command(request, request.resume_session_id)

    def resume_command(self, request: AdapterRequest, native_session_id: str) -> CommandSpec:
        return self._command(request, native_session_id)

    def _command(self, request: AdapterRequest, resume: str | None) -> CommandSpec:
        opts = self.config
        stdin = request.prompt if too_long_for_argument(request.prompt) else None
        argv = [self.binary]
        if stdin is None:
            flag = flag_like(request.prompt)
            argv.append(f"--prompt={request.prompt}" if flag else request.prompt)
        if opts.auth_type:
            argv += ["--auth-type", opts.auth_type]
        argv += ["-o", "stream-json"]
        # Always explicit: without it 0.24 starts in "auto", which declines edits headless.
        argv += ["--approval-mode", opts.approval_mode]
        if opts.max_session_turns is not None:
            argv += ["--max-session-turns", str(opts.max_session_turns)]
        if request.model:
            argv += ["-m", request.model]
        # Named here so its debug log's path is known: that file is the CLI's stderr.
        session = native_id(self.name, resume) if resume is not None else str(uuid.uuid4())
        argv += ["--resume", session] if resume is not None else ["--session-id", session]
        if opts.system_prompt:
            argv.append(f"--append-system-prompt={opts.system_prompt}")
        for directory in opts.add_dirs:
            argv.append(f"--include-directories={directory}")
        argv += self.extra_args()  # after the positional prompt: yargs takes options anywhere
        # One full Node.js process, not two: qwen loads its CLI, then starts it again in a
        # child (its memory setting, off by default, and self-update) unless told not to.
        knobs: dict[str, str] = {"QWEN_DEBUG_LOG_FILE": "1", "QWEN_CODE_NO_RELAUNCH": "true"}
        if opts.base_url:
            base_var = "ANTHROPIC_BASE_URL" if opts.auth_type == "anthropic" else "OPENAI_BASE_URL"
            knobs[base_var] = opts.base_url
        env, secrets = command_env(request, knobs)
        return CommandSpec(
            argv=argv,
            env=env,
            config_files={".qwen/settings.json": self._settings(request)},
            stderr_files=[f".qwen/debug/{session}.txt"],
            stdin=stdin,
            secrets=secrets,
        )

    def _settings(self, request: AdapterRequest) -> ConfigFile:
        """``settings.json``: the user's own (``mcpServers``, model settings, the key of
        ``security.auth.apiKey``) with the run's options over it."""
        defaults: dict[str, Any] = {
            "general": {"disableAutoUpdate": True},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
        }
        model: dict[str, Any] = {}
        if self.config.max_retries is not None:
            model["generationConfig"] = {"maxRetries": self.config.max_retries}
        if request.model:
            model["name"] = request.model  # as `-m` says
        if self.config.reasoning_effort:
            model["reasoningEffort"] = self.config.reasoning_effort
        required: dict[str, Any] = {"model": model} if model else {}
        if request.mcp_servers:
            required["mcpServers"] = {s.name: mcp_entry(s, "gemini") for s in request.mcp_servers}
        if self.read_only_reason():
            # The user's tools.allowed runs the tools it names without approval, so an edit or
            # shell tool there would write in a mode the run counts on not writing.
            required["tools"] = {"allowed": []}
        return ConfigFile(
            format="json", defaults=defaults, required=required, logins=(_SETTINGS_KEY,)
        )

    def read_only_reason(self) -> str | None:
        why = _READ_ONLY_MODES.get(self.config.approval_mode)
        return f"qwen: {why}; use 'yolo' or 'auto-edit'" if why else None

    def denials(self, events: Sequence[AgentEvent]) -> list[str]:
        # A session started without edit tools could not have written, whatever it was told.
        started = [_no_edit_tools(e) for e in events if _lacks_edit_tools(e)]
        return [*super().denials(events), *started]

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        value = loads(line) if stream == "stdout" else None
        if value is None:
            return _debug_line(line) if _DEBUG_LINE.match(line) else plain_line(line)
        return _claude_stream.parse_value(value)

    def ends_run(self, event: AgentEvent) -> bool:
        return event.kind == EventKind.RATE_LIMITED or super().ends_run(event)

    def classify(self, result: ProcessResult, events: Sequence[AgentEvent]) -> Outcome:
        tail = result.stderr_tail
        if tail:
            result = result.model_copy(update={"stderr_tail": _without_debug_log(tail)})
        outcome = super().classify(result, events)
        code = result.exit_code
        if outcome.kind == OutcomeKind.FAILED and code in GEMINI_FAMILY_EXITS:
            kind, why = GEMINI_FAMILY_EXITS[code]
            outcome = reclassify(outcome, kind, f"{why} (exit {code}): {outcome.message}")
        return finish(outcome, events)


def _debug_line(line: str) -> list[AgentEvent]:
    """A line of qwen's debug log: the retry of a 429 is a rate limit (said at once, where
    stdout says it only after its seven tries); any other line is for the log alone."""
    found = _RETRIED_429.search(line)
    if found is None:
        return []
    seconds, millis, persistent = found.groups()
    wait = float(seconds or persistent or 0) or (int(millis) / 1000 if millis else None)
    message = f"429: rate limited (qwen would retry in {wait:g} s)" if wait else "429"
    return error_events(message, "rate_limit", retry_after=wait, data={"logged": True})


def _without_debug_log(tail: str) -> str:
    """The stderr tail without the debug log's lines (each head line, and the indented lines
    and braces of the objects and stack traces it prints under it)."""
    kept = [
        line
        for line in tail.splitlines()
        if not _DEBUG_LINE.match(line) and not line.startswith((" ", "\t", "}"))
    ]
    return "\n".join(kept)


def _lacks_edit_tools(event: AgentEvent) -> bool:
    tools = event.data.get("tools")
    return (
        event.kind == EventKind.STARTED
        and isinstance(tools, list)
        and bool(tools)
        and not _EDIT_TOOLS.intersection(tools)
    )


def _no_edit_tools(started: AgentEvent) -> str:
    mode = started.data.get("permission_mode") or "unknown"
    return f"qwen started in approval mode {mode!r} without edit or shell tools"


@hookimpl
def register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(QwenAdapter)
