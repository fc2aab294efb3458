"""The ``command`` adapter: any CLI, described by a preset in the run config, with no Python.

A preset is the adapter's ``options``::

    adapters:
      mycli:
        type: command
        options:
          binary: mycli
          args: [--json, --prompt, "{prompt}"]     # one item per argument, never a shell line
          model_args: [--model, "{model}"]        # put before args when a model is configured
          resume_args: [--resume, "{session_id}", --prompt, "{prompt}"]   # replaces args
          output: jsonl                            # jsonl | json | text
          result_key: result                       # dotted path of the final answer
          result_when: {type: result}              # only objects with these values are final
          session_key: session_id                  # dotted path of the CLI's session id
          error_key: is_error                      # truthy there: the CLI reports failure
          success_pattern: "^DONE"                 # regexes (Python syntax), searched per line
          rate_limit_pattern: "429|rate limit.*?resets? at (?P<reset>\\S+)"
          auth_pattern: "401|invalid api key"
          error_pattern: "^Error:"
          resume_refused_pattern: "no session found"   # a resume it refused: start afresh
          passthrough_env: [MYCLI_API_KEY]         # from the orchestrator's environment
          env: {MYCLI_NO_UPDATE: "1"}              # set for the CLI
          stdin_prompt: false                      # true: the prompt goes to stdin instead
          version_args: [--version]

Placeholders ``{prompt}``, ``{model}``, ``{workdir}`` (and ``{session_id}`` in ``resume_args``)
are replaced inside each argument in one pass, so a prompt is always exactly one argument (or
part of one) and text in it that looks like a placeholder is left alone. A prompt too long for
an argument (over 128 KiB on Linux) cannot go in that way: without ``stdin_prompt: true`` the
adapter refuses it, with an error that says so, instead of a start that fails with ``E2BIG``.

Output formats:

- ``text``: each stdout line is a message; a line matching ``success_pattern`` is the final
  answer. With a ``success_pattern``, a run in which no line matched has failed.
- ``jsonl``: one JSON object per line; the object that has ``result_key`` (and matches
  ``result_when``) is the final answer; ``error_key`` marks it failed.
- ``json``: one JSON document on stdout (on one line, or pretty-printed over several).

The patterns are searched in every line of both streams: ``rate_limit_pattern`` makes a
failed run ``rate_limited`` (a named group ``reset`` holding an ISO time or Unix seconds, or
``seconds`` holding a delay, says when to retry), ``auth_pattern`` makes it ``auth_required``,
``error_pattern`` makes a run without a final answer ``failed`` even if it exited 0. An auth
match also stops the CLI at once (no retry fixes a refused key). ``resume_refused_pattern``
matched in a resumed run means the CLI refused to continue that session: the run starts again
as a fresh session with the same prompt instead of failing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from orchestrator.adapter import (
    Adapter,
    AdapterConfig,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    EventKind,
    Outcome,
    OutcomeKind,
    ProcessResult,
    Stream,
    native_id,
    too_long_for_argument,
)
from orchestrator.adapter.arg_limits import command_too_long, utf8_size
from orchestrator.errors import AdapterError
from orchestrator.plugins.hookspecs import hookimpl

__all__ = ["CommandAdapter", "register_adapters"]

_PLACEHOLDER = re.compile(r"\{(prompt|model|workdir|session_id)\}")
_ANY_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MISSING = object()


class Preset(AdapterConfig):
    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use
    binary: str = Field(min_length=1, description="the CLI's binary name or path")
    args: list[str] = Field(default_factory=lambda: ["{prompt}"])
    model_args: list[str] = Field(default_factory=list)
    resume_args: list[str] | None = None
    output: Literal["jsonl", "json", "text"] = "text"
    result_key: str | None = None
    result_when: dict[str, str | int | bool] = Field(default_factory=dict)
    session_key: str | None = None
    error_key: str | None = None
    success_pattern: re.Pattern[str] | None = None
    rate_limit_pattern: re.Pattern[str] | None = None
    auth_pattern: re.Pattern[str] | None = None
    error_pattern: re.Pattern[str] | None = None
    resume_refused_pattern: re.Pattern[str] | None = None
    passthrough_env: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    stdin_prompt: bool = False
    version_args: list[str] = Field(default_factory=lambda: ["--version"])
    edits_files: bool = True

    @field_validator("binary")
    @classmethod
    def _binary(cls, binary: str) -> str:
        if "\0" in binary or binary != binary.strip():
            raise ValueError(f"{binary!r} is not a usable binary name")
        return binary

    @field_validator("passthrough_env")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return names

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        cls._names(list(env))
        return env

    @field_validator("result_key", "session_key", "error_key")
    @classmethod
    def _path(cls, path: str | None) -> str | None:
        if path is not None and (not path or any(not part for part in path.split("."))):
            raise ValueError(f"{path!r} is not a dotted path like 'result' or 'item.text'")
        return path

    @model_validator(mode="after")
    def _templates(self) -> Self:
        _check_template("args", self.args, {"prompt", "model", "workdir"})
        _check_template("model_args", self.model_args, {"prompt", "model", "workdir"})
        if self.model_args and not _uses(self.model_args, "model"):
            raise ValueError("model_args must contain {model}")
        if not self.stdin_prompt and not _uses(self.args, "prompt"):
            raise ValueError("args must contain {prompt} (or set stdin_prompt: true)")
        if self.resume_args is not None:
            allowed = {"prompt", "model", "workdir", "session_id"}
            _check_template("resume_args", self.resume_args, allowed)
            if not _uses(self.resume_args, "session_id"):
                raise ValueError("resume_args must contain {session_id}")
            if not self.stdin_prompt and not _uses(self.resume_args, "prompt"):
                raise ValueError("resume_args must contain {prompt} (or set stdin_prompt: true)")
        if self.output == "text" and (self.result_key or self.result_when or self.error_key):
            raise ValueError("result_key, result_when and error_key need output jsonl or json")
        return self


class CommandAdapter(Adapter):
    name = "command"
    executable = "command"  # a placeholder: every preset names its own binary

    class Config(Preset):
        pass

    config: Preset

    def __init__(
        self, config: AdapterConfig | Mapping[str, Any] | None = None, executable: str | None = None
    ) -> None:
        super().__init__(config, executable)
        preset = self.config
        self.binary = executable or preset.binary
        # A preset decides these, so they are per instance (the class values are defaults).
        vars(self).update(
            streams_json=preset.output == "jsonl",
            can_resume=preset.resume_args is not None,
            can_choose_model=bool(preset.model_args) or _uses(preset.args, "model"),
            edits_files=preset.edits_files,
            passthrough_env=tuple(preset.passthrough_env),
        )

    def build_command(self, request: AdapterRequest) -> CommandSpec:
        return self._command(request, self.config.args, None)

    def resume_command(self, request: AdapterRequest, native_session_id: str) -> CommandSpec:
        if self.config.resume_args is None:
            return super().resume_command(request, native_session_id)
        session = native_id(self.name, native_session_id)
        return self._command(request, self.config.resume_args, session)

    def version_command(self) -> list[str]:
        return [self.binary, *self.config.version_args]

    def _command(
        self, request: AdapterRequest, template: list[str], session: str | None
    ) -> CommandSpec:
        values = {
            "prompt": request.prompt,
            "model": request.model or "",
            "workdir": str(request.workdir),
            "session_id": session or "",
        }
        if not request.model and _uses(template, "model"):
            raise AdapterError(
                f"adapter {self.name!r}: the preset uses {{model}} but no model is configured"
            )
        model = self.config.model_args if request.model else []
        argv = [self.binary, *(_fill(arg, values) for arg in [*model, *template])]
        env = dict(self.config.env)
        if not self.config.stdin_prompt:
            self._refuse_too_long(argv, env, request.prompt)
        stdin = request.prompt if self.config.stdin_prompt else None
        return CommandSpec(argv=argv, env=env, stdin=stdin)

    def _refuse_too_long(self, argv: list[str], env: dict[str, str], prompt: str) -> None:
        """A preset that puts the prompt on the command line cannot take one too long for it:
        say so now, with the way out, rather than let the start fail with ``E2BIG``."""
        problem = command_too_long(argv, env)
        if problem is None or not too_long_for_argument(prompt):
            return  # anything else too long is the core's to refuse, before it starts the CLI
        raise AdapterError(
            f"adapter {self.name!r}: a prompt of {utf8_size(prompt) // 1024} KiB is too long "
            f"for the command line ({problem}); set stdin_prompt: true in the preset if "
            f"{self.binary} reads its prompt from stdin"
        )

    def parse_line(self, line: str, stream: Stream) -> list[AgentEvent]:
        if not line.strip():
            return []
        events = self._matches(line)
        preset = self.config
        if stream == "stderr":
            return [*events, AgentEvent(kind=EventKind.RAW, text=line[:4096])]
        if preset.output == "text":
            final = preset.success_pattern is not None and preset.success_pattern.search(line)
            kind = EventKind.COMPLETED if final else EventKind.MESSAGE
            return [*events, AgentEvent(kind=kind, text=line)]
        document = _load(line)
        if document is None:  # in json output, a piece of a pretty-printed document
            return [*events, AgentEvent(kind=EventKind.RAW, text=line, data={"stdout": True})]
        return [*events, *self._json_events(document, line)]

    def resume_refused(self, result: ProcessResult, events: Sequence[AgentEvent]) -> bool:
        pattern = self.config.resume_refused_pattern
        if pattern is None:
            return False
        said = [result.stderr_tail, *(e.text for e in events)]
        return any(pattern.search(text) for text in said if text)

    def classify(self, result: ProcessResult, events: Sequence[AgentEvent]) -> Outcome:
        events = list(events)
        preset = self.config
        if preset.output == "json" and not any(e.kind is EventKind.COMPLETED for e in events):
            document = _reassemble(events)
            if document is not None:
                events.extend(self._json_events(document, ""))
        outcome = super().classify(result, events)
        if outcome.kind is not OutcomeKind.SUCCEEDED:
            return outcome
        final = next((e for e in reversed(events) if e.kind is EventKind.COMPLETED), None)
        failed = outcome.model_copy(update={"kind": OutcomeKind.FAILED})
        if preset.success_pattern is not None and (
            final is None or not preset.success_pattern.search(final.text)
        ):
            pattern = preset.success_pattern.pattern
            return failed.model_copy(update={"message": f"no output matched {pattern!r}"})
        if final is None and (preset.result_key or preset.result_when):
            return failed.model_copy(update={"message": "the CLI printed no final result"})
        if final is None and preset.output == "text":
            said = [e.text for e in events if e.kind is EventKind.MESSAGE]
            return outcome.model_copy(update={"message": "\n".join(said)[-2000:]})
        return outcome

    def _matches(self, line: str) -> list[AgentEvent]:
        preset = self.config
        events = []
        if preset.rate_limit_pattern and (match := preset.rate_limit_pattern.search(line)):
            reset_at, retry_after = _when(match.groupdict())
            events.append(
                AgentEvent(
                    kind=EventKind.RATE_LIMITED,
                    text=line[:500],
                    reset_at=reset_at,
                    retry_after=retry_after,
                    error_kind="rate_limit",
                )
            )
        if preset.auth_pattern and preset.auth_pattern.search(line):
            events.append(AgentEvent(kind=EventKind.ERROR, text=line[:500], error_kind="auth"))
        if preset.error_pattern and preset.error_pattern.search(line):
            events.append(AgentEvent(kind=EventKind.ERROR, text=line[:500], error_kind="api"))
        return events

    def _json_events(self, document: Any, line: str) -> list[AgentEvent]:
        preset = self.config
        session = _lookup(document, preset.session_key)
        native = session if isinstance(session, str) and session else None
        result = _lookup(document, preset.result_key)
        final = all(_lookup(document, key) == value for key, value in preset.result_when.items())
        if preset.result_key is not None:
            final = final and result is not _MISSING
        elif not preset.result_when:
            final = preset.output == "json"
        if not final:
            return [AgentEvent(kind=EventKind.RAW, text=line[:4096], native_session_id=native)]
        if result is _MISSING:
            text = _dump(document) if preset.result_key is None else ""
        else:
            text = result if isinstance(result, str) else _dump(result)
        error = _lookup(document, preset.error_key)
        return [
            AgentEvent(
                kind=EventKind.COMPLETED,
                text=text,
                native_session_id=native,
                is_error=error is not _MISSING and bool(error),
            )
        ]


def _check_template(field: str, template: list[str], allowed: set[str]) -> None:
    for index, arg in enumerate(template):
        if "\0" in arg:
            raise ValueError(f"{field}[{index}] contains a NUL character")
        for name in _ANY_PLACEHOLDER.findall(arg):
            if name not in allowed:
                known = ", ".join(f"{{{n}}}" for n in sorted(allowed))
                raise ValueError(f"{field}[{index}]: unknown placeholder {{{name}}} ({known})")


def _uses(template: list[str], name: str) -> bool:
    return any(f"{{{name}}}" in arg for arg in template)


def _fill(arg: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return _PLACEHOLDER.sub(replace, arg)


def _load(line: str) -> Any:
    try:
        document = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict | list) else None


def _reassemble(events: list[AgentEvent]) -> Any:
    text = "\n".join(e.text for e in events if e.kind is EventKind.RAW and e.data.get("stdout"))
    start, end = text.find("{"), text.rfind("}")
    return _load(text[start : end + 1]) if 0 <= start < end else None


def _lookup(document: Any, path: str | None) -> Any:
    if path is None:
        return _MISSING
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and re.fullmatch(r"-?\d+", part):
            index = int(part)
            if not -len(current) <= index < len(current):
                return _MISSING
            current = current[index]
        else:
            return _MISSING
    return current


def _dump(value: Any) -> str:
    return json.dumps(value, default=str)


def _when(groups: dict[str, str | None]) -> tuple[datetime | None, float | None]:
    seconds = _float(groups.get("seconds"))
    reset = groups.get("reset")
    if reset is None:
        return None, seconds
    epoch = _float(reset)
    if epoch is not None:
        if epoch < 10**8:  # a small number is a delay, not a date
            return datetime.now(UTC) + timedelta(seconds=epoch), epoch
        try:
            return datetime.fromtimestamp(epoch, UTC), seconds
        except (OverflowError, OSError, ValueError):
            return None, seconds
    try:
        moment = datetime.fromisoformat(reset.strip().replace("Z", "+00:00"))
    except ValueError:
        return None, seconds
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), seconds


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number < float("inf") else None


@hookimpl
def register_adapters(register: Callable[[type[Adapter]], None]) -> None:
    register(CommandAdapter)
