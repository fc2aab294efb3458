"""Gemini CLI (``gemini``), measured on version 0.61.0.

Command: ``gemini -p PROMPT -o stream-json --yolo [-m M] [--resume SESSION_ID]`` with
``GEMINI_CLI_TRUST_WORKSPACE=true`` and ``~/.gemini/settings.json`` in the private HOME.

Quirks handled:

- In an untrusted folder ``--yolo`` is silently downgraded to "default", so the workspace is
  trusted through the env; the downgrade notice on stderr makes the run ``permission_denied``.
- Headless, approval mode "default" offers no tool that needs approval (file writes, shell;
  a call the model makes anyway ends "Tool "write_file" not found") and "plan" refuses
  writes outside its plans directory ("Access denied: plan path ... must be within the
  designated plans directory", a denial): both exit 0 and "succeed", and both make
  ``can_write`` False, so a build that changed nothing is ``permission_denied`` while a
  read-only phase (scout, plan, review) in those modes succeeds.
- With ``GOOGLE_GEMINI_BASE_URL`` set, 0.61 picks the "gateway" auth type and exits 41; the
  settings file pins ``security.auth.selectedType`` (``auth_type``, default
  ``gemini-api-key``) over the user's own when ``auth_type`` or ``base_url`` is set in the run
  config, and under it otherwise (the user's Google login stays theirs). It is written
  always, since the base URL may come through the passthrough env, which the adapter never
  sees.
- ``~/.gemini/settings.json`` is the user's own (``mcpServers``, model settings) with the
  run's keys over it; their ``GEMINI.md``, commands, extensions and agents are linked in.
- API errors exit with the HTTP status mod 256 (429 -> 173, 401 -> 145); FatalError codes 41
  (auth), 52 (config), 55 (untrusted) and the rest are mapped when the output says no more.
- 429s are retried with backoff for minutes, visible only on stderr ("Attempt N failed with
  status 429"); ``max_attempts`` (``general.maxAttempts``, default 3 here, 10 in gemini) keeps
  that short, and a run stopped while still retrying counts as rate limited.
- A session whose only request got a 429 was never saved: resuming it after a park fails
  ("Error resuming session: No previous sessions found for this project.", exit 42).
  ``resume_refused`` says so, and the core starts a fresh session with the same prompt.
- The answer is streamed as ``message`` deltas, joined into the final text; usage comes once,
  from the ``result`` event's stats (no event before it carries any: gemini says no
  ``running_usage``, and a call stopped before its end is counted at its forecast).
  ``-o json`` (one pretty-printed object) is understood through its top-level
  ``session_id`` and ``response`` lines.
- An API failure prints "Error when talking to Gemini API Full report available at: PATH"
  then the error; PATH (a JSON file with ``error.message``) is under the CLI's temp dir, which
  the sandbox maps into the private HOME at the same path. The outcome names the cause first
  (HTTP status, API status, message), read from the report when it is there, else from the
  rest of the line; the report's path comes last.
- Usage statistics, telemetry and auto-update are off in the settings file, unless the user's
  own turns them on.
- Started as is, gemini loads its bundle, then starts itself again as a second Node.js process
  with ``--max-old-space-size`` at half the machine's memory and waits for it (``bundle/
  gemini.js``; the restart is otherwise used only by the interactive UI). Headless, that
  doubled its start (3.3 against 1.9 s of CPU for ``--version`` on 2 cores):
  ``GEMINI_CLI_NO_RELAUNCH=true`` runs it in one process, given the same heap through
  ``NODE_OPTIONS`` (a ``NODE_OPTIONS`` of the run config's ``env`` replaces it).
- A prompt over 100 KiB would not fit in an argument (``E2BIG``): it goes through stdin with
  no ``-p`` (headless when stdin is not a terminal; ``-p`` text would be appended to it).
  Gemini reads at most 8 MB of stdin.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

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
    node_heap_of_half_the_memory,
    option,
    owns,
    system_prompt_field,
)
from adapters._jsonl import count, dig, loads, obj, text
from adapters._outcomes import (
    GEMINI_FAMILY_EXITS,
    error_events,
    error_kind,
    finish,
    plain_line,
    reclassify,
)
from orchestrator.adapter import (
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
    native_id,
    too_long_for_argument,
)
from orchestrator.plugins.hookspecs import hookimpl

__all__ = ["GeminiAdapter", "register_adapters"]

# The variables that make a dotenv file a gemini login (an API key, or Vertex AI's project).
_KEY_NAMES = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT")
_ATTEMPT = re.compile(r"^Attempt \d+ failed with status (\d{3})")
_RESUME_REFUSED = re.compile(r"Error resuming session|No previous sessions found", re.IGNORECASE)
_DOWNGRADE = re.compile(r"Approval mode overridden to .{0,3}default.{0,3} because", re.IGNORECASE)
_API_FAILURE = "Error when talking to Gemini API"
_REPORT = re.compile(r"Full report available at: (\S+\.json)\s*(.*)$")
_MAX_REPORT_BYTES = 1_000_000
_REPORT_NAME = "gemini-client-error-"
# `-o json` pretty-prints one object; its top-level keys sit at exactly two spaces.
_JSON_FORM_KEY = re.compile(r'^  "(session_id|response|error)": (.*?),?$')
_MAX_TOOL_TEXT = 4000
_CONTEXT_FILE = ".gemini/COUNCIL.md"  # the option system_prompt, a global context file
_ACCESS_DENIED = re.compile(r"^\s*Access denied\b", re.IGNORECASE)
_READ_ONLY_MODES = {
    "plan": "approval mode 'plan' writes only into its plans directory, never the repository",
    "default": "approval mode 'default' runs headless without the tools that need approval "
    "(file edits, shell)",
}


class GeminiAdapter(Adapter):
    name = "gemini"
    executable = "gemini"
    streams_json = True
    can_resume = True
    can_choose_model = True
    edits_files = True
    takes_mcp_servers = True
    # The API with a key; Code Assist (the Google login) and its token refresh.
    api_hosts: ClassVar[tuple[str, ...]] = (
        "generativelanguage.googleapis.com",
        "cloudcode-pa.googleapis.com",
        "oauth2.googleapis.com",
    )
    passthrough_env: ClassVar[tuple[str, ...]] = (
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_GEMINI_BASE_URL",
        "GEMINI_MODEL",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
        "GOOGLE_GENAI_USE_GCA",
        "GOOGLE_APPLICATION_CREDENTIALS",
    )
    credentials: ClassVar[tuple[Credential, ...]] = (
        # GEMINI_CLI_HOME moves the whole ~ of gemini 0.61 (its .gemini/ is below it).
        Credential(
            ".gemini/oauth_creds.json",
            "Google login (auth_type oauth-personal)",
            moved_by="GEMINI_CLI_HOME",
            moved_path=".gemini/oauth_creds.json",
        ),
        Credential(
            ".gemini/google_accounts.json",
            "Google account of that login",
            moved_by="GEMINI_CLI_HOME",
            moved_path=".gemini/google_accounts.json",
        ),
        # Gemini reads keys from the first dotenv file it finds walking up from the working
        # directory, then ~/.gemini/.env (in a trusted workspace: the adapter trusts it) and
        # ~/.env (gemini-cli's docs/get-started/authentication.md and
        # docs/reference/configuration.md on .env files; findEnvFile in 0.61's bundle, ~ being
        # GEMINI_CLI_HOME when set).
        Credential(
            ".gemini/.env",
            "keys in ~/.gemini/.env",
            moved_by="GEMINI_CLI_HOME",
            moved_path=".gemini/.env",
            keys=_KEY_NAMES,
        ),
        Credential(
            ".env", "keys in ~/.env", moved_by="GEMINI_CLI_HOME", moved_path=".env", keys=_KEY_NAMES
        ),
        # A key entered in gemini's /auth dialog goes to the system keychain, or where there is
        # none (no keytar or Secret Service, as headless), to this file, encrypted with a key
        # derived from the host and user names (apiKeyCredentialStorage, FileKeychain in 0.61).
        Credential(
            ".gemini/gemini-credentials.json",
            "key saved by gemini's /auth (file keychain)",
            moved_by="GEMINI_CLI_HOME",
            moved_path=".gemini/gemini-credentials.json",
        ),
        GCLOUD_ADC,
    )
    user_files: ClassVar[tuple[UserFile, ...]] = tuple(
        UserFile(path, what, moved_by="GEMINI_CLI_HOME", moved_path=path)
        for path, what in (
            (".gemini/settings.json", "settings (mcpServers, model settings)"),
            (".gemini/GEMINI.md", "instructions"),
            (".gemini/commands", "custom commands"),
            (".gemini/extensions", "extensions"),
            (".gemini/agents", "agents"),
        )
    )

    class Config(ExtraArgsConfig):
        approval_mode: Literal["yolo", "auto_edit", "plan", "default"] = "yolo"
        auth_type: str | None = "gemini-api-key"  # settings security.auth.selectedType
        base_url: str | None = None  # GOOGLE_GEMINI_BASE_URL (https unless localhost)
        max_attempts: int | None = Field(default=3, ge=1, le=10)
        # gemini has no flag for it: a context file in the private HOME, named in the settings'
        # context.fileName beside GEMINI.md (global context files load from ~/.gemini/).
        system_prompt: str | None = system_prompt_field()
        add_dirs: AddDirs = add_dirs_field()  # --include-directories

        option_flags: ClassVar[Mapping[str, str]] = {"--include-directories": "add_dirs"}

        # Every flag ``_command`` sets (tests/adapters/test_adapter_extra_args.py checks it).
        owned_flags: ClassVar[Mapping[str, str]] = {
            **owns(PROMPT, "-p", "--prompt", "-i", "--prompt-interactive"),
            **owns(OUTPUT, "-o", "--output-format"),
            **owns(option("approval_mode"), "-y", "--yolo", "--approval-mode", "--allowed-tools"),
            **owns(MODEL, "-m", "--model"),
            **owns(SESSION, "-r", "--resume", "--session-id", "--session-file"),
        }

    config: Config  # the base class validates the run config's options into this model

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        return self._command(request, request.resume_session_id)

    def resume_command(self, request: AdapterRequest, native_session_id: str) -> CommandSpec:
        return self._command(request, native_session_id)

    def _command(self, request: AdapterRequest, resume: str | None) -> CommandSpec:
        opts = self.config
        stdin = request.prompt if too_long_for_argument(request.prompt) else None
        if stdin is not None:
            prompt = []
        elif flag_like(request.prompt):
            # yargs would read a leading "-" as a flag; the "--prompt=" form keeps it a value.
            prompt = [f"--prompt={request.prompt}"]
        else:
            prompt = ["-p", request.prompt]
        argv = [self.binary, *prompt, "-o", "stream-json"]
        if opts.approval_mode == "yolo":
            argv.append("--yolo")
        elif opts.approval_mode != "default":  # "default" is what gemini does without a flag
            argv += ["--approval-mode", opts.approval_mode]
        if request.model:
            argv += ["-m", request.model]
        if resume is not None:
            argv += ["--resume", native_id(self.name, resume)]
        for directory in opts.add_dirs:
            argv.append(f"--include-directories={directory}")
        argv += self.extra_args()
        # One Node.js process, not two: gemini starts itself again (its whole bundle loaded
        # twice) only to raise its heap, which NODE_OPTIONS raises as much in the first.
        knobs = {
            "GEMINI_CLI_TRUST_WORKSPACE": "true",
            "GEMINI_CLI_NO_RELAUNCH": "true",
            "NODE_OPTIONS": node_heap_of_half_the_memory(),
        }
        if opts.base_url:
            knobs["GOOGLE_GEMINI_BASE_URL"] = opts.base_url
        env, secrets = command_env(request, knobs)
        return CommandSpec(
            argv=argv,
            env=env,
            home_files={_CONTEXT_FILE: opts.system_prompt} if opts.system_prompt else {},
            config_files={".gemini/settings.json": self._settings(request)},
            stdin=stdin,
            secrets=secrets,
        )

    def _settings(self, request: AdapterRequest) -> ConfigFile:
        """``settings.json``: the user's own (``mcpServers``, model settings, their login's
        ``security.auth``) with the run's options over it."""
        opts = self.config
        defaults: dict[str, Any] = {
            "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
        }
        required: dict[str, Any] = {}
        if opts.max_attempts is not None:  # the orchestrator retries: gemini's own stay few
            required["general"] = {"maxAttempts": opts.max_attempts}
        if opts.auth_type:
            # Set in the run config, it is the run's; by default only where the user chose none.
            chosen = "auth_type" in opts.model_fields_set or opts.base_url
            layer = required if chosen else defaults
            layer["security"] = {"auth": {"selectedType": opts.auth_type}}
        if request.model:
            required["model"] = {"name": request.model}  # as `-m` says
        if opts.system_prompt:
            required["context"] = {"fileName": ["GEMINI.md", _CONTEXT_FILE.split("/")[-1]]}
        if request.mcp_servers:
            required["mcpServers"] = {s.name: mcp_entry(s, "gemini") for s in request.mcp_servers}
        if self.read_only_reason():
            # The user's tools.allowed runs the tools it names without approval, so an edit or
            # shell tool there would write in a mode the run counts on not writing.
            required["tools"] = {"allowed": []}
        return ConfigFile(format="json", defaults=defaults, required=required)

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        if stream == "stderr":
            return _stderr(line)
        value = loads(line)
        if isinstance(value, dict):
            return _event(value)
        return _json_form_line(line)

    def resume_refused(self, result: ProcessResult, events: Sequence[AgentEvent]) -> bool:
        # Measured on 0.61.0: a session whose only request got a 429 was never saved, and
        # "--resume ID" ends with this line on stderr and exit 42 (bad input).
        said = [result.stderr_tail, *(e.text for e in events if e.kind == EventKind.RAW)]
        return result.exit_code == 42 and any(_RESUME_REFUSED.search(t) for t in said if t)

    def classify(self, result: ProcessResult, events: Sequence[AgentEvent]) -> Outcome:
        outcome = super().classify(result, events)
        code = result.exit_code
        if outcome.kind == OutcomeKind.FAILED and code in GEMINI_FAMILY_EXITS:
            kind, why = GEMINI_FAMILY_EXITS[code]
            outcome = reclassify(outcome, kind, f"{why} (exit {code}): {outcome.message}")
        return finish(outcome, events)

    def read_only_reason(self) -> str | None:
        why = _READ_ONLY_MODES.get(self.config.approval_mode)
        return f"gemini: {why}; use 'yolo' or 'auto_edit'" if why else None


