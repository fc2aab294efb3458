"""Claude Code (``claude``), measured on version 2.1.197.

Command: ``claude -p PROMPT --output-format stream-json --verbose --permission-mode acceptEdits
[--max-turns N] [--allowedTools ...] [--model M] [--resume SESSION_ID]``, stdin closed.

Quirks handled:

- ``stream-json`` in print mode needs ``--verbose`` (without it claude exits 1).
- A prompt that starts with ``-`` would be read as a flag, and one over 100 KiB would not fit
  in an argument (``E2BIG``), so those go through stdin instead (``-p`` reads the prompt from
  stdin when none is given).
- Permission denials exit 0 with ``subtype: "success"``; the trace is the result's
  ``permission_denials`` list (and, since 2.1.330, a ``system/permission_denied`` event per
  refusal), which makes the run ``permission_denied``. Modes ``plan`` (never writes) and
  ``default``/``dontAsk`` without a writing tool in ``allowed_tools`` (they ask, and nobody
  answers headless) make ``can_write`` False.
- API failures end with ``subtype: "success"`` too, but ``is_error: true`` and
  ``api_error_status`` (429, 401); each retry before that is a ``system/api_retry`` event
  (rate limited with its delay). Subscription quotas come as ``rate_limit_event`` with
  ``resetsAt`` (Unix seconds), kept as the outcome's ``retry_at``.
- Usage and cost are read once, from the final ``result`` (assistant messages repeat them).
- ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`` and friends keep it off the network apart from
  the model API; ``max_retries`` sets ``CLAUDE_CODE_MAX_RETRIES`` (default 10 retries).
- The user's ``~/.claude/settings.json`` (hooks, permissions, env) and ``~/.claude.json``
  (user-scope MCP servers, without its per-directory ``projects``) are merged with the run's
  keys (the quiet and endpoint env, the permission mode, the model); their ``CLAUDE.md``,
  agents, commands, skills, hook scripts and output styles are linked in.
- ``bypassPermissions`` refuses to run as root unless ``IS_SANDBOX=1`` is in the run's env.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from adapters import _claude_stream
from adapters._build import (
    MODEL,
    OUTPUT,
    PROMPT,
    SESSION,
    AddDirs,
    add_dirs_field,
    command_env,
    mcp_entry,
    option,
    owns,
    stdin_prompt,
    system_prompt_field,
)
from adapters._jsonl import loads
from adapters._outcomes import finish, plain_line
from orchestrator.adapter import (
    AWS_PROFILES,
    GCLOUD_ADC,
    Adapter,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    ConfigFile,
    Credential,
    ExtraArgsConfig,
    Outcome,
    ProcessResult,
    Stream,
    UserFile,
    native_id,
)
from orchestrator.plugins.hookspecs import hookimpl

__all__ = ["ClaudeCodeAdapter", "register_adapters"]

_QUIET_ENV = {
    # 2.1.330 connects MCP servers in the background and asks the model at once by default:
    # a server slower to start than that (seen under load) is missing from the first request.
    # Headless, the user's and the run's MCP servers are waited for (up to MCP_TIMEOUT).
    "MCP_CONNECTION_NONBLOCKING": "false",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
}


_MCP_FILE = ".claude/council-mcp.json"  # the run's mcp_servers, for --mcp-config
_MOVED = "CLAUDE_CONFIG_DIR"  # moves ~/.claude, and ~/.claude.json into it
# Tools that change the worktree; "Bash(git *)"-style rules count by their tool name.
_WRITING_TOOLS = ("Write", "Edit", "MultiEdit", "NotebookEdit", "Bash")


class ClaudeCodeAdapter(Adapter):
    name = "claude_code"
    executable = "claude"
    streams_json = True
    can_resume = True
    can_choose_model = True
    edits_files = True
    takes_mcp_servers = True
    # The API, and the login's token refresh (2.1: platform.claude.com/v1/oauth/token).
    api_hosts: ClassVar[tuple[str, ...]] = ("api.anthropic.com", "platform.claude.com")
    passthrough_env: ClassVar[tuple[str, ...]] = (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_CUSTOM_HEADERS",
        "ANTHROPIC_MODEL",
        "CLAUDE_CODE_USE_BEDROCK",
        "CLAUDE_CODE_USE_VERTEX",
        "CLAUDE_CODE_USE_FOUNDRY",
        "CLAUDE_CODE_OAUTH_TOKEN",  # `claude setup-token`: a login without the keychain
        # Bedrock and Vertex: the cloud login in the environment rather than in ~/.aws, gcloud.
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_BEARER_TOKEN_BEDROCK",
        "ANTHROPIC_VERTEX_PROJECT_ID",
        "CLOUD_ML_REGION",
        "GOOGLE_APPLICATION_CREDENTIALS",
    )
    credentials: ClassVar[tuple[Credential, ...]] = (
        Credential(".claude/.credentials.json", "account login", moved_by=_MOVED),
        AWS_PROFILES,
        GCLOUD_ADC,
    )

    user_files: ClassVar[tuple[UserFile, ...]] = (
        UserFile(".claude/settings.json", "settings (hooks, permissions, env)", moved_by=_MOVED),
        UserFile(
            ".claude.json", "MCP servers and state", moved_by=_MOVED, moved_path=".claude.json"
        ),
        *(
            UserFile(f".claude/{name}", what, moved_by=_MOVED)
            for name, what in (
                ("CLAUDE.md", "instructions"),
                ("agents", "agents"),
                ("commands", "custom commands"),
                ("skills", "skills"),
                ("hooks", "hook scripts"),
                ("output-styles", "output styles"),
            )
        ),
    )

    class Config(ExtraArgsConfig):
        permission_mode: Literal[
            "acceptEdits", "bypassPermissions", "default", "dontAsk", "plan", "auto"
        ] = "acceptEdits"
        max_turns: int | None = Field(default=None, ge=1)
        allowed_tools: list[str] = Field(default_factory=list)
        disallowed_tools: list[str] = Field(default_factory=list)
        max_retries: int | None = Field(default=None, ge=0)
        base_url: str | None = None  # ANTHROPIC_BASE_URL, without /v1
        fallback_model: str | None = None
        max_budget_usd: float | None = Field(default=None, gt=0)
        reasoning_effort: Literal["low", "medium", "high", "xhigh", "max"] | None = Field(
            default=None, description="--effort: how hard the model thinks"
        )
        system_prompt: str | None = system_prompt_field()  # --append-system-prompt
        add_dirs: AddDirs = add_dirs_field()  # --add-dir

        option_flags: ClassVar[Mapping[str, str]] = {
            "--append-system-prompt": "system_prompt",
            "--add-dir": "add_dirs",
        }

        # Every flag ``_command`` sets (tests/adapters/test_adapter_extra_args.py checks it).
        owned_flags: ClassVar[Mapping[str, str]] = {
            **owns(PROMPT, "-p", "--print"),
            **owns(OUTPUT, "--output-format", "--verbose"),
            **owns(
                option("permission_mode"), "--permission-mode", "--dangerously-skip-permissions"
            ),
            **owns(option("max_turns"), "--max-turns"),
            **owns(option("max_budget_usd"), "--max-budget-usd"),
            **owns(option("reasoning_effort"), "--effort"),
            **owns(option("fallback_model"), "--fallback-model"),
            **owns(option("allowed_tools"), "--allowedTools", "--allowed-tools"),
            **owns(option("disallowed_tools"), "--disallowedTools", "--disallowed-tools"),
            **owns(MODEL, "--model"),
            **owns(SESSION, "-r", "--resume", "-c", "--continue", "--session-id"),
        }

    config: Config  # the base class validates the run config's options into this model

    def login_out_of_reach(self) -> str | None:
        if sys.platform != "darwin":
            return None
        return (
            "macOS: an account login is kept in the keychain, out of reach with a private "
            "HOME; run `claude setup-token` and export CLAUDE_CODE_OAUTH_TOKEN, or set "
            "ANTHROPIC_API_KEY"
        )

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        return self._command(request, resume=request.resume_session_id)

    def resume_command(self, request: AdapterRequest, native_session_id: str) -> CommandSpec:
        return self._command(request, resume=native_session_id)

    def _command(self, request: AdapterRequest, resume: str | None) -> CommandSpec:
        opts = self.config
        stdin = stdin_prompt(request.prompt)
        argv = [self.binary, "-p"] if stdin is not None else [self.binary, "-p", request.prompt]
        argv += ["--output-format", "stream-json", "--verbose"]
        argv += ["--permission-mode", opts.permission_mode]
        if opts.max_turns is not None:
            argv += ["--max-turns", str(opts.max_turns)]
        if opts.max_budget_usd is not None:
            argv += ["--max-budget-usd", str(opts.max_budget_usd)]
        if opts.fallback_model:
            argv += ["--fallback-model", opts.fallback_model]
        if opts.reasoning_effort:
            argv += ["--effort", opts.reasoning_effort]
        if opts.system_prompt:
            argv.append(f"--append-system-prompt={opts.system_prompt}")
        if request.mcp_servers:  # claude reads the run's servers beside the user's own
            argv += ["--mcp-config", str(request.home / _MCP_FILE)]
        # Before the variadic tool lists, which would take a loose value of these as a tool.
        argv += self.extra_args()
        # Both lists are variadic: the next "--option" ends them, and the prompt came earlier.
        for directory in opts.add_dirs:
            argv.append(f"--add-dir={directory}")
        # A trusted server's tools (the council's own) are allowed by its rule, mcp__<name>.
        trusted = [f"mcp__{server.name}" for server in request.mcp_servers if server.trusted]
        allowed = [*opts.allowed_tools, *trusted]
        if allowed:
            argv += ["--allowedTools", *allowed]
        if opts.disallowed_tools:
            argv += ["--disallowedTools", *opts.disallowed_tools]
        if request.model:
            argv += ["--model", request.model]
        if resume is not None:
            argv += ["--resume", native_id(self.name, resume)]
        knobs = dict(_QUIET_ENV)
        if opts.max_retries is not None:
            knobs["CLAUDE_CODE_MAX_RETRIES"] = str(opts.max_retries)
        if opts.base_url:
            knobs["ANTHROPIC_BASE_URL"] = opts.base_url
        env, secrets = command_env(request, knobs)
        return CommandSpec(
            argv=argv,
            env=env,
            stdin=stdin,
            secrets=secrets,
            config_files=self._config_files(request, knobs),
        )

    def _config_files(
        self, request: AdapterRequest, knobs: Mapping[str, str]
    ) -> dict[str, ConfigFile]:
        """The user's ``settings.json`` (hooks, permissions, env) and ``~/.claude.json`` (MCP
        servers) with the run's over them. The settings' ``env`` would beat the process's, so
        the run's knobs go there too."""
        settings: dict[str, Any] = {
            "env": dict(knobs),
            "permissions": {"defaultMode": self.config.permission_mode},  # as the flag says
        }
        if request.model:
            settings["model"] = request.model
        files: dict[str, ConfigFile] = {}
        if request.mcp_servers:
            servers = {s.name: mcp_entry(s, "claude") for s in request.mcp_servers}
            files[_MCP_FILE] = ConfigFile(format="json", required={"mcpServers": servers})
        return {
            **files,
            ".claude/settings.json": ConfigFile(
                format="json", required=settings, logins=(("apiKeyHelper",),)
            ),
            # Global state too; what is kept per directory (``projects``) is of the user's own
            # checkouts, not the run's worktrees.
            ".claude.json": ConfigFile(
                format="json",
                dropped=(("projects",),),
                logins=(("primaryApiKey",), ("oauthAccount",)),
                # 2.1.330 keeps a copy of the file it found in ~/.claude/backups/ (measured)
                copies=(".claude/backups/.claude.json.backup.*",),
            ),
        }

    def read_only_reason(self) -> str | None:
        mode = self.config.permission_mode
        if mode == "plan":
            return "claude: permission mode 'plan' never writes; use 'acceptEdits'"
        allowed = any(
            rule.split("(")[0].strip() in _WRITING_TOOLS for rule in self.config.allowed_tools
        )
        if mode in ("default", "dontAsk") and not allowed:
            return (
                f"claude: permission mode {mode!r} refuses edits headless unless allowed_tools "
                "names them; use 'acceptEdits'"
            )
        return None

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        value = loads(line) if stream == "stdout" else None
        if value is None:
            return plain_line(line)
        return _claude_stream.parse_value(value)

    def classify(self, result: ProcessResult, events: Sequence[AgentEvent]) -> Outcome:
        # Denials, is_error results and API errors are all events by now, which the base
        # classifier ranks (auth, then permission, then rate limit, then failure).
        return finish(super().classify(result, events), events)


@hookimpl
def register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(ClaudeCodeAdapter)
