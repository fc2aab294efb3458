"""OpenAI Codex CLI (``codex``), measured on codex-cli 0.169.0.

Command: ``codex exec --json --skip-git-repo-check -s workspace-write [-m M] PROMPT`` (or
``--dangerously-bypass-approvals-and-sandbox`` with ``sandbox: bypass``), stdin closed;
resume: ``codex exec resume --json --skip-git-repo-check ... THREAD_ID PROMPT``.

Quirks handled:

- ``exec`` never asks for approval; its default sandbox is read-only and a rejected patch
  still exits 0. The rejection shows only on stderr ("patch rejected: writing is blocked by
  read-only sandbox"), which makes the run ``permission_denied``; ``sandbox: read-only``
  makes ``can_write`` False.
- ``exec resume`` has no ``-s``: the sandbox goes in as ``-c sandbox_mode="..."``, and every
  flag comes after ``resume``.
- With a prompt argument and a piped stdin, codex appends stdin to the prompt: stdin stays
  closed, and a prompt that starts with ``-`` or is over 100 KiB (too long for an argument)
  is passed as ``-`` plus stdin instead (``exec`` and ``exec resume`` read ``-`` from stdin).
- ``error`` events starting "Reconnecting..." are retries, not the end: a 429 among them is a
  rate-limit event, and a run that completes after it succeeds. A 401 among them is an auth
  error at once (codex 0.169 retries a refused key five times): the core stops codex there.
  The end is ``turn.completed`` (usage, counted once) or ``turn.failed``. Nothing before it
  carries usage (no ``item.*`` event does, measured on 0.169.0): codex says no
  ``running_usage``, and a call stopped before its end is counted at its forecast.
- Without ``--json`` (the recorded ``json`` case) stdout is the last message and stderr a
  human log with "session id: ..."; both are understood.
- ``CODEX_HOME`` is the session's private ``~/.codex``. Its ``config.toml`` is the user's own
  (profiles, ``mcp_servers``, ``model_reasoning_effort``) with the run's keys over it: a custom
  endpoint (``base_url``) is a ``[model_providers.council]`` block (the ``OPENAI_BASE_URL`` env
  is ignored by codex), with the retry knobs that keep 429 retries short, and
  ``requires_openai_auth`` instead of ``env_key`` when the user's ``codex login`` is the only
  key. Unless the user's file turns them on, the plugins feature (a ``git clone`` of
  github.com/openai/plugins.git and calls to api.github.com on every run, measured) and
  analytics are off, so a run needs no network but the model's endpoint.
- OpenAI counts cached input inside ``input_tokens``; it is split out as cache reads here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Literal

from pydantic import Field

from adapters._build import (
    MODEL,
    OUTPUT,
    SESSION,
    AddDirs,
    add_dirs_field,
    command_env,
    mcp_entry,
    option,
    owns,
    stdin_prompt,
    system_prompt_field,
    toml_string,
)
from adapters._jsonl import count, dig, items, loads, obj, text
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
)
from orchestrator.plugins.hookspecs import hookimpl

__all__ = ["CodexAdapter", "register_adapters"]

_SANDBOX_REJECTION = re.compile(
    r"patch rejected|blocked by read-only sandbox|rejected by user approval", re.IGNORECASE
)
_SESSION_HEADER = re.compile(r"^session id:\s*([0-9a-fA-F-]{8,})\s*$")
_MAX_TOOL_TEXT = 4000
_LOGIN = ".codex/auth.json"


class CodexAdapter(Adapter):
    name = "codex"
    executable = "codex"
    streams_json = True
    can_resume = True
    can_choose_model = True
    edits_files = True
    takes_mcp_servers = True
    # The API with a key; the ChatGPT login's backend and its token refresh.
    api_hosts: ClassVar[tuple[str, ...]] = ("api.openai.com", "chatgpt.com", "auth.openai.com")
    passthrough_env: ClassVar[tuple[str, ...]] = ("CODEX_API_KEY", "OPENAI_API_KEY")
    credentials: ClassVar[tuple[Credential, ...]] = (
        Credential(_LOGIN, "`codex login` (ChatGPT account or key)", moved_by="CODEX_HOME"),
    )
    user_files: ClassVar[tuple[UserFile, ...]] = (
        UserFile(
            ".codex/config.toml",
            "settings (profiles, MCP servers, model settings)",
            moved_by="CODEX_HOME",
        ),
        UserFile(".codex/AGENTS.md", "instructions", moved_by="CODEX_HOME"),
        UserFile(".codex/prompts", "custom prompts", moved_by="CODEX_HOME"),
        UserFile(".codex/skills", "skills", moved_by="CODEX_HOME"),
    )

    class Config(ExtraArgsConfig):
        # "bypass" = --dangerously-bypass-approvals-and-sandbox, for externally sandboxed hosts.
        sandbox: Literal["workspace-write", "read-only", "danger-full-access", "bypass"] = (
            "workspace-write"
        )
        base_url: str | None = None  # an OpenAI Responses API endpoint, ending in /v1
        provider_name: str = Field(default="council", pattern=r"^[A-Za-z0-9_-]+$")
        env_key: str = "OPENAI_API_KEY"  # the variable holding the custom endpoint's key
        request_max_retries: int | None = Field(default=None, ge=0)
        stream_max_retries: int | None = Field(default=None, ge=0)
        reasoning_effort: Literal["minimal", "low", "medium", "high", "xhigh"] | None = Field(
            default=None, description="config.toml's model_reasoning_effort, over the user's"
        )
        system_prompt: str | None = system_prompt_field()  # config.toml's developer_instructions
        # config.toml's sandbox_workspace_write.writable_roots, what `exec --add-dir` sets
        # (`exec resume` has no --add-dir)
        add_dirs: AddDirs = add_dirs_field()

        option_flags: ClassVar[Mapping[str, str]] = {"--add-dir": "add_dirs"}

        # Every flag ``build_command`` and ``resume_command`` set
        # (tests/adapters/test_adapter_extra_args.py checks it). ``-c key=value`` stays open: it
        # is codex's own escape hatch.
        owned_flags: ClassVar[Mapping[str, str]] = {
            **owns(OUTPUT, "--json"),
            **owns("the run's worktree need not be a git repository", "--skip-git-repo-check"),
            **owns(
                option("sandbox"), "-s", "--sandbox", "--dangerously-bypass-approvals-and-sandbox"
            ),
            **owns(MODEL, "-m", "--model"),
            **owns(SESSION, "--last"),
        }

    config: Config  # the base class validates the run config's options into this model

    def env_names(self) -> tuple[str, ...]:
        # A custom endpoint's key may live under a name of the user's choosing.
        return (*self.passthrough_env, self.config.env_key)

    def logins_used(self, env: Mapping[str, str]) -> tuple[Credential, ...]:
        # With base_url, codex sends the endpoint's key variable when the run has it, and the
        # `codex login` only when it does not (the provider then says requires_openai_auth).
        if not self.config.base_url:
            return self.credentials
        if env.get(self.config.env_key):
            return ()
        return tuple(replace(c, what=f"{c.what} (requires_openai_auth)") for c in self.credentials)

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        if request.resume_session_id is not None:
            return self.resume_command(request, request.resume_session_id)
        sandbox = self.config.sandbox
        flags = (
            ["--dangerously-bypass-approvals-and-sandbox"]
            if sandbox == "bypass"
            else ["-s", sandbox]
        )
        return self._command(request, ["exec", "--json", "--skip-git-repo-check", *flags], [])

    def resume_command(self, request: AdapterRequest, native_session_id: str) -> CommandSpec:
        sandbox = self.config.sandbox
        flags = (
            ["--dangerously-bypass-approvals-and-sandbox"]
            if sandbox == "bypass"
            else ["-c", f"sandbox_mode={toml_string(sandbox)}"]
        )
        head = ["exec", "resume", "--json", "--skip-git-repo-check", *flags]
        return self._command(request, head, [native_id(self.name, native_session_id)])

    def _command(self, request: AdapterRequest, head: list[str], ids: list[str]) -> CommandSpec:
        argv = [self.binary, *head]
        if request.model:
            argv += ["-m", request.model]
        argv += self.extra_args()  # after `exec` or `exec resume`: options of that subcommand
        stdin = stdin_prompt(request.prompt)
        argv += [*ids, "-" if stdin is not None else request.prompt]
        codex_home = request.home / ".codex"
        env, secrets = command_env(request, {"CODEX_HOME": str(codex_home)})
        config_files = {".codex/config.toml": self._config_file(request)}
        return CommandSpec(
            argv=argv, env=env, config_files=config_files, stdin=stdin, secrets=secrets
        )

    def _config_file(self, request: AdapterRequest) -> ConfigFile:
        """``config.toml``: the user's own (profiles, MCP servers, reasoning effort) with the
        run's endpoint and model over it."""
        opts = self.config
        required: dict[str, Any] = {}
        if request.model:
            required["model"] = request.model  # as `-m` says: named so the log shows it
        if opts.sandbox != "bypass":
            required["sandbox_mode"] = opts.sandbox
        if opts.reasoning_effort:
            required["model_reasoning_effort"] = opts.reasoning_effort
        if opts.system_prompt:
            required["developer_instructions"] = opts.system_prompt
        if opts.add_dirs:
            required["sandbox_workspace_write"] = {"writable_roots": list(opts.add_dirs)}
        if request.mcp_servers:
            required["mcp_servers"] = {s.name: mcp_entry(s, "codex") for s in request.mcp_servers}
        if opts.base_url:
            provider: dict[str, Any] = {
                "name": opts.provider_name,
                "base_url": opts.base_url,
                "env_key": opts.env_key,
                "wire_api": "responses",  # "chat" is refused by codex 0.169
            }
            if self._uses_login(request):
                # Without it codex never reads `codex login`'s auth.json for this provider.
                provider["requires_openai_auth"] = True
                del provider["env_key"]
            if opts.request_max_retries is not None:
                provider["request_max_retries"] = opts.request_max_retries
            if opts.stream_max_retries is not None:
                provider["stream_max_retries"] = opts.stream_max_retries
            required["model_provider"] = opts.provider_name
            required["model_providers"] = {opts.provider_name: provider}
        # Measured on 0.169: the plugins feature clones github.com/openai/plugins.git and asks
        # api.github.com on every run; analytics report usage. Neither is the model's endpoint,
        # so both are off unless the user's own config.toml turns them on.
        defaults = {"features": {"plugins": False}, "analytics": {"enabled": False}}
        return ConfigFile(format="toml", defaults=defaults, required=required)

    def _uses_login(self, request: AdapterRequest) -> bool:
        """A custom endpoint authenticated by the user's `codex login`: their auth.json is
        there and the endpoint's key variable is not."""
        key = self.config.env_key
        has_key = bool(request.env.get(key) or os.environ.get(key))
        return not has_key and _LOGIN in request.logins

    def sandboxes_itself(self) -> bool:
        return self.config.sandbox != "bypass"  # its own bubblewrap runs its commands

    def read_only_reason(self) -> str | None:
        if self.config.sandbox == "read-only":
            return "codex: sandbox 'read-only' rejects every patch; use 'workspace-write'"
        return None

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        if stream == "stderr":
            return _stderr(line)
        value = loads(line)
        if value is None:
            # Without --json, stdout carries only the final message.
            return [AgentEvent(kind=EventKind.MESSAGE, text=line)] if line.strip() else []
        return _event(obj(value))

    def classify(self, result: ProcessResult, events: Sequence[AgentEvent]) -> Outcome:
        return finish(super().classify(result, events), events)


