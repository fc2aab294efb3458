"""Aider (``aider``), measured on version 0.86.2.

Command: ``aider [--model M] --message PROMPT --yes-always --no-auto-commits --no-check-update
--no-analytics --no-pretty --no-stream ... [--file F ...]`` with the chat history kept in the
session's private HOME.

Quirks handled:

- No JSON output: stdout is human text, parsed line by line ("Tokens: N sent, M received.
  Cost: $X message, $Y session." is usage, with aider's "1.2k" rounding; "Applied edit to F"
  is a tool result; the rest of the reply is message text).
- **Exit 0 even when every model call failed**: a 429 ends with "litellm.RateLimitError" after
  ~86 s of retries, a 401 with "litellm.BadRequestError ... invalid API key". Errors after the
  last reply decide the run (``rate_limited``, ``auth_required``, else ``failed``); errors
  aider recovered from (a reply followed) do not.
- A 429 is retried inside aider for about a minute (0.25 s doubling to 32 s, no option caps
  it), each retry a "litellm.RateLimitError" line: the run ends at the first one
  (``ends_run``), and the orchestrator's park waits instead, without holding a slot. Aider
  cannot resume a conversation anyway, so stopping it there loses nothing.
- No session ids, so ``can_resume`` is False: ``restore_chat_history`` continues whatever
  conversation the HOME's history file holds (``--restore-chat-history``).
- The orchestrator commits, not aider (``--no-auto-commits``); ``--no-gitignore`` keeps aider
  from adding ``.aider*`` to the repository's ``.gitignore``, and the chat and input history
  live in HOME, so neither shows up in the diff.
- ``--yes-always`` approves file edits but never a model-suggested shell command.
- Update check, analytics, release notes, model warnings, colors and streaming are off.
  ``LITELLM_LOCAL_MODEL_COST_MAP`` keeps litellm on its bundled price map, but aider fetches
  the same list itself (raw.githubusercontent.com) whenever ``~/.aider/caches/
  model_prices_and_context_window.json`` is missing, empty or older than a day: a small
  non-empty one is written into the private HOME on every run, so aider finds nothing in it
  and falls back to litellm's bundled copy, offline.
- An edit to a path the repository ignores is refused: "Skipping edits to F that matches
  gitignore spec." is a denial (``permission_denied``).
- Aider has no permission prompt that refuses an edit headless; its read-only modes are
  ``dry_run`` (``--dry-run``: "Did not apply edit to F (--dry-run)", a denial) and the chat
  modes that make no edits (``edit_format: ask``, ``help``, ``context``). Either makes the
  adapter read-only, so a build through it that changed nothing is ``permission_denied``.
- Aider's repo-map cache ``.aider.tags.cache.v4/`` (at the repository root, no option moves
  it) is excluded from git by the orchestrator, so it is never committed as work.
- A prompt that starts with ``-`` goes in as ``--message=...``; files go in as ``--file F``.
- ``~/.aider.conf.yml`` is the user's own with what the command line sets written over it
  (the flags win anyway; the CLI's log names each of the user's keys they beat); their model
  settings and metadata files are linked in.
  A prompt over 100 KiB would not fit in an argument (``E2BIG``): it is written into the
  private HOME and named with ``--message-file`` instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from adapters._build import (
    MODEL,
    PROMPT,
    command_env,
    flag_like,
    option,
    owns,
    system_prompt_field,
)
from adapters._hosts import provider_hosts
from adapters._jsonl import strip_ansi
from adapters._outcomes import error_events, error_kind, finish, plain_line
from orchestrator.adapter import (
    AWS_PROFILES,
    GCLOUD_ADC,
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
    Usage,
    UserFile,
    too_long_for_argument,
)
from orchestrator.plugins.hookspecs import hookimpl

__all__ = ["MESSAGE_FILE", "AiderAdapter", "register_adapters"]

_QUIET_FLAGS = [
    "--yes-always",
    "--no-auto-commits",
    "--no-check-update",
    "--no-analytics",
    "--no-show-model-warnings",
    "--no-show-release-notes",
    "--no-pretty",
    "--no-stream",
    "--no-fancy-input",
    "--no-gitignore",
]
_VERSION = re.compile(r"^Aider v(\S+)")
_USER_CONFIG = ".aider.conf.yml"
_INSTRUCTIONS = ".aider.council-instructions.md"  # the option system_prompt, as --read
_CONF_LOGINS = (("api-key",), ("openai-api-key",), ("anthropic-api-key",))  # conf keys


def _switch(flag: str) -> str:
    """``--no-pretty`` -> ``pretty``: the key of a switch in ``.aider.conf.yml``."""
    return flag.removeprefix("--").removeprefix("no-")


def _opposite(switch: str) -> str:
    """``--no-pretty`` <-> ``--pretty``: configargparse's pair of a boolean switch."""
    return "--" + switch[5:] if switch.startswith("--no-") else "--no-" + switch[2:]