def _stderr(line: str) -> list[AgentEvent]:
    attempt = _ATTEMPT.match(line)
    if attempt:
        if attempt.group(1) != "429":
            return plain_line(line)
        return [AgentEvent(kind=EventKind.RATE_LIMITED, text=line.split(" _ApiError")[0])]
    if _DOWNGRADE.search(line):
        return [AgentEvent(kind=EventKind.ERROR, text=line.strip(), error_kind="permission")]
    if line.startswith(_API_FAILURE):
        message, status = _api_failure(line.strip())
        return error_events(message, error_kind(message, status))
    if line.startswith("    at "):
        return []  # stack frames of the error above
    return plain_line(line)


def _api_failure(line: str) -> tuple[str, int | None]:
    """The cause of an "Error when talking to Gemini API" line, and its HTTP status.

    The line itself leads with the report's long path; the cause is the report's
    ``error.message`` (or the line's rest, ``_ApiError: {"error": {...}}``), often a JSON error
    body, which is quoted as "HTTP 401 UNAUTHENTICATED: API key not valid ...".
    """
    found = _REPORT.search(line)
    if found is None:
        return line, None
    path, rest = found.groups()
    cause = _report_message(Path(path)) or rest
    if not cause:
        return f"{_API_FAILURE} (no cause given; full report: {path})", None
    body = obj(dig(obj(loads(cause[cause.find("{") :])), "error"))
    status = count(body.get("code")) or None
    if body.get("message"):
        code = " ".join(
            p for p in (f"HTTP {status}" if status else "", text(body.get("status"))) if p
        )
        cause = f"{code}: {text(body.get('message'))}" if code else text(body.get("message"))
    return f"{_API_FAILURE}: {cause} (full report: {path})", status