def _stderr(line: str) -> list[AgentEvent]:
    if _SANDBOX_REJECTION.search(line):
        return [AgentEvent(kind=EventKind.ERROR, text=line.strip(), error_kind="sandbox")]
    header = _SESSION_HEADER.match(line.strip())
    if header:
        return [AgentEvent(kind=EventKind.STARTED, native_session_id=header.group(1))]
    return plain_line(line)


def _event(event: dict[str, Any]) -> list[AgentEvent]:
    kind = text(event.get("type"))
    if kind == "thread.started":
        thread = text(event.get("thread_id")) or None
        return [AgentEvent(kind=EventKind.STARTED, text="thread started", native_session_id=thread)]
    if kind == "turn.started":
        return []
    if kind in ("item.started", "item.updated", "item.completed"):
        return _item(obj(event.get("item")), done=kind == "item.completed")
    if kind == "turn.completed":
        usage = obj(event.get("usage"))
        cached = count(usage.get("cached_input_tokens"))
        return [
            AgentEvent(
                kind=EventKind.USAGE,
                usage=Usage(
                    input_tokens=max(count(usage.get("input_tokens")) - cached, 0),
                    output_tokens=count(usage.get("output_tokens")),
                    cache_read_tokens=cached,
                    cache_write_tokens=count(usage.get("cache_write_input_tokens")),
                ),
                data={"reasoning_output_tokens": count(usage.get("reasoning_output_tokens"))},
            ),
            AgentEvent(kind=EventKind.COMPLETED),
        ]
    if kind == "turn.failed":
        message = text(dig(event, "error", "message")) or "turn failed"
        return [
            *error_events(message, error_kind(message)),
            AgentEvent(kind=EventKind.COMPLETED, text=message, is_error=True),
        ]
    if kind == "error":
        message = text(event.get("message"))
        if message.startswith("Reconnecting"):
            # A retry in progress: a rate limit is worth an event, and not an ERROR; a refused
            # key is the end (codex retries a 401 five times), the core stops it there.
            kind = error_kind(message)
            if kind == "auth":
                return error_events(message, kind)
            if kind != "rate_limit":
                return plain_line(message)
            return [AgentEvent(kind=EventKind.RATE_LIMITED, text=message)]
        return error_events(message, error_kind(message))
    return [AgentEvent(kind=EventKind.RAW, text=kind or "unknown event", data={"type": kind})]