_LITELLM_ERROR = re.compile(r"^litellm\.(\w+):\s*(.*)$")
_TOKENS = re.compile(
    r"^Tokens: (?P<sent>[\d.]+k?) sent"
    r"(?:, (?P<write>[\d.]+k?) cache write)?(?:, (?P<hit>[\d.]+k?) cache hit)?"
    r", (?P<received>[\d.]+k?) received\."
    r"(?: Cost: \$(?P<cost>[\d.]+) message)?"
)
_APPLIED = re.compile(r"^Applied edit to (.+)$")
_SKIPPED = re.compile(r"^Skipping edits to (.+) that matches gitignore spec\.?$")
_NOT_APPLIED = re.compile(r"^Did not apply edit to (.+) \(--dry-run\)$")
_NO_EDIT_MODES = ("ask", "help", "context")  # chat modes whose coders never edit a file
# Aider downloads litellm's price list unless this cache holds a fresh, non-empty object; one
# entry no model is named after makes it ask litellm, which reads its bundled copy offline.
_PRICE_CACHE = ".aider/caches/model_prices_and_context_window.json"
_PRICE_CACHE_SEED = (
    '{"cli-council-seed": {"note": "written by CLI Council so that aider does not download '
    "litellm's price list; model facts come from litellm's bundled copy "
    '(LITELLM_LOCAL_MODEL_COST_MAP)"}}\n'
)
# A prompt too long for an argument, written into the private HOME for --message-file.
MESSAGE_FILE = ".aider.council-message.md"
_AUTH_HINT = "The API provider is not able to authenticate you"
# Status lines of aider itself, and the markup of its edit blocks: not part of the reply text.
_NOISE = re.compile(
    r"^(Detected dumb terminal|Update git (name|email) with|Model: |Weak model: |Editor model: "
    r"|Git repo: |Repo-map: |Restored previous conversation history|Added .* to the chat"
    r"|Use /help|Cur working dir|The API provider has rate limited you|Retrying in [\d.]+ seconds"
    r"|```|<<<<<<< SEARCH|=======$|>>>>>>> REPLACE)"
)
_LITELLM_KINDS = {
    "RateLimitError": "rate_limit",
    "AuthenticationError": "auth",
    "PermissionDeniedError": "auth",
}