def _report_message(path: Path) -> str:
    """``error.message`` of gemini's error report, if it can be read. The path comes from the
    CLI's output, so only a regular file (no link followed, no fifo) named as gemini names
    its reports is read: a line a CLI prints must not make the orchestrator read anything
    else with the user's rights."""
    if not path.name.startswith(_REPORT_NAME):
        return ""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_REPORT_BYTES:
            return ""
        report = loads(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return ""
    return text(dig(obj(report), "error", "message"))


def _event(event: dict[str, Any]) -> list[AgentEvent]:
    kind = text(event.get("type"))
    if kind == "init":
        model = text(event.get("model"))
        return [
            AgentEvent(
                kind=EventKind.STARTED,
                text=f"model {model}" if model else "started",
                native_session_id=text(event.get("session_id")) or None,
                data={"model": model},
            )
        ]
    if kind == "message":
        body = text(event.get("content"))
        if text(event.get("role")) != "assistant" or not body:
            return []  # the user prompt echoed back
        return [
            AgentEvent(
                kind=EventKind.MESSAGE, text=body, data={"delta": event.get("delta") is True}
            )
        ]
    if kind == "tool_use":
        parameters = obj(event.get("parameters"))
        target = text(parameters.get("file_path")) or text(parameters.get("command"))
        return [
            AgentEvent(
                kind=EventKind.TOOL_CALL,
                tool=text(event.get("tool_name")) or None,
                text=target[:_MAX_TOOL_TEXT],
                data={"tool_id": text(event.get("tool_id")), "parameters": parameters},
            )
        ]
    if kind == "tool_result":
        status = text(event.get("status"))
        output = text(event.get("output")) or text(dig(event, "error", "message"))
        events = [
            AgentEvent(
                kind=EventKind.TOOL_RESULT,
                text=output[:_MAX_TOOL_TEXT],
                data={"tool_id": text(event.get("tool_id")), "status": status},
            )
        ]
        if status == "error" and _ACCESS_DENIED.match(output):
            denied = AgentEvent(kind=EventKind.ERROR, text=output[:500], error_kind="permission")
            events.append(denied)
        return events
    if kind == "error":
        message = text(event.get("message"))
        if text(event.get("severity")) != "error":
            return plain_line(message)
        return error_events(message, error_kind(message))
    if kind == "result":
        return _result(event)
    return [AgentEvent(kind=EventKind.RAW, text=kind or "unknown event", data={"type": kind})]


def _result(event: dict[str, Any]) -> list[AgentEvent]:
    stats = obj(event.get("stats"))
    cached = count(stats.get("cached"))
    events = [
        AgentEvent(
            kind=EventKind.USAGE,
            usage=Usage(
                input_tokens=max(count(stats.get("input_tokens")) - cached, 0),
                output_tokens=count(stats.get("output_tokens")),
                cache_read_tokens=cached,
            ),
            data={"tool_calls": count(stats.get("tool_calls"))},
        )
    ]
    if text(event.get("status")) != "error":
        return [*events, AgentEvent(kind=EventKind.COMPLETED)]
    message = text(dig(event, "error", "message")) or "gemini reported an error"
    # "Please wait and try again later" is how the quota (429) error reads without a code.
    return [
        *events,
        *error_events(message, error_kind(message)),
        AgentEvent(kind=EventKind.COMPLETED, text=message, is_error=True),
    ]


def _json_form_line(line: str) -> list[AgentEvent]:
    match = _JSON_FORM_KEY.match(line)
    if match is None:
        nested = line.startswith("   ") or line.strip() in ("", "{", "}")
        return [] if nested else plain_line(line)
    key, raw = match.groups()
    if key == "error":
        return error_events("gemini reported an error", "api")
    value = loads(f"[{raw}]")
    body = text(value[0]) if isinstance(value, list) and value else ""
    if key == "session_id":
        return [AgentEvent(kind=EventKind.STARTED, native_session_id=body or None)]
    return [AgentEvent(kind=EventKind.COMPLETED, text=body)]


@hookimpl
def register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(GeminiAdapter)