def _item(item: dict[str, Any], done: bool) -> list[AgentEvent]:
    kind = text(item.get("type"))
    status = text(item.get("status"))
    if kind == "agent_message":
        body = text(item.get("text"))
        return [AgentEvent(kind=EventKind.MESSAGE, text=body)] if done and body else []
    if kind == "command_execution":
        command = text(item.get("command"))
        if not done:
            return [] if status != "in_progress" else [_call("exec", command)]
        exit_code = item.get("exit_code")
        return [
            AgentEvent(
                kind=EventKind.TOOL_RESULT,
                tool="exec",
                text=text(item.get("aggregated_output"))[-_MAX_TOOL_TEXT:],
                data={"command": command, "exit_code": exit_code, "status": status},
            )
        ]
    if kind == "file_change":
        changes = [obj(c) for c in items(item.get("changes"))]
        summary = ", ".join(f"{text(c.get('kind'))} {text(c.get('path'))}" for c in changes)
        if not done:
            return [] if status != "in_progress" else [_call("apply_patch", summary)]
        return [
            AgentEvent(
                kind=EventKind.TOOL_RESULT,
                tool="apply_patch",
                text=summary,
                data={"changes": changes, "status": status},
            )
        ]
    if kind in ("mcp_tool_call", "web_search"):
        what = text(item.get("tool")) or text(item.get("query"))
        if not done:
            return [_call(kind, what)] if status in ("", "in_progress") else []
        return [
            AgentEvent(kind=EventKind.TOOL_RESULT, tool=kind, text=what, data={"status": status})
        ]
    if kind == "error":
        # Non-fatal notices such as "Model metadata for `X` not found"; fatal ones end the turn.
        return plain_line(text(item.get("message")))
    return []  # reasoning and todo_list items carry nothing the outcome needs


def _call(tool: str, summary: str) -> AgentEvent:
    return AgentEvent(kind=EventKind.TOOL_CALL, tool=tool, text=summary[:_MAX_TOOL_TEXT])


@hookimpl
def register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(CodexAdapter)