class AiderAdapter(Adapter):
    name = "aider"
    executable = "aider"
    streams_json = False
    can_resume = False
    can_choose_model = True
    edits_files = True
    passthrough_env: ClassVar[tuple[str, ...]] = (
        "OPENAI_API_KEY",
        "OPENAI_API_BASE",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "OPENROUTER_API_KEY",
        "DEEPSEEK_API_KEY",
    )
    # aider 0.86 loads keys from ~/.env and from the OpenRouter login it saved itself
    # (main.load_dotenv_files); ~/.aider.conf.yml is settings, not a login: not shared.
    credentials: ClassVar[tuple[Credential, ...]] = (
        Credential(".env", "keys in ~/.env"),
        Credential(".aider/oauth-keys.env", "OpenRouter login"),
        AWS_PROFILES,
        GCLOUD_ADC,
    )

    user_files: ClassVar[tuple[UserFile, ...]] = (
        UserFile(_USER_CONFIG, "settings"),
        UserFile(".aider.model.settings.yml", "model settings"),
        UserFile(".aider.model.metadata.json", "model metadata"),
    )

    class Config(ExtraArgsConfig):
        edit_format: str | None = Field(default=None, pattern=r"^[a-z-]+$")  # diff, whole, udiff…
        files: list[str] = Field(default_factory=list)  # paths aider may edit, relative to the repo
        read_files: list[str] = Field(default_factory=list)  # read-only context (--read)
        base_url: str | None = None  # --openai-api-base
        map_tokens: int | None = Field(default=None, ge=0)  # 0 turns the repo map off
        restore_chat_history: bool = False
        dry_run: bool = False  # --dry-run: aider shows its edits without applying them
        reasoning_effort: str | None = Field(
            default=None,
            pattern=r"^[A-Za-z0-9._-]+$",
            description="--reasoning-effort: the reasoning_effort API parameter",
        )
        # aider has no system prompt option: a file in the private HOME, given as --read
        # (read-only context, where aider's own docs put conventions).
        system_prompt: str | None = system_prompt_field()

        # Every flag ``build_command`` sets, and the opposite of each switch it sets
        # (tests/adapters/test_adapter_extra_args.py checks it).
        owned_flags: ClassVar[Mapping[str, str]] = {
            **owns(MODEL, "--model"),
            **owns(option("base_url"), "--openai-api-base"),
            **owns(PROMPT, "-m", "--message", "--msg", "-f", "--message-file"),
            **owns(
                "the adapter runs aider headless with it",
                *_QUIET_FLAGS,
                *(_opposite(flag) for flag in _QUIET_FLAGS),
            ),
            **owns(option("edit_format"), "--edit-format", "--chat-mode"),
            **owns(option("map_tokens"), "--map-tokens"),
            **owns(
                "the adapter keeps aider's history in the session's private HOME",
                "--chat-history-file",
                "--input-history-file",
            ),
            **owns(
                option("restore_chat_history"),
                "--restore-chat-history",
                "--no-restore-chat-history",
            ),
            **owns(option("dry_run"), "--dry-run", "--no-dry-run"),
            **owns(option("read_files"), "--read"),
            **owns(option("files"), "--file"),
            **owns(option("reasoning_effort"), "--reasoning-effort"),
        }

    config: Config  # the base class validates the run config's options into this model

    def model_endpoints(self, request: AdapterRequest) -> tuple[str, ...]:
        """The model's provider's API (every known one when the model names none: aider
        picks it from the keys it finds) and ``base_url``."""
        model = request.model or getattr(self.config, "model", None)
        base = (self.config.base_url,) if self.config.base_url else ()
        return (*provider_hosts(model), *base)

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        opts = self.config
        argv = [self.binary]
        if request.model:
            argv += ["--model", request.model]
        if opts.base_url:
            argv += ["--openai-api-base", opts.base_url]
        prompt = request.prompt
        home_files = {_PRICE_CACHE: _PRICE_CACHE_SEED}
        if too_long_for_argument(prompt):
            home_files[MESSAGE_FILE] = prompt
            argv += ["--message-file", str(request.home / MESSAGE_FILE)]
        else:
            argv += [f"--message={prompt}"] if flag_like(prompt) else ["--message", prompt]
        argv += _QUIET_FLAGS
        if opts.edit_format:
            argv += ["--edit-format", opts.edit_format]
        if opts.map_tokens is not None:
            argv += ["--map-tokens", str(opts.map_tokens)]
        argv += ["--chat-history-file", str(request.home / ".aider.chat.history.md")]
        argv += ["--input-history-file", str(request.home / ".aider.input.history")]
        if opts.restore_chat_history:
            argv.append("--restore-chat-history")
        if opts.dry_run:
            argv.append("--dry-run")
        for path in opts.read_files:
            argv += ["--read", path]
        if opts.system_prompt:
            home_files[_INSTRUCTIONS] = opts.system_prompt
            argv += ["--read", str(request.home / _INSTRUCTIONS)]
        if opts.reasoning_effort:
            argv += ["--reasoning-effort", opts.reasoning_effort]
        for path in opts.files:
            argv += ["--file", path]
        argv += self.extra_args()
        env, secrets = command_env(request, {"LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        config = {_USER_CONFIG: self._conf(request)}
        return CommandSpec(
            argv=argv, env=env, home_files=home_files, config_files=config, secrets=secrets
        )

    def _conf(self, request: AdapterRequest) -> ConfigFile:
        """``~/.aider.conf.yml``: the user's own with what the command line sets over it (the
        flags win anyway; written into it, the log names each of the user's keys they beat)."""
        opts = self.config
        required: dict[str, Any] = {
            _switch(flag): not flag.startswith("--no-") for flag in _QUIET_FLAGS
        }
        if request.model:
            required["model"] = request.model
        if opts.base_url:
            required["openai-api-base"] = opts.base_url
        if opts.edit_format:
            required["edit-format"] = opts.edit_format
        if opts.map_tokens is not None:
            required["map-tokens"] = opts.map_tokens
        if opts.reasoning_effort:
            required["reasoning-effort"] = opts.reasoning_effort
        required["restore-chat-history"] = opts.restore_chat_history
        required["dry-run"] = opts.dry_run
        return ConfigFile(format="yaml", required=required, logins=_CONF_LOGINS)

    def read_only_reason(self) -> str | None:
        if self.config.dry_run:
            return "aider: dry_run shows edits without applying them; drop dry_run to write"
        if self.config.edit_format in _NO_EDIT_MODES:
            return f"aider: edit_format {self.config.edit_format!r} makes no edits"
        return None

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        line = strip_ansi(line).rstrip()
        if not line.strip():
            return []
        version = _VERSION.match(line)
        if version:
            return [AgentEvent(kind=EventKind.STARTED, text=line, data={"version": version[1]})]
        failure = _LITELLM_ERROR.match(line)
        if failure:
            kind = _LITELLM_KINDS.get(failure[1]) or error_kind(failure[2])
            return error_events(line, kind, data={"exception": failure[1]})
        if line.startswith(_AUTH_HINT):
            return error_events(line, "auth")
        tokens = _TOKENS.match(line)
        if tokens:
            return [AgentEvent(kind=EventKind.USAGE, text=line, usage=_usage(tokens))]
        applied = _APPLIED.match(line)
        if applied:
            return [AgentEvent(kind=EventKind.TOOL_RESULT, tool="edit", text=applied[1])]
        not_applied = _NOT_APPLIED.match(line)
        if not_applied:
            why = f"aider did not apply its edit to {not_applied[1]}: dry_run (--dry-run)"
            return [AgentEvent(kind=EventKind.ERROR, text=why, error_kind="permission")]
        skipped = _SKIPPED.match(line)
        if skipped:
            why = f"aider refused to edit {skipped[1]}: the repository ignores it (gitignore)"
            return [AgentEvent(kind=EventKind.ERROR, text=why, error_kind="permission")]
        if _NOISE.match(line):
            return []
        if stream == "stderr":
            return plain_line(line)
        return [AgentEvent(kind=EventKind.MESSAGE, text=line)]

    def ends_run(self, event: AgentEvent) -> bool:
        return event.kind == EventKind.RATE_LIMITED or super().ends_run(event)

    def classify(self, result: ProcessResult, events: Sequence[AgentEvent]) -> Outcome:
        # Aider retries and reflects on its own; only errors after its last reply (a usage
        # line or an applied edit) are the run's outcome, whatever the exit code says.
        replies = [
            i for i, e in enumerate(events) if e.kind in (EventKind.USAGE, EventKind.TOOL_RESULT)
        ]
        last_reply = replies[-1] if replies else -1
        recovered = (EventKind.ERROR, EventKind.RATE_LIMITED)
        settled = [e for i, e in enumerate(events) if i > last_reply or e.kind not in recovered]
        outcome = super().classify(result, settled)
        if outcome.kind == OutcomeKind.SUCCEEDED:
            outcome = outcome.model_copy(update={"message": _reply(events)})
        return finish(outcome, events)


def _tokens(value: str | None) -> int:
    if not value:
        return 0
    try:
        return round(float(value[:-1]) * 1000) if value.endswith("k") else round(float(value))
    except (ValueError, OverflowError):
        return 0


def _usage(match: re.Match[str]) -> Usage:
    cost = match["cost"]
    try:
        cost_usd = float(cost) if cost else None
    except ValueError:
        cost_usd = None
    return Usage(
        input_tokens=_tokens(match["sent"]),
        output_tokens=_tokens(match["received"]),
        cache_write_tokens=_tokens(match["write"]),
        cache_read_tokens=_tokens(match["hit"]),
        cost_usd=cost_usd,  # "message" cost: the "session" figure is a running total
    )


def _reply(events: Sequence[AgentEvent]) -> str:
    """The text of the last reply: the message lines between the last two usage lines."""
    usages = [i for i, e in enumerate(events) if e.kind == EventKind.USAGE]
    if not usages:
        return "\n".join(e.text for e in events if e.kind == EventKind.MESSAGE)
    start = usages[-2] if len(usages) > 1 else -1
    lines = [e.text for e in events[start + 1 : usages[-1]] if e.kind == EventKind.MESSAGE]
    return "\n".join(lines)


@hookimpl
def register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(AiderAdapter)
