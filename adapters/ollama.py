"""Ollama (``ollama run``), from its documentation only.

No version was measured: the Ollama server is a download from ollama.com, which was not
reachable where the facts were collected, so there is no recorded transcript. This adapter and
its tests follow the documented behaviour (``shared/reference/cli-facts.md``, "Ollama").

Command: ``ollama run MODEL [--verbose] [--nowordwrap] [--format json] [--keepalive D]
[--think=L] [--hidethinking] PROMPT``, stdin closed; ``OLLAMA_HOST`` selects the server.

Quirks handled:

- Not an agent: no tools, no file edits (``edits_files`` False), no session to resume.
- Plain text: stdout is the answer, kept line by line (blank lines too, so paragraphs
  survive); stderr has "Error: ..." on failure (non-zero exit) and, with ``--verbose``, the
  timing block whose "prompt eval count" / "eval count" lines are the usage.
- Spinner frames and ANSI codes on stderr are dropped.
- A prompt that starts with ``-`` or is over 100 KiB (too long for an argument) goes through
  stdin (one-shot when stdin is not a TTY).
- Errors from ollama.com cloud models ("unauthorized", "usage limit") map to auth_required
  and rate_limited; "model not found" and "could not connect" are failures.
- **A 401 exits 0**: ``ollama run`` turns the server's 401 into "You need to be signed in to
  Ollama to run Cloud models." on stdout (plus a sign-in URL) and returns no error (cmd/cmd.go,
  ``handleCloudAuthorizationError``, v0.33): that line is an auth error, not the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from adapters._build import command_env, option, owns, stdin_prompt
from adapters._jsonl import strip_ansi
from adapters._outcomes import error_events, error_kind, finish, plain_line
from orchestrator.adapter import (
    Adapter,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    EventKind,
    ExtraArgsConfig,
    Outcome,
    OutcomeKind,
    ProcessResult,
    Stream,
    Usage,
)
from orchestrator.errors import AdapterError
from orchestrator.plugins.hookspecs import hookimpl

DEFAULT_PORT = 11434
DEFAULT_HOST = f"127.0.0.1:{DEFAULT_PORT}"  # ollama's own, when OLLAMA_HOST is not set

__all__ = ["OllamaAdapter", "register_adapters"]

_COUNT = re.compile(r"^(prompt eval|eval) count:\s+(\d{1,12}) token")
_SPINNER = re.compile(r"^[\s\u2800-\u28ff]*$")  # braille spinner frames, nothing else
_STATS = re.compile(r"^(total|load|prompt eval|eval) (duration|rate):")
_SIGN_IN = "You need to be signed in to Ollama"  # stdout, exit 0: the server said 401


class OllamaAdapter(Adapter):
    name = "ollama"
    executable = "ollama"
    streams_json = False
    can_resume = False
    can_choose_model = True
    edits_files = False
    passthrough_env: ClassVar[tuple[str, ...]] = ("OLLAMA_HOST", "OLLAMA_API_KEY")

    class Config(ExtraArgsConfig):
        model: str | None = None  # used when the request names no model
        host: str | None = None  # OLLAMA_HOST, default 127.0.0.1:11434
        verbose: bool = True  # timing block on stderr: the only source of token counts
        format_json: bool = False  # constrains the answer to JSON (--format json)
        keepalive: str | None = None  # e.g. "5m"; how long the model stays loaded
        think: Literal["true", "false", "low", "medium", "high"] | None = None
        hide_thinking: bool = False

        # Every flag ``build_command`` sets (tests/adapters/test_adapter_extra_args.py checks it).
        owned_flags: ClassVar[Mapping[str, str]] = {
            **owns("the adapter reads plain text, without line wrapping", "--nowordwrap"),
            **owns(option("verbose"), "--verbose"),
            **owns(option("format_json"), "--format"),
            **owns(option("keepalive"), "--keepalive"),
            **owns(option("think"), "--think"),
            **owns(option("hide_thinking"), "--hidethinking"),
        }

    config: Config  # the base class validates the run config's options into this model

    def model_endpoints(self, request: AdapterRequest) -> tuple[str, ...]:
        """The Ollama server: ``host`` (``OLLAMA_HOST``'s form, port 11434 when none is
        named), by default this machine's ``127.0.0.1:11434``."""
        host = self.config.host or DEFAULT_HOST
        url = urlsplit(host if "://" in host else f"http://{host}")
        try:
            port = url.port
        except ValueError:  # not a port: the CLI says so itself
            port = None
        return (host if port else f"{host.rstrip('/')}:{DEFAULT_PORT}",)

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        opts = self.config
        model = request.model or opts.model
        if not model:
            raise AdapterError(
                "adapter 'ollama': no model: set `model` in its options or the phase"
            )
        argv = [self.binary, "run", model, "--nowordwrap"]
        if opts.verbose:
            argv.append("--verbose")
        if opts.format_json:
            argv += ["--format", "json"]
        if opts.keepalive:
            argv += ["--keepalive", opts.keepalive]
        if opts.think is not None:
            argv.append(f"--think={opts.think}")
        if opts.hide_thinking:
            argv.append("--hidethinking")
        argv += self.extra_args()  # `ollama run MODEL [flags] PROMPT`
        stdin = stdin_prompt(request.prompt)
        if stdin is None:
            argv.append(request.prompt)
        env, secrets = command_env(request, {"OLLAMA_HOST": opts.host} if opts.host else {})
        return CommandSpec(argv=argv, env=env, stdin=stdin, secrets=secrets)

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        if stream == "stdout":
            text = strip_ansi(line).rstrip()
            if text.startswith(_SIGN_IN):
                return error_events(text, "auth")
            return [AgentEvent(kind=EventKind.MESSAGE, text=text)]
        line = strip_ansi(line).strip()
        if _SPINNER.match(line) or _STATS.match(line):
            return []
        counted = _COUNT.match(line)
        if counted:
            tokens = int(counted[2])
            usage = (
                Usage(input_tokens=tokens)
                if counted[1] == "prompt eval"
                else Usage(output_tokens=tokens)
            )
            return [AgentEvent(kind=EventKind.USAGE, usage=usage)]
        if line.startswith("Error:"):
            return error_events(line, error_kind(line))
        return plain_line(line)

    def classify(self, result: ProcessResult, events: Sequence[AgentEvent]) -> Outcome:
        outcome = super().classify(result, events)
        if outcome.kind == OutcomeKind.SUCCEEDED:
            answer = "\n".join(e.text for e in events if e.kind == EventKind.MESSAGE).strip()
            outcome = outcome.model_copy(update={"message": answer})
        return finish(outcome, events)


@hookimpl
def register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(OllamaAdapter)
